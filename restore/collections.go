package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/namespace"
)

// maxBatchBytes bounds the documents held by one insert batch.
const maxBatchBytes = 8 << 20

// target is one namespace being restored.
type target struct {
	col     archive.Collection
	to      string
	coll    *mongo.Collection // nil in a dry run
	observe func([]byte)      // Options.Observer's, or nil
	mu      sync.Mutex
	docs    int64 // inserted (or, in a dry run, read)
	dups    int64 // passed over as duplicates (Options.SkipDuplicates)
	indexes int
}

type batch struct {
	t    *target
	docs []any
	n    int64
}

type restorer struct {
	opts   Options
	client *mongo.Client
	byFrom map[string]*target
	order  []*target

	batches chan batch
	wg      sync.WaitGroup

	progMu sync.Mutex
	prog   archive.Progress

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
				dups, err := r.insert(ctx, b)
				if err != nil {
					fail(err)
					continue
				}
				b.t.mu.Lock()
				b.t.docs += b.n - dups
				b.t.dups += dups
				b.t.mu.Unlock()
				r.advance(b.t.to, b.n-dups, 0)
			}
		}()
	}
}

// insert inserts a batch, and returns how many of its documents it passed
// over as duplicates (SkipDuplicates).
func (r *restorer) insert(ctx context.Context, b batch) (int64, error) {
	err := mongodb.Ask(ctx, r.opts.Conn.OperationTimeout, func(ctx context.Context) error {
		_, err := b.t.coll.InsertMany(ctx, b.docs, options.InsertMany().SetOrdered(false))
		return err
	})
	if err == nil {
		return 0, nil
	}
	if n, ok := duplicates(err); ok {
		if r.opts.SkipDuplicates {
			return n, nil
		}
		return 0, fmt.Errorf("%w: insert into %s: %w", ErrDuplicateKey, b.t.to, err)
	}
	return 0, fmt.Errorf("insert into %s: %w", b.t.to, err)
}

// duplicates reports whether err is an insert's failure on duplicate keys
// alone, and on how many documents.
func duplicates(err error) (int64, bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return 0, false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != mongodb.CodeDuplicateKey {
			return 0, false
		}
	}
	return int64(len(bwe.WriteErrors)), true
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
			if r.opts.OplogReplay != ReplayNever {
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
		if t.observe != nil {
			t.observe(doc)
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
	if db, coll, _ := mongodb.Split(from); !mongodb.IsAuthz(from) && (mongodb.ServerDatabase(db) || strings.HasPrefix(coll, "system.")) {
		r.byFrom[from] = nil
		r.note("%s not restored: restore never writes the server's own namespaces (local, config, system collections)", from)
		return nil, nil
	}
	if mongodb.IsAuthz(from) {
		if r.opts.SkipUsersAndRoles {
			r.byFrom[from] = nil
			if from != mongodb.AuthVersion {
				r.note("%s not restored (SkipUsersAndRoles)", from)
			}
			return nil, nil
		}
		return r.authzTarget(ctx, c)
	}
	to := r.opts.Renames.Apply(from)
	db, name, ok := mongodb.Split(to)
	if !ok {
		return nil, fmt.Errorf("%w: rename %s to %q: a namespace is db.collection", namespace.ErrBadPattern, from, to)
	}
	t := &target{col: *c, to: to}
	if r.opts.Observer != nil {
		var err error
		if t.observe, err = r.opts.Observer.Namespace(ctx, *c, to); err != nil {
			return nil, fmt.Errorf("restore %s into %s: %w", from, to, err)
		}
	}
	r.byFrom[from] = t
	r.order = append(r.order, t)
	if r.opts.DryRun {
		return t, nil
	}
	d := r.client.Database(db)
	if r.opts.Drop {
		if err := mongodb.Ask(ctx, r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return d.Collection(name).Drop(ctx) }); err != nil {
			return nil, fmt.Errorf("drop %s: %w", to, err)
		}
	}
	if err := createCollection(ctx, r.opts.Conn.OperationTimeout, d, name, c); err != nil {
		return nil, err
	}
	t.coll = d.Collection(name)
	return t, nil
}

// createCollection creates name with the backed-up options, unless it
// exists already, giving each request timeout to be answered.
func createCollection(ctx context.Context, timeout time.Duration, db *mongo.Database, name string, c *archive.Collection) error {
	var existing []string
	err := mongodb.Ask(ctx, timeout, func(ctx context.Context) (err error) {
		existing, err = db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
		return err
	})
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
	if err := mongodb.Ask(ctx, timeout, func(ctx context.Context) error { return db.RunCommand(ctx, cmd).Err() }); err != nil {
		return fmt.Errorf("create %s.%s: %w", db.Name(), name, err)
	}
	return nil
}

// finish builds the indexes, merges users and roles, replays the oplog and
// checks the counts against the manifest.
func (r *restorer) finish(ctx context.Context, ar archive.Reader) error {
	for _, t := range r.order {
		if t.coll != nil {
			if err := createIndexes(ctx, r.opts.Conn.OperationTimeout, t); err != nil {
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
	if r.opts.Observer != nil {
		if err := r.opts.Observer.Restored(ctx); err != nil {
			return err
		}
	}
	if err := r.replayOplog(ctx, ar); err != nil {
		return err
	}
	r.noteSkipped(ar)
	want := map[string]int64{}
	if m := ar.Manifest(); m != nil {
		for _, ns := range m.Namespaces {
			want[ns.Namespace] = ns.Documents
		}
	}
	for _, t := range r.order {
		if n, ok := want[t.col.Namespace()]; ok && n != t.docs+t.dups {
			there := ""
			if t.dups > 0 {
				there = fmt.Sprintf(" (and %d were there already)", t.dups)
			}
			return fmt.Errorf("%w: %s holds %d documents in the backup, %d were restored into %s%s",
				ErrCountMismatch, t.col.Namespace(), n, t.docs, t.to, there)
		}
	}
	return nil
}

// createIndexes recreates the backed-up indexes but _id's, for as long as
// the server answers pings within timeout. Specs lose "ns" (FerretDB
// rejects it; MongoDB ignores it) and "v" (the server picks it).
func createIndexes(ctx context.Context, timeout time.Duration, t *target) error {
	specs := indexSpecs(t.col.Indexes)
	if len(specs) == 0 {
		return nil
	}
	cmd := bson.D{{Key: "createIndexes", Value: t.coll.Name()}, {Key: "indexes", Value: specs}}
	db := t.coll.Database()
	if err := mongodb.AskLong(ctx, db.Client(), timeout, func(ctx context.Context) error { return db.RunCommand(ctx, cmd).Err() }); err != nil {
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
