package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
)

// Rename maps source namespaces to target ones, like mongorestore's
// --nsFrom and --nsTo: each "*" in From matches any run of characters, and
// the runs fill the "*"s of To in order. {From: "app.*", To: "app_restored.*"}
// restores every collection of app into app_restored.
type Rename struct {
	From, To string
}

// RestoreOptions configure Restore. Client or URI is required unless DryRun.
type RestoreOptions struct {
	// Client is the target server; if nil, URI is connected to.
	Client *mongo.Client
	URI    string
	// Timeout bounds server selection when URI is connected to; default
	// DefaultTimeout.
	Timeout time.Duration

	// Formats and Compressions an archive may have been written with
	// beyond the built-in ones (SlotConfig.Format and .Compression of the
	// backup); they are recognised by their Match methods.
	Formats      []archive.Format
	Compressions []archive.Compression

	// Filter selects source namespaces; default all.
	Filter Filter
	// Renames are tried in order; the first that matches a namespace wins.
	Renames []Rename
	// Drop drops each target collection before restoring into it.
	Drop bool
	// DryRun authenticates and reads the whole backup and reports what would
	// be restored, writing nothing.
	DryRun bool
	// Parallel is how many insert batches run at once; default 4.
	Parallel int
	// BatchSize is the most documents per insert; default 1000.
	BatchSize int
	// OplogReplay replays the oplog that a backup captured (Config.Oplog)
	// once its collections are restored and indexed, as
	// mongorestore --oplogReplay does, so that the restored data is
	// consistent as of the capture's end (see the README's Consistency
	// section). Auto, the default: when the backup holds an oplog; On:
	// likewise, and the restore fails with ErrNoOplog, after restoring the
	// collections, when it holds none; Off: never. Replay honours Filter
	// and Renames; with DryRun it counts what it would apply
	// (Report.Oplog).
	OplogReplay Toggle
	// OplogLimit, if set, stops the replay before the first entry whose
	// timestamp is OplogLimit or later, as mongorestore --oplogLimit does.
	// The data is then consistent as of no point in time: the backup's
	// collections already hold some later writes.
	OplogLimit bson.Timestamp
	// SkipUsersAndRoles leaves out the users and roles that a backup holds
	// (Config.UsersAndRoles). Otherwise they are merged into the target's,
	// never overwriting it wholesale: users and roles of the backup are
	// added, those of the same name replaced, the others kept. They are
	// never renamed, and are restored only where the server merges them
	// (not on FerretDB: Report.Notes says so).
	SkipUsersAndRoles bool
	// MaxKDFWork caps the scrypt work N·r·p the backup's header may ask for
	// before the password is tried; default [cipher.DefaultMaxWork], which
	// every backup this package writes stays within. Above it Restore fails
	// with cipher.ErrKDFTooExpensive (CodeInvalid) without deriving a key;
	// raise it only for a file from a source you trust (see
	// [cipher.Options].MaxWork).
	MaxKDFWork uint64
	// Progress, if set, is called as the restore advances.
	Progress func(Progress)
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Report is what a restore did (or, for a dry run, would do).
type Report struct {
	Namespaces []NamespaceReport
	Documents  int64
	Indexes    int
	Duration   time.Duration
	DryRun     bool
	// Oplog is what replaying the backup's oplog did (or would do); nil
	// when it was not replayed.
	Oplog *OplogReport
	// Notes say what the restore left out and why, such as users and roles
	// a server cannot merge, or oplog entries it could not replay.
	Notes []string
}

// NamespaceReport is one namespace of a Report.
type NamespaceReport struct {
	From, To  string
	Type      string
	Documents int64
	Indexes   int // indexes created, the _id index not counted
}

// maxBatchBytes bounds the documents held by one insert batch.
const maxBatchBytes = 8 << 20

// Restore restores a retrieved backup of size bytes from src. It first
// authenticates the whole file, so a wrong password (ErrWrongPassword) or a
// corrupt file (ErrCorrupt) writes nothing; then it recreates each selected
// collection with its options, inserts its documents in parallel batches,
// builds its indexes, and checks the counts against the backup's manifest
// (ErrCountMismatch). Input that cannot seek can be spooled to a file first.
func Restore(ctx context.Context, src io.ReaderAt, size int64, password []byte, opts *RestoreOptions) (*Report, error) {
	start := time.Now()
	o := RestoreOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := o.Filter.Validate(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	plain, err := cipher.NewReader(src, size, password, &cipher.Options{MaxWork: o.MaxKDFWork})
	if errors.Is(err, cipher.ErrKDFTooExpensive) {
		return nil, fmt.Errorf("restore: %w: for a restore the option is RestoreOptions.MaxKDFWork", err)
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := plain.Verify(ctx); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ar, err := archive.OpenWith(plain, o.Formats, o.Compressions)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", restoreError(err))
	}
	if c, ok := ar.(io.Closer); ok {
		defer c.Close() // what a reader holds when a restore stops early, such as a tar's oplog
	}

	client := o.Client
	if client == nil && !o.DryRun {
		if o.URI == "" {
			return nil, errors.New("restore: set RestoreOptions.Client or URI, or DryRun")
		}
		c, err := connect(o.URI, o.Timeout)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		defer c.Disconnect(context.WithoutCancel(ctx))
		client = c
	}

	r := &restorer{opts: o, client: client, byFrom: map[string]*target{}}
	defer r.dropTemps(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.startWorkers(ctx, cancel)
	err = r.read(ctx, ar)
	r.stopWorkers()
	if err == nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		err = r.finish(ctx, ar)
	}
	rep := r.report(time.Since(start))
	if err != nil {
		return rep, fmt.Errorf("restore: %w", restoreError(err))
	}
	o.Logger.Info("restore done", "namespaces", len(rep.Namespaces), "documents", rep.Documents,
		"indexes", rep.Indexes, "dry_run", o.DryRun, "duration", rep.Duration.Round(time.Millisecond))
	return rep, nil
}

// target is one namespace being restored.
type target struct {
	col     archive.Collection
	to      string
	coll    *mongo.Collection // nil in a dry run
	mu      sync.Mutex
	docs    int64 // inserted (or, in a dry run, read)
	indexes int
}

type batch struct {
	t    *target
	docs []any
	n    int64
}

type restorer struct {
	opts   RestoreOptions
	client *mongo.Client
	byFrom map[string]*target
	order  []*target

	batches chan batch
	wg      sync.WaitGroup

	progMu sync.Mutex
	prog   Progress

	notes    []string
	temps    []string     // temporary collections of admin (users.go)
	sawOplog bool         // the archive holds an oplog
	oplogAt  bool         // read stopped at the oplog, to replay it (replay.go)
	oplogRep *OplogReport // of the replay
}

// note records a note for the Report and logs it.
func (r *restorer) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, msg)
	r.opts.Logger.Info("restore: " + msg)
}

func (r *restorer) startWorkers(ctx context.Context, fail context.CancelCauseFunc) {
	r.batches = make(chan batch, r.opts.Parallel)
	for range r.opts.Parallel {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for b := range r.batches {
				if ctx.Err() != nil {
					continue // drain after a failure
				}
				if _, err := b.t.coll.InsertMany(ctx, b.docs, options.InsertMany().SetOrdered(false)); err != nil {
					fail(fmt.Errorf("insert into %s: %w", b.t.to, err))
					continue
				}
				b.t.mu.Lock()
				b.t.docs += b.n
				b.t.mu.Unlock()
				r.advance(b.t.to, b.n, 0)
			}
		}()
	}
}

func (r *restorer) stopWorkers() {
	close(r.batches)
	r.wg.Wait()
}

func (r *restorer) advance(ns string, docs int64, done int) {
	r.progMu.Lock()
	r.prog.Namespace = ns
	r.prog.Documents += docs
	r.prog.NamespacesDone += done
	p := r.prog
	r.progMu.Unlock()
	if r.opts.Progress != nil {
		r.opts.Progress(p)
	}
}

// read walks the archive, preparing each namespace on first sight and
// sending its documents to the workers in batches.
func (r *restorer) read(ctx context.Context, ar archive.Reader) error {
	for {
		c, err := ar.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if c.IsOplog() {
			r.sawOplog = true
			if r.opts.OplogReplay != Off {
				r.oplogAt = true // replayed once the collections are in
				return nil
			}
			continue
		}
		t, err := r.target(ctx, c)
		if err != nil {
			return err
		}
		if err := r.readRun(ctx, ar, t); err != nil {
			return err
		}
	}
}

func (r *restorer) readRun(ctx context.Context, ar archive.Reader, t *target) error {
	var (
		buf  []byte
		docs []any
		n    int64
	)
	flush := func() error {
		if len(docs) == 0 {
			return nil
		}
		if t.coll == nil { // dry run
			t.docs += n
			r.advance(t.to, n, 0)
		} else {
			select {
			case r.batches <- batch{t: t, docs: docs, n: n}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		buf, docs, n = nil, nil, 0
		return nil
	}
	for {
		doc, err := ar.ReadDocument()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return err
		}
		if t == nil {
			continue // not selected
		}
		if buf == nil {
			buf = make([]byte, 0, min(maxBatchBytes, 1<<20))
		}
		off := len(buf)
		buf = append(buf, doc...)
		docs = append(docs, bson.Raw(buf[off:len(buf):len(buf)]))
		n++
		if len(docs) >= r.opts.BatchSize || len(buf) >= maxBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// target returns the namespace's restore target, preparing it on first
// sight: nil when the filter leaves it out.
func (r *restorer) target(ctx context.Context, c *archive.Collection) (*target, error) {
	from := c.Namespace()
	if t, ok := r.byFrom[from]; ok {
		return t, nil
	}
	if !r.opts.Filter.Match(from) {
		r.byFrom[from] = nil
		return nil, nil
	}
	if isAuthz(from) {
		if r.opts.SkipUsersAndRoles {
			r.byFrom[from] = nil
			if from != authzVersion {
				r.note("%s not restored (SkipUsersAndRoles)", from)
			}
			return nil, nil
		}
		return r.authzTarget(ctx, c)
	}
	to := RenameNamespace(from, r.opts.Renames)
	db, name, ok := strings.Cut(to, ".")
	if !ok || db == "" || name == "" {
		return nil, fmt.Errorf("%w: rename %s to %q: a namespace is db.collection", ErrInvalid, from, to)
	}
	t := &target{col: *c, to: to}
	r.byFrom[from] = t
	r.order = append(r.order, t)
	if r.opts.DryRun {
		return t, nil
	}
	d := r.client.Database(db)
	if r.opts.Drop {
		if err := d.Collection(name).Drop(ctx); err != nil {
			return nil, fmt.Errorf("drop %s: %w", to, err)
		}
	}
	if err := createCollection(ctx, d, name, c); err != nil {
		return nil, err
	}
	t.coll = d.Collection(name)
	return t, nil
}

// createCollection creates name with the backed-up options, unless it
// exists already.
func createCollection(ctx context.Context, db *mongo.Database, name string, c *archive.Collection) error {
	existing, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		return fmt.Errorf("restore %s.%s: %w", db.Name(), name, err)
	}
	if len(existing) > 0 {
		return nil
	}
	cmd := bson.D{{Key: "create", Value: name}}
	if c.Options != nil {
		elems, err := c.Options.Elements()
		if err != nil {
			return fmt.Errorf("restore %s.%s: options: %w", db.Name(), name, err)
		}
		for _, e := range elems {
			cmd = append(cmd, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	if err := db.RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("create %s.%s: %w", db.Name(), name, err)
	}
	return nil
}

// finish builds the indexes, merges users and roles, replays the oplog and
// checks the counts against the manifest.
func (r *restorer) finish(ctx context.Context, ar archive.Reader) error {
	for _, t := range r.order {
		if t.coll != nil {
			if err := createIndexes(ctx, t); err != nil {
				return err
			}
		} else {
			t.indexes = len(indexSpecs(t.col.Indexes))
		}
		r.advance(t.to, 0, 1)
	}
	if err := r.mergeAuthz(ctx); err != nil {
		return err
	}
	if err := r.replayOplog(ctx, ar); err != nil {
		return err
	}
	want := map[string]int64{}
	if m := ar.Manifest(); m != nil {
		for _, ns := range m.Namespaces {
			want[ns.Namespace] = ns.Documents
		}
	}
	for _, t := range r.order {
		if n, ok := want[t.col.Namespace()]; ok && n != t.docs {
			return fmt.Errorf("%w: %s holds %d documents in the backup, %d were restored into %s",
				ErrCountMismatch, t.col.Namespace(), n, t.docs, t.to)
		}
	}
	return nil
}

// createIndexes recreates the backed-up indexes but _id's. Specs lose "ns"
// (FerretDB rejects it; MongoDB ignores it) and "v" (the server picks it).
func createIndexes(ctx context.Context, t *target) error {
	specs := indexSpecs(t.col.Indexes)
	if len(specs) == 0 {
		return nil
	}
	cmd := bson.D{{Key: "createIndexes", Value: t.coll.Name()}, {Key: "indexes", Value: specs}}
	if err := t.coll.Database().RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("create indexes on %s: %w", t.to, err)
	}
	t.indexes = len(specs)
	return nil
}

func indexSpecs(raw []bson.Raw) []bson.D {
	var specs []bson.D
	for _, ix := range raw {
		elems, err := ix.Elements()
		if err != nil {
			continue
		}
		var spec bson.D
		skip := false
		for _, e := range elems {
			switch e.Key() {
			case "ns", "v":
				continue
			case "name":
				skip = e.Value().StringValue() == "_id_"
			}
			spec = append(spec, bson.E{Key: e.Key(), Value: e.Value()})
		}
		if !skip {
			specs = append(specs, spec)
		}
	}
	return specs
}

func (r *restorer) report(d time.Duration) *Report {
	rep := &Report{Duration: d, DryRun: r.opts.DryRun, Oplog: r.oplogRep, Notes: r.notes}
	for _, t := range r.order {
		rep.Namespaces = append(rep.Namespaces, NamespaceReport{
			From: t.col.Namespace(), To: t.to, Type: t.col.Type, Documents: t.docs, Indexes: t.indexes,
		})
		rep.Documents += t.docs
		rep.Indexes += t.indexes
	}
	return rep
}

// RenameNamespace applies the first of renames that matches ns, and returns
// ns unchanged when none does.
func RenameNamespace(ns string, renames []Rename) string {
	for _, rn := range renames {
		if parts, ok := matchStars(rn.From, ns); ok {
			var b strings.Builder
			for i, seg := range strings.Split(rn.To, "*") {
				if i > 0 && i-1 < len(parts) {
					b.WriteString(parts[i-1])
				}
				b.WriteString(seg)
			}
			return b.String()
		}
	}
	return ns
}

// matchStars matches s against pattern, where each "*" matches any run of
// characters, and returns the runs.
func matchStars(pattern, s string) ([]string, bool) {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return nil, pattern == s
	}
	if !strings.HasPrefix(s, pattern[:star]) {
		return nil, false
	}
	rest := pattern[star+1:]
	s = s[star:]
	for i := len(s); i >= 0; i-- { // longest run first
		if parts, ok := matchStars(rest, s[i:]); ok {
			return append([]string{s[:i]}, parts...), true
		}
	}
	return nil, false
}
