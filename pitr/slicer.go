package pitr

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

var primaryPreferred = readpref.PrimaryPreferred()

// Defaults of a [Config].
const (
	DefaultInterval = 60 * time.Second       // a slice closes after this long
	DefaultMaxSize  = 16 << 20               // or once it holds this many bytes of entries
	DefaultPoll     = 500 * time.Millisecond // a polling Slicer reads this often
	DefaultSettle   = 250 * time.Millisecond
)

// Config configures a [Slicer]. Client or URI, Export.Remote and Key are
// required; every other field has a default.
type Config struct {
	// Client is a connected client of the node; if nil, URI is connected to
	// and disconnected by Close.
	Client *mongo.Client
	URI    string
	// Timeout bounds the wait for the server to answer; default 10 s.
	Timeout time.Duration

	// Filter selects the namespaces whose writes the slices keep: give the
	// backups' (backup.Source.Filter). The server's own (local, config,
	// system collections) are never kept.
	Filter namespace.Filter

	// Export says where the slices go: beside the node's exported backups,
	// under Prefix/Node/oplog/ on Remote. Its Retention is not used.
	Export slot.ExportConfig

	// Key encrypts the slices: the standing secret that a slicer needs,
	// since no one types a password every minute. Derive it from the
	// backups' password with cipher.NewKey, once at set-up, and keep its
	// bytes (MarshalBinary) in a 0600 file rather than the password: a
	// stolen key opens the slices written under it, not the backups.
	// Restore opens the slices with the password.
	Key *cipher.Key

	// Interval is how long a slice stays open; default DefaultInterval. A
	// write is in a slice on the remote at most Interval, plus Settle and
	// Poll, plus the time to store a slice, after it was made.
	Interval time.Duration
	// MaxSize closes a slice early once it holds this many bytes of
	// entries; default DefaultMaxSize. A slice is held in memory until it
	// is stored.
	MaxSize int64

	// Read is how the oplog is read; default ReadAuto.
	Read ReadMode
	// Poll is how often a polling Slicer reads the oplog, and how long a
	// tailing one waits on the server for entries; default DefaultPoll.
	Poll time.Duration
	// Settle is how long a polling Slicer waits for the writes of a second
	// to be logged; default DefaultSettle.
	Settle time.Duration

	// Logger receives the Slicer's logs; default slog.Default(). Keys and
	// passwords are never logged.
	Logger *slog.Logger

	oplogNS   string                       // the oplog's namespace; "" is local.oplog.rs (tests set another)
	afterRead func(horizon bson.Timestamp) // called after each read of the oplog (tests)
}

// Status is where a Slicer stands.
type Status struct {
	Running bool   `json:"running"`
	Read    string `json:"read,omitempty"` // "tail" or "poll", once connected
	// Until is the end of the last slice it stored, or of the newest on the
	// remote when it started: the oplog is in slices up to it.
	Until bson.Timestamp `json:"until"`
	// Lag is the time since Until, to the second.
	Lag  time.Duration `json:"lag_ns"`
	Last *Slice        `json:"last,omitempty"` // the last slice it stored
	// Slices and Entries count what it stored since it started; Open the
	// entries read into the open slice, not stored yet.
	Slices  int64 `json:"slices"`
	Entries int64 `json:"entries"`
	Open    int64 `json:"open"`
	// Gaps are those it found and recorded since it started.
	Gaps []Gap `json:"gaps,omitempty"`
	// Error is why its last attempt failed, until a slice is stored; it
	// tries again meanwhile.
	Error string       `json:"error,omitempty"`
	Code  errcode.Code `json:"code,omitempty"`
}

// Slicer copies a node's oplog to a remote in slices, from the newest
// base backup's consistency point on (or from where the last slice on the
// remote ends), so that a restore reaches any moment the slices cover.
type Slicer struct {
	cfg    Config
	prefix string // the node's prefix on the remote
	log    *slog.Logger

	connMu sync.Mutex
	conn   *mongo.Client // connected to URI, when Client is nil

	flushes chan chan flushResult

	mu      sync.Mutex
	running bool
	st      Status
}

type flushResult struct {
	slice Slice
	err   error
}

// New checks cfg and returns a Slicer; it contacts nothing until Run.
func New(cfg Config) (*Slicer, error) {
	switch {
	case cfg.Client == nil && cfg.URI == "":
		return nil, fmt.Errorf("%w: set Config.Client or Config.URI", ErrInvalid)
	case cfg.Key == nil:
		return nil, fmt.Errorf("%w: Config.Key is nil: derive it from the backups' password with cipher.NewKey, or read it from its file", ErrInvalid)
	case cfg.Interval < 0 || cfg.MaxSize < 0 || cfg.Poll < 0 || cfg.Settle < 0:
		return nil, fmt.Errorf("%w: Interval, MaxSize, Poll and Settle may not be negative", ErrInvalid)
	}
	if err := cfg.Filter.Validate(); err != nil {
		return nil, fmt.Errorf("pitr: %w", err)
	}
	prefix, err := nodePrefix(cfg.Export)
	if err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.oplogNS == "" {
		cfg.oplogNS = oplog.Namespace
	}
	return &Slicer{cfg: cfg, prefix: prefix, log: cfg.Logger, flushes: make(chan chan flushResult)}, nil
}

// Close disconnects the client the Slicer connected to Config.URI, if any.
func (s *Slicer) Close() error {
	s.connMu.Lock()
	c := s.conn
	s.conn = nil
	s.connMu.Unlock()
	if c == nil {
		return nil
	}
	return c.Disconnect(context.Background())
}

func (s *Slicer) client() (*mongo.Client, error) {
	if s.cfg.Client != nil {
		return s.cfg.Client, nil
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.conn == nil {
		c, err := mongodb.Connect(s.cfg.URI, s.cfg.Timeout)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	return s.conn, nil
}

// Status reports where the Slicer stands.
func (s *Slicer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Running = s.running
	st.Gaps = append([]Gap(nil), st.Gaps...)
	if !st.Until.IsZero() {
		st.Lag = max(0, time.Since(tsTime(st.Until)).Round(time.Second))
	}
	return st
}

// Run slices the oplog until ctx is done, and then returns ctx's error.
// It resumes where the newest slice on the remote ends if the oplog still
// holds that point, and records a gap in the next slice if not; with no
// slice on the remote, it starts at the newest exported backup's
// consistency point, or at the present without one. A failure (the server
// or the remote unreachable, the oplog rolled over) is logged and shown in
// Status; Run then tries again, resuming from the remote, with a backoff
// of up to 30 s. A failure that trying again cannot mend (errcode.Invalid:
// a server without an oplog, backup.ErrNoOplog; settings the remote
// refuses) ends Run with it. It fails with ErrInProgress if the Slicer runs
// already.
func (s *Slicer) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return fmt.Errorf("pitr: %w", ErrInProgress)
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	backoff := time.Second
	for {
		stored, err := s.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if stored {
			backoff = time.Second
		}
		if errcode.Of(err) == errcode.Invalid {
			s.log.Error("pitr: slicing stopped", "error", err)
			return err
		}
		s.log.Error("pitr: slicing stopped; trying again", "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Flush closes the open slice once it holds every entry logged before the
// call, stores it, and returns it: a slice on demand, such as before a
// planned restore, or in tests. Run does it: Flush waits for Run to take
// the request (ctx bounds the wait), and returns the error that ended
// Run's attempt if it fails. When nothing was logged since the last slice
// it returns that one.
func (s *Slicer) Flush(ctx context.Context) (Slice, error) {
	res := make(chan flushResult, 1)
	select {
	case s.flushes <- res:
	case <-ctx.Done():
		return Slice{}, ctx.Err()
	}
	select {
	case r := <-res:
		return r.slice, r.err
	case <-ctx.Done():
		return Slice{}, ctx.Err()
	}
}

// open is the slice being filled.
type open struct {
	Slice
	buf  bytes.Buffer
	w    *cipher.Writer
	size int64 // bytes of entries
}

func (s *Slicer) newOpen(from, prevUntil bson.Timestamp, gap string) (*open, error) {
	o := &open{Slice: Slice{From: from, Prev: prevUntil, Gap: gap}}
	w, err := s.cfg.Key.NewWriter(&o.buf)
	if err != nil {
		return nil, err
	}
	o.w = w
	return o, nil
}

// setOpen shows in the status how many entries the open slice holds.
func (s *Slicer) setOpen(n int64) {
	s.mu.Lock()
	s.st.Open = n
	s.mu.Unlock()
}

func (o *open) add(e oplog.Entry, raw []byte) error {
	if _, err := o.w.Write(raw); err != nil {
		return err
	}
	if o.Entries == 0 {
		o.First = e.TS
	}
	o.Last = e.TS
	o.Entries++
	o.size += int64(len(raw))
	return nil
}

// session connects, finds where to resume, and slices until a failure or
// ctx is done; stored reports whether it stored a slice.
func (s *Slicer) session(ctx context.Context) (stored bool, err error) {
	var waiting []chan flushResult // Flush calls waiting for the next slice
	answer := func(sl Slice, err error) {
		for _, w := range waiting {
			w <- flushResult{slice: sl, err: err}
		}
		waiting = nil
	}
	defer func() {
		s.mu.Lock()
		s.st.Open = 0 // the open slice is dropped; the next session reads its entries again
		if err != nil && ctx.Err() == nil {
			s.st.Error, s.st.Code = err.Error(), errcode.Of(err)
		}
		s.mu.Unlock()
		answer(Slice{}, err) // once the status has the failure
	}()
	client, err := s.client()
	if err != nil {
		return false, err
	}
	r, err := s.reader(ctx, client)
	if err != nil {
		return false, err
	}
	defer r.close(ctx)
	sl, err := s.begin(ctx, r)
	if err != nil {
		return false, err
	}
	defer func() { sl.w.Abort() }()
	scope := oplog.NewOpenScope(s.cfg.Filter)

	var target bson.Timestamp // the horizon the next slice closes at, once reached
	fresh := false            // target was set since the last read
	deadline := time.Now().Add(s.cfg.Interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return stored, ctx.Err()
		case w := <-s.flushes:
			waiting = append(waiting, w)
			t, err := r.target(ctx)
			if err != nil {
				return stored, err
			}
			target, fresh = later(target, t), true
		case <-timer.C:
		}
		if target.IsZero() && !time.Now().Before(deadline) {
			t, err := r.target(ctx)
			if err != nil {
				return stored, err
			}
			target, fresh = t, true
			if deadline = deadline.Add(s.cfg.Interval); deadline.Before(time.Now()) {
				deadline = time.Now().Add(s.cfg.Interval)
			}
		}
		horizon := r.at()
		if target.IsZero() || horizon.Before(target) || fresh {
			// A new target is read up to once more even if the horizon
			// passed it: entries logged late since the last read go into
			// the slice before it closes.
			horizon, err = r.read(ctx, s.keep(ctx, scope, &sl, &stored))
			s.setOpen(sl.Entries)
			fresh = false
			if s.cfg.afterRead != nil {
				s.cfg.afterRead(horizon)
			}
		}
		var ro *errRolledOver
		if errors.As(err, &ro) {
			// What was read before is whole: store it, and resume after a
			// gap.
			if sl.From.Before(horizon) {
				if _, serr := s.store(ctx, sl, horizon); serr == nil {
					stored = true
				}
			}
			return stored, err
		}
		if err != nil {
			return stored, err
		}
		switch {
		case target.IsZero() || horizon.Before(target):
		case sl.From.Before(horizon):
			done, err := s.store(ctx, sl, horizon)
			if err != nil {
				return stored, err
			}
			stored, target = true, bson.Timestamp{}
			answer(done, nil)
			if sl, err = s.newOpen(horizon, horizon, ""); err != nil {
				return stored, err
			}
		default:
			// Nothing was logged since the last slice: it holds all there is.
			target = bson.Timestamp{}
			var last Slice
			s.mu.Lock()
			if s.st.Last != nil {
				last = *s.st.Last
			}
			s.mu.Unlock()
			answer(last, nil)
		}
		wait := r.wait(target)
		if target.IsZero() {
			wait = min(wait, max(0, time.Until(deadline)))
		}
		timer.Reset(wait)
	}
}

// keep returns the function that puts the entries read into the open
// slice *sl, storing it and opening the next when it is full.
func (s *Slicer) keep(ctx context.Context, scope *oplog.Scope, sl **open, stored *bool) func(oplog.Entry) error {
	return func(e oplog.Entry) error {
		raw, ok, err := scope.Keep(e)
		if err != nil || !ok {
			return err
		}
		if e.TS.Before((*sl).From) {
			// Logged after the slice for its time was stored: a write no
			// slice holds, which the status must not hide.
			s.late(e, (*sl).From)
			return nil
		}
		if err := (*sl).add(e, raw); err != nil {
			return err
		}
		if (*sl).size < s.cfg.MaxSize {
			return nil
		}
		// Full: close it after this entry, and go on in a new one.
		done, err := s.store(ctx, *sl, next(e.TS))
		if err != nil {
			return err
		}
		*stored = true
		*sl, err = s.newOpen(done.Until, done.Until, "")
		return err
	}
}

// late records an entry in scope that was logged after the slice for its
// time, which ends at until, was stored: a gap of that one entry.
func (s *Slicer) late(e oplog.Entry, until bson.Timestamp) {
	reason := fmt.Sprintf("the entry %s (%s) was logged after the slice for its time was stored, more than Settle after its timestamp: no slice holds it; raise Settle", oplog.FormatTS(e.TS), e.NS)
	s.log.Warn("pitr: a gap in the slices", "from", oplog.FormatTS(e.TS), "until", oplog.FormatTS(next(e.TS)), "reason", reason)
	s.mu.Lock()
	s.st.Gaps = append(s.st.Gaps, Gap{From: e.TS, Until: next(e.TS), Reason: reason})
	s.mu.Unlock()
}

// reader returns the oplog reader that cfg.Read says for the server.
func (s *Slicer) reader(ctx context.Context, client *mongo.Client) (oplogReader, error) {
	mode := s.cfg.Read
	if mode == ReadAuto {
		mode = ReadTail
		var build struct {
			FerretDB string `bson:"ferretdbVersion"`
		}
		if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
			return nil, mongodb.Classify(fmt.Errorf("buildInfo: %w", err))
		}
		if build.FerretDB != "" {
			mode = ReadPoll
		}
	}
	db, coll, _ := mongodb.Split(s.cfg.oplogNS)
	names, err := client.Database(db).ListCollectionNames(ctx, bson.D{{Key: "name", Value: coll}})
	if err != nil {
		return nil, mongodb.Classify(fmt.Errorf("look for the oplog: %w", err))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: the server keeps no oplog (%s): it is not a replica set member; run it as one (on the embedded FerretDB, create %s as a capped collection)",
			backup.ErrNoOplog, s.cfg.oplogNS, s.cfg.oplogNS)
	}
	s.mu.Lock()
	s.st.Read = mode.String()
	s.mu.Unlock()
	s.log.Info("pitr: reading the oplog", "read", mode.String())
	o := newOplogColl(client, s.cfg.oplogNS)
	if mode == ReadPoll {
		return &poller{oplogColl: o, settle: s.cfg.Settle, poll: s.cfg.Poll}, nil
	}
	return &tailer{oplogColl: o, poll: s.cfg.Poll}, nil
}

// begin finds where to resume: the end of the newest slice on the remote,
// else the newest exported backup's consistency point, else the present;
// and records a gap when the oplog no longer holds that point. It returns
// the open slice to fill, and points r at its start.
func (s *Slicer) begin(ctx context.Context, r oplogReader) (*open, error) {
	cov, err := Scan(ctx, s.cfg.Export)
	if err != nil {
		return nil, err
	}
	var from, prevUntil bson.Timestamp
	switch {
	case !cov.Until.IsZero():
		from, prevUntil = cov.Until, cov.Until
	case len(cov.Bases) > 0:
		from = next(cov.Bases[len(cov.Bases)-1].Oplog.End)
		prevUntil = from
	default:
		if from, err = s.present(ctx, r); err != nil {
			return nil, err
		}
	}
	var gap string
	var ro *errRolledOver
	if prevUntil.IsZero() {
		// From the present on, there is nothing before to lose.
	} else if err := r.checkHeld(ctx, from); errors.As(err, &ro) {
		gap = fmt.Sprintf("the oplog rolled over while the slicer was not reading it: its oldest entry, %s, is newer than %s, where the slices ended; writes between are in no slice",
			oplog.FormatTS(ro.oldest), oplog.FormatTS(from))
		g := Gap{From: from, Until: ro.oldest, Reason: gap}
		from = ro.oldest
		s.log.Warn("pitr: a gap in the slices", "from", oplog.FormatTS(g.From), "until", oplog.FormatTS(g.Until), "reason", gap)
		s.mu.Lock()
		s.st.Gaps = append(s.st.Gaps, g)
		s.mu.Unlock()
	} else if err != nil {
		return nil, err
	}
	anchor, err := r.anchor(ctx, from)
	if err != nil {
		return nil, err
	}
	r.seek(from, anchor)
	s.mu.Lock()
	if s.st.Until.IsZero() {
		s.st.Until = cov.Until
	}
	s.mu.Unlock()
	s.log.Info("pitr: slicing the oplog", "from", oplog.FormatTS(from), "remote", s.prefix+Folder)
	return s.newOpen(from, prevUntil, gap)
}

// present is where a node with neither slices nor base backups starts.
func (s *Slicer) present(ctx context.Context, r oplogReader) (bson.Timestamp, error) {
	if p, ok := r.(*poller); ok {
		return p.horizon(ctx)
	}
	return r.target(ctx)
}

// store closes o at until and stores it on the remote: it is there whole
// or not at all, under a key that names the span it holds.
func (s *Slicer) store(ctx context.Context, o *open, until bson.Timestamp) (Slice, error) {
	o.Until = until
	o.Key = sliceKey(s.prefix, o.From, o.Until)
	tr, err := o.trailer()
	if err != nil {
		return Slice{}, err
	}
	if _, err := o.w.Write(tr); err != nil {
		return Slice{}, err
	}
	if err := o.w.Close(); err != nil {
		return Slice{}, err
	}
	data := o.buf.Bytes()
	m, h := md5.Sum(data), sha256.Sum256(data)
	info, err := s.cfg.Export.Remote.Put(ctx, o.Key, bytes.NewReader(data), store.Info{
		Name: path.Base(o.Key), Size: int64(len(data)), MD5: hex.EncodeToString(m[:]), SHA256: hex.EncodeToString(h[:]),
		Meta: o.meta(),
	})
	if err != nil {
		return Slice{}, fmt.Errorf("pitr: store the slice %s: %w", o.Key, err)
	}
	done := o.Slice
	done.Size, done.Created = info.Size, info.Created
	s.log.Info("pitr: slice stored", "key", o.Key, "entries", done.Entries, "bytes", done.Size)
	s.mu.Lock()
	s.st.Until, s.st.Last, s.st.Open = done.Until, &done, 0
	s.st.Slices++
	s.st.Entries += done.Entries
	s.st.Error, s.st.Code = "", ""
	s.mu.Unlock()
	return done, nil
}
