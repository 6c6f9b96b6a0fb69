package pitr

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/ctxio"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/store"
)

var primaryPreferred = readpref.PrimaryPreferred()

// Defaults of a [Config].
const (
	DefaultInterval = 60 * time.Second // a slice closes after this long
	DefaultMaxSize  = 16 << 20         // or once it holds this many bytes of entries
)

// The defaults of Config.Poll and Config.Settle.
const (
	defaultPoll   = 500 * time.Millisecond // a polling Slicer reads this often
	defaultSettle = 250 * time.Millisecond
)

// Config configures a [Slicer]. Conn.Client or Conn.URI, Location.Remote
// and Key are required; every other field has a default.
type Config struct {
	// Conn says how to reach the node: Client, or URI connected to on
	// first use and disconnected by Close. A request to the server (a read
	// of the oplog, a command) that takes longer than its OperationTimeout
	// fails as unreachable (errcode.Unreachable), which Status shows.
	Conn conn.Config

	// Filter selects the namespaces whose writes the slices keep: give the
	// backups' (backup.Source.Filter). The server's own (local, config,
	// system collections) are never kept.
	Filter namespace.Filter

	// Location says where the slices go: beside the node's exported
	// backups, under Prefix/Node/oplog/ on Remote.
	Location Location

	// Key encrypts the slices: the standing secret that a slicer needs,
	// since no one types a password every minute. Derive it from the
	// backups' password with cipher.NewKey, once at set-up, and keep its
	// bytes (MarshalBinary) in a 0600 file rather than the password: a
	// stolen key opens the slices written under it, not the backups.
	// Restore opens the slices with the password.
	Key *cipher.Key
	// Keyring, if set, opens the slices written under other keys of the
	// same password, when the slicer looks for where to resume: set it
	// when Key is derived afresh at each start (from a password file),
	// so that the slices of the process before authenticate. Without it,
	// only the slices written under Key do, and a slicer whose key changed
	// starts again from the newest base backup.
	Keyring *cipher.Keyring

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
	// tailing one waits on the server for entries; default 500 ms.
	Poll time.Duration
	// Settle is how long a polling Slicer waits for the writes of a second
	// to be logged; default 250 ms.
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
	// Gaps are those it found and recorded since it started: each is in
	// the record of the slice it stored next (Slice.Gap, Slice.Lost).
	Gaps []Gap `json:"gaps,omitempty"`
	// Ignored are the objects in the slices' folder newer than the last
	// authentic slice that it could not authenticate as this node's, when
	// it looked for where to resume: it resumes after the authentic ones.
	Ignored []Refused `json:"ignored,omitempty"`
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

	conn *mongodb.Lazy // the client of cfg.Conn

	flushes chan chan flushResult

	mu      sync.Mutex
	running bool
	st      Status
	node    string
	// The chain: tip is its newest slice, as stored or authenticated; lost
	// the entries read but in no slice, recorded in the next slice stored.
	tip  *Slice
	lost []Gap
}

type flushResult struct {
	slice Slice
	err   error
}

// New checks cfg and returns a Slicer; it contacts nothing until Run.
func New(cfg Config) (*Slicer, error) {
	switch {
	case cfg.Conn.Client == nil && cfg.Conn.URI == "":
		return nil, fmt.Errorf("%w: set Config.Conn: its Client or URI", ErrInvalid)
	case cfg.Key == nil:
		return nil, fmt.Errorf("%w: Config.Key is nil: derive it from the backups' password with cipher.NewKey, or read it from its file", ErrInvalid)
	case cfg.Interval < 0 || cfg.MaxSize < 0 || cfg.Poll < 0 || cfg.Settle < 0:
		return nil, fmt.Errorf("%w: Interval, MaxSize, Poll and Settle may not be negative", ErrInvalid)
	}
	if err := cfg.Filter.Validate(); err != nil {
		return nil, fmt.Errorf("pitr: Config.Filter: %w", err)
	}
	prefix, err := cfg.Location.NodePrefix()
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
		cfg.Poll = defaultPoll
	}
	if cfg.Settle == 0 {
		cfg.Settle = defaultSettle
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.oplogNS == "" {
		cfg.oplogNS = oplog.Namespace
	}
	cfg.Conn.OperationTimeout = mongodb.OperationTimeout(cfg.Conn.OperationTimeout)
	return &Slicer{cfg: cfg, prefix: prefix, node: nodeOf(prefix), log: cfg.Logger, conn: mongodb.NewLazy(cfg.Conn), flushes: make(chan chan flushResult)}, nil
}

// Close disconnects the client the Slicer connected to Config.Conn.URI, if
// any.
func (s *Slicer) Close() error {
	return s.conn.Close(context.Background())
}

// Status reports where the Slicer stands.
func (s *Slicer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Running = s.running
	st.Gaps = append([]Gap(nil), st.Gaps...)
	st.Ignored = append([]Refused(nil), st.Ignored...)
	if !st.Until.IsZero() {
		st.Lag = time.Since(tsTime(st.Until)).Round(time.Second)
		if st.Lag < -time.Second && st.Error == "" {
			// The slices end later than this clock's now: the node's clock
			// runs ahead, or ran ahead when the slices were cut.
			st.Error = fmt.Sprintf("%v: the slices end at %s (%s), %s ahead of this clock: the node's clock runs ahead of the agent's; a lag reads as none until the clocks agree",
				ErrClock, tsTime(st.Until).Format(time.RFC3339), oplog.FormatTS(st.Until), -st.Lag)
			st.Code = errcode.Of(ErrClock)
		}
		st.Lag = max(0, st.Lag)
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
// a server without an oplog, ErrNoOplog; settings the remote
// refuses) ends Run with it. It fails with ErrInProgress if the Slicer runs
// already.
func (s *Slicer) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrInProgress
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	backoff := time.Second
	var pending []chan flushResult // Flush calls taken while it waited to try again
	for {
		stored, err := s.session(ctx, pending)
		pending = nil
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
		case w := <-s.flushes: // a Flush tries again at once, and gets that attempt's slice or failure
			pending = append(pending, w)
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
	o := &open{Slice: Slice{From: from, Prev: prevUntil, Gap: gap, Node: s.node}}
	s.mu.Lock()
	if s.tip != nil && s.tip.Until == prevUntil {
		o.PrevSHA256 = s.tip.SHA256
	}
	s.mu.Unlock()
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
// ctx is done; stored reports whether it stored a slice. waiting are the
// Flush calls waiting for the next slice.
func (s *Slicer) session(ctx context.Context, waiting []chan flushResult) (stored bool, err error) {
	ss := &sess{waiting: waiting}
	defer func() {
		s.mu.Lock()
		s.st.Open = 0 // the open slice is dropped; the next session reads its entries again
		if err != nil && ctx.Err() == nil {
			err = named(err)
			s.st.Error, s.st.Code = err.Error(), errcode.Of(err)
		}
		s.mu.Unlock()
		ss.answer(Slice{}, err) // once the status has the failure
	}()
	r, sl, err := s.start(ctx)
	if r != nil {
		defer r.close(ctx)
	}
	if err != nil {
		return false, err
	}
	ss.r, ss.sl, ss.scope = r, sl, oplog.NewOpenScope(s.cfg.Filter)
	defer func() { ss.sl.w.Abort() }()
	if len(ss.waiting) > 0 {
		if ss.target, err = s.target(ctx, r); err != nil {
			return false, err
		}
		ss.fresh = true
	}
	ss.deadline = time.Now().Add(s.cfg.Interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ss.stored, ctx.Err()
		case w := <-s.flushes:
			ss.waiting = append(ss.waiting, w)
			t, err := s.target(ctx, r)
			if err != nil {
				return ss.stored, err
			}
			ss.target, ss.fresh = later(ss.target, t), true
		case <-timer.C:
		}
		if err := s.step(ctx, ss); err != nil {
			return ss.stored, err
		}
		wait := r.wait(ss.target)
		if ss.target.IsZero() {
			wait = min(wait, max(0, time.Until(ss.deadline)))
		}
		timer.Reset(wait)
	}
}

// sess is where a session stands: its reader, its open slice, the Flush
// calls waiting for the next slice, and the horizon that slice closes at.
type sess struct {
	r        oplogReader
	sl       *open
	scope    *oplog.Scope
	waiting  []chan flushResult
	target   bson.Timestamp // the horizon the next slice closes at, once reached; zero for none yet
	fresh    bool           // target was set since the last read
	deadline time.Time      // when the open slice's interval ends, and a target is set
	stored   bool           // a slice was stored
}

// answer gives the Flush calls waiting the slice stored, or the failure.
func (ss *sess) answer(sl Slice, err error) {
	for _, w := range ss.waiting {
		w <- flushResult{slice: sl, err: err}
	}
	ss.waiting = nil
}

// start connects, opens the oplog reader that Config.Read says, and finds
// where to resume: it returns the reader, to close (also on a failure
// after it opened), and the open slice.
func (s *Slicer) start(ctx context.Context) (oplogReader, *open, error) {
	client, err := s.conn.Client()
	if err != nil {
		return nil, nil, err
	}
	var r oplogReader
	err = s.ask(ctx, func(ctx context.Context) (err error) { r, err = s.reader(ctx, client); return err })
	if err != nil {
		return nil, nil, err
	}
	sl, err := s.begin(ctx, r)
	return r, sl, err
}

// step sets a target once the open slice's interval is over, reads the
// oplog unless the horizon reached the target already, and closes the
// slice at the target once the horizon reaches it. After the oplog rolled
// over, it stores what was read before, which is whole, and fails: the
// next session resumes after a gap.
func (s *Slicer) step(ctx context.Context, ss *sess) error {
	if ss.target.IsZero() && !time.Now().Before(ss.deadline) {
		t, err := s.target(ctx, ss.r)
		if err != nil {
			return err
		}
		ss.target, ss.fresh = t, true
		if ss.deadline = ss.deadline.Add(s.cfg.Interval); ss.deadline.Before(time.Now()) {
			ss.deadline = time.Now().Add(s.cfg.Interval)
		}
	}
	horizon := ss.r.at()
	var err error
	if ss.target.IsZero() || horizon.Before(ss.target) || ss.fresh {
		// A new target is read up to once more even if the horizon
		// passed it: entries logged late since the last read go into
		// the slice before it closes.
		keep := s.keep(ctx, ss.scope, &ss.sl, &ss.stored)
		err = s.ask(ctx, func(ctx context.Context) (err error) { horizon, err = ss.r.read(ctx, keep); return err })
		s.setOpen(ss.sl.Entries)
		ss.fresh = false
		if s.cfg.afterRead != nil {
			s.cfg.afterRead(horizon)
		}
	}
	var ro *errRolledOver
	if errors.As(err, &ro) {
		if ss.sl.From.Before(horizon) {
			if _, serr := s.store(ctx, ss.sl, horizon); serr == nil {
				ss.stored = true
			}
		}
		return err
	}
	if err != nil {
		return err
	}
	return s.cut(ctx, ss, horizon)
}

// cut closes the open slice at horizon, stores it and answers the Flush
// calls waiting, once horizon reached the target; with nothing logged
// since the last slice, it answers them with that one.
func (s *Slicer) cut(ctx context.Context, ss *sess, horizon bson.Timestamp) error {
	switch {
	case ss.target.IsZero() || horizon.Before(ss.target):
	case ss.sl.From.Before(horizon):
		done, err := s.store(ctx, ss.sl, horizon)
		if err != nil {
			return err
		}
		ss.stored, ss.target = true, bson.Timestamp{}
		ss.answer(done, nil)
		nextOpen, err := s.newOpen(horizon, horizon, "")
		if err != nil {
			return err
		}
		ss.sl = nextOpen
		return nil
	default:
		// Nothing was logged since the last slice: it holds all there is.
		ss.target = bson.Timestamp{}
		s.mu.Lock()
		tip := s.tip
		s.mu.Unlock()
		if tip == nil {
			ss.answer(Slice{}, fmt.Errorf("%w: nothing was logged in scope since the slicer started at %s, and no slice of this node is on the remote: there is no slice to store yet",
				ErrNotCovered, oplog.FormatTS(ss.sl.From)))
		} else {
			ss.answer(*tip, nil)
		}
	}
	return nil
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
		if len(raw) > archive.MaxDocumentSize {
			// A restore could not read it: a gap, recorded, rather than a
			// slice that every restore refuses.
			s.lose(e, fmt.Sprintf("the entry %s (%s) is %d bytes, more than the %d a restore reads (a document the server took although it is larger than MongoDB allows): no slice holds it",
				oplog.FormatTS(e.TS), e.NS, len(raw), archive.MaxDocumentSize))
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
		nextOpen, err := s.newOpen(done.Until, done.Until, "")
		if err != nil {
			return err
		}
		*sl = nextOpen
		return nil
	}
}

// late records an entry in scope that was logged after the slice for its
// time, which ends at until, was stored: a gap of that one entry.
func (s *Slicer) late(e oplog.Entry, until bson.Timestamp) {
	s.lose(e, fmt.Sprintf("the entry %s (%s) was logged after the slice for its time was stored (it ends at %s), more than Settle after its timestamp: no slice holds it; raise Settle",
		oplog.FormatTS(e.TS), e.NS, oplog.FormatTS(until)))
}

// lose records an entry in scope that no slice holds: in the status, and
// in the next slice stored.
func (s *Slicer) lose(e oplog.Entry, reason string) {
	g := Gap{From: e.TS, Until: next(e.TS), Reason: reason}
	s.log.Warn("pitr: a gap in the slices", "from", oplog.FormatTS(g.From), "until", oplog.FormatTS(g.Until), "reason", reason)
	s.mu.Lock()
	s.st.Gaps = append(s.st.Gaps, g)
	s.lost = append(s.lost, g)
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
		return nil, fmt.Errorf("pitr: %w: the server keeps no oplog (%s): it is not a replica set member; run it as one (on the embedded FerretDB, create %s as a capped collection)",
			ErrNoOplog, s.cfg.oplogNS, s.cfg.oplogNS)
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

// begin finds where to resume: the end of the newest slice on the remote
// that authenticates as this node's, else the newest exported backup's
// consistency point, else the present; and records a gap when the oplog
// no longer holds that point. It returns the open slice to fill, and
// points r at its start.
func (s *Slicer) begin(ctx context.Context, r oplogReader) (*open, error) {
	cov, err := Scan(ctx, s.cfg.Location)
	if err != nil {
		return nil, err
	}
	tip, ignored, err := s.resume(ctx, cov)
	if err != nil {
		return nil, err
	}
	var from, prevUntil bson.Timestamp
	var base string
	switch {
	case tip != nil:
		from, prevUntil = tip.Until, tip.Until
	case len(cov.Bases) > 0:
		// A backup's metadata is not authenticated, and the slicer cannot
		// open a backup: a point past the oplog's newest entry is not a
		// backup of this node's.
		newest, err := s.target(ctx, r) // right after the oplog's newest entry
		if err != nil {
			return nil, err
		}
		for i := len(cov.Bases) - 1; i >= 0 && from.IsZero(); i-- {
			b := cov.Bases[i]
			if next(b.Oplog.End).After(newest) {
				ignored = append(ignored, Refused{Key: b.Key, Error: fmt.Sprintf("%v: the base backup %s claims a consistency point, %s, after the oplog's newest entry: not a backup of this node's",
					ErrForeign, b.Key, oplog.FormatTS(b.Oplog.End))})
				continue
			}
			from, base = next(b.Oplog.End), path.Base(b.Key)
		}
		if !from.IsZero() {
			prevUntil = from
		} else if err = s.ask(ctx, func(ctx context.Context) (err error) { from, err = s.present(ctx, r); return err }); err != nil {
			return nil, err
		}
	default:
		if err = s.ask(ctx, func(ctx context.Context) (err error) { from, err = s.present(ctx, r); return err }); err != nil {
			return nil, err
		}
	}
	for _, i := range ignored {
		s.log.Warn("pitr: an object on the remote was ignored", "key", i.Key, "error", i.Error)
	}
	s.mu.Lock()
	s.tip, s.st.Ignored = tip, ignored
	if tip != nil {
		s.st.Until = tip.Until
	}
	s.mu.Unlock()
	var gap string
	var ro *errRolledOver
	if prevUntil.IsZero() {
		// From the present on, there is nothing before to lose.
	} else if err := s.ask(ctx, func(ctx context.Context) error { return r.checkHeld(ctx, from) }); errors.As(err, &ro) {
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
	var anchor bson.Timestamp
	err = s.ask(ctx, func(ctx context.Context) (err error) { anchor, err = r.anchor(ctx, from); return err })
	if err != nil {
		return nil, err
	}
	r.seek(from, anchor)
	s.log.Info("pitr: slicing the oplog", "from", oplog.FormatTS(from), "remote", s.prefix+Folder)
	o, err := s.newOpen(from, prevUntil, gap)
	if err == nil && tip == nil {
		o.Base = base
	}
	return o, err
}

// maxIgnored bounds the objects the slicer downloads, newest first, to
// find the newest slice that authenticates.
const maxIgnored = 32

// resume returns the newest slice listed in cov that authenticates under
// the slicer's key as this node's, as its record says, and the newer
// objects it ignored because they do not; nil when none does.
func (s *Slicer) resume(ctx context.Context, cov *Coverage) (*Slice, []Refused, error) {
	listed := slices.Clone(cov.Slices)
	slices.SortStableFunc(listed, func(a, b Slice) int { return cmp.Or(a.Until.Compare(b.Until), a.From.Compare(b.From)) })
	s.mu.Lock()
	tip := s.tip
	s.mu.Unlock()
	var ignored []Refused
	for i := len(listed) - 1; i >= 0 && len(ignored) < maxIgnored; i-- {
		l := listed[i]
		if tip != nil && l.Key == tip.Key {
			return tip, ignored, nil // stored or checked by this process: what it knows of it is authentic
		}
		a, err := s.authenticate(ctx, l)
		switch {
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case errors.Is(err, store.ErrUnreachable):
			return nil, nil, err
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			ignored = append(ignored, Refused{Key: l.Key, Error: err.Error(), err: err})
			continue
		}
		return &a, ignored, nil
	}
	return nil, ignored, nil
}

// authenticate downloads the slice listed as l and returns it as its own
// record says, if it authenticates under the slicer's key as this node's.
func (s *Slicer) authenticate(ctx context.Context, l Slice) (Slice, error) {
	obj, err := s.cfg.Location.Remote.Open(ctx, l.Key)
	if err != nil {
		return Slice{}, fmt.Errorf("pitr: open the slice %s: %w", l.Key, err)
	}
	defer obj.Close()
	limit := cipher.Overhead(s.cfg.MaxSize+2*archive.MaxDocumentSize) + s.cfg.MaxSize + 2*archive.MaxDocumentSize
	if obj.Info().Size > limit {
		return Slice{}, fmt.Errorf("%w: %s: %d bytes, more than a slice of this slicer holds", ErrCorruptSlice, l.Key, obj.Info().Size)
	}
	data, err := io.ReadAll(io.LimitReader(ctxio.NewReader(ctx, obj), limit+1))
	if err != nil {
		return Slice{}, fmt.Errorf("pitr: download the slice %s: %w", l.Key, err)
	}
	sum := sha256.Sum256(data)
	l.Size, l.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	a, err := entries(ctx, l, bytes.NewReader(data), int64(len(data)), s.open, func(oplog.Entry) error { return nil })
	if err != nil {
		return Slice{}, err
	}
	if err := belongs(a, s.node); err != nil {
		return Slice{}, err
	}
	return a, nil
}

// open opens a slice under the slicer's key, or under its keyring's
// password if it was written under another key.
func (s *Slicer) open(src io.ReaderAt, size int64) (*cipher.Reader, error) {
	r, err := s.cfg.Key.NewReader(src, size)
	if errors.Is(err, cipher.ErrWrongPassword) && s.cfg.Keyring != nil {
		return s.cfg.Keyring.NewReader(src, size)
	}
	return r, err
}

// ask makes the requests of op to the server, which must answer each
// within Config.Conn.OperationTimeout: one it does not answer fails as
// unreachable (errcode.Unreachable), saying so.
func (s *Slicer) ask(ctx context.Context, op func(context.Context) error) error {
	return mongodb.Ask(ctx, s.cfg.Conn.OperationTimeout, op)
}

// target is r.target under the operation timeout.
func (s *Slicer) target(ctx context.Context, r oplogReader) (t bson.Timestamp, err error) {
	err = s.ask(ctx, func(ctx context.Context) error { t, err = r.target(ctx); return err })
	return t, err
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
	s.mu.Lock()
	o.Lost = append([]Gap(nil), s.lost...)
	s.mu.Unlock()
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
	info, err := s.cfg.Location.Remote.Put(ctx, o.Key, bytes.NewReader(data), store.Info{
		Name: path.Base(o.Key), Size: int64(len(data)), MD5: hex.EncodeToString(m[:]), SHA256: hex.EncodeToString(h[:]),
		Meta: o.meta(),
	})
	if err != nil {
		return Slice{}, fmt.Errorf("pitr: store the slice %s: %w", o.Key, err)
	}
	done := o.Slice
	done.Size, done.Created, done.SHA256 = info.Size, info.Created, hex.EncodeToString(h[:])
	s.log.Info("pitr: slice stored", "key", o.Key, "entries", done.Entries, "bytes", done.Size)
	s.mu.Lock()
	s.lost = s.lost[len(done.Lost):]
	s.tip = &done
	s.st.Until, s.st.Last, s.st.Open = done.Until, &done, 0
	s.st.Slices++
	s.st.Entries += done.Entries
	s.st.Error, s.st.Code = "", ""
	s.mu.Unlock()
	return done, nil
}
