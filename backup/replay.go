package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
)

// OplogReport is what replaying a backup's oplog did or, in a dry run,
// would do. Operations are counted one by one, those of transactions
// included.
type OplogReport struct {
	// Captured is the span the backup captured (zero for an archive-format
	// backup, whose manifest is not stored).
	Captured OplogSpan
	// First and Last are the timestamps of the first and last entries
	// replayed; the restored data is consistent as of Last when the whole
	// capture is replayed (LimitReached false, Uncommitted and Incomplete
	// zero).
	First, Last bson.Timestamp
	Entries     int64 // entries read
	Inserts     int64
	Updates     int64
	Deletes     int64
	Commands    int64 // commands applied (create, drop, createIndexes, ...)
	// Transactions is the number of committed transactions applied.
	Transactions int64
	// Skipped counts the operations left out: of namespaces that the
	// filter leaves out or that are never replayed (local, config, system
	// collections), no-ops, and commands that are not replayed (see
	// Notes).
	Skipped int64
	// Conflicts counts the updates that, replayed onto a document the
	// backup holds in a later state, did not fit its shape; as in the
	// server's own replay, they are passed over, and a later entry sets the
	// fields they touched.
	Conflicts int64
	// Uncommitted counts the transactions not committed by the end of the
	// replay, which are not applied; Incomplete those whose first entries
	// the capture missed.
	Uncommitted, Incomplete int64
	// LimitReached reports that OplogLimit stopped the replay early.
	LimitReached bool
}

// Server error codes that replay tolerates, as mongorestore's does.
const (
	codeNamespaceNotFound    = 26
	codeIndexNotFound        = 27
	codePathNotViable        = 28
	codeNamespaceExists      = 48
	codeIndexOptionsConflict = 85
	codeIndexKeySpecConflict = 86
	codeNotImplemented       = 238
)

// maxReplayBatch is the most writes sent in one bulk write. FerretDB v1
// holds a connection of its SQLite pool (100) for every update of a command
// that matched a document until the command ends, and a command of about
// 100 such updates waits forever for one more: stay well below.
const maxReplayBatch = 64

// replayer applies a backup's oplog in order.
type replayer struct {
	r     *restorer
	rep   *OplogReport
	prev  bson.Timestamp
	txns  map[string]*txnBuf
	known map[string]bool // source namespaces that exist in the target: restored or created by replay
	skip  map[string]int  // commands not replayed, by name

	batchTo string
	batch   []writeOp
}

// txnBuf holds the operations of a transaction until its commit.
type txnBuf struct {
	ops      []bson.Raw
	last     bson.Timestamp // of its latest entry
	prepared bool
}

// writeOp is a write of a batch: a model, or an array truncation (which
// reads the document first).
type writeOp struct {
	model  mongo.WriteModel
	filter bson.Raw
	trunc  *truncation
}

// replayOplog replays the oplog run the reader stands at (if the archive
// has one and replay is on), then reads the archive to its end.
func (r *restorer) replayOplog(ctx context.Context, ar archive.Reader) error {
	if r.oplogAt {
		p := &replayer{r: r, rep: &OplogReport{}, txns: map[string]*txnBuf{}, known: map[string]bool{}, skip: map[string]int{}}
		for from, t := range r.byFrom {
			if t != nil {
				p.known[from] = true
			}
		}
		r.oplogRep = p.rep
		if err := p.run(ctx, ar); err != nil {
			return fmt.Errorf("replay the oplog: %w", err)
		}
		for {
			c, err := ar.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: the backup holds documents of %s after its oplog, which must come last", ErrCorrupt, c.Namespace())
		}
	}
	if r.opts.OplogReplay == On && !r.sawOplog {
		return fmt.Errorf("%w: RestoreOptions.OplogReplay is On but the backup holds no oplog (it was made without one); its collections were restored as read", ErrNoOplog)
	}
	if r.oplogRep != nil {
		if m := ar.Manifest(); m != nil && m.Oplog != nil {
			r.oplogRep.Captured = OplogSpan{Start: m.Oplog.Start, End: m.Oplog.End, Entries: m.Oplog.Entries}
		}
	}
	return nil
}

func (p *replayer) run(ctx context.Context, ar archive.Reader) error {
	limit := p.r.opts.OplogLimit
	for {
		raw, err := ar.ReadDocument()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p.rep.Entries++
		e, err := parseEntry(raw, false)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if e.ts.Before(p.prev) {
			return fmt.Errorf("%w: oplog entry %s comes after %s: the oplog is not in timestamp order", ErrCorrupt, tsString(e.ts), tsString(p.prev))
		}
		p.prev = e.ts
		if !limit.IsZero() && e.ts.Compare(limit) >= 0 {
			p.rep.LimitReached = true
			break
		}
		if err := p.apply(ctx, e); err != nil {
			return fmt.Errorf("entry %s: %w", e.describe(), err)
		}
		if p.rep.First.IsZero() {
			p.rep.First = e.ts
		}
		p.rep.Last = e.ts
		if p.rep.Entries%progressEntries == 0 {
			p.r.advance(OplogNamespace, 0, 0)
		}
	}
	if err := p.flush(ctx); err != nil {
		return err
	}
	p.rep.Uncommitted = int64(len(p.txns))
	if p.rep.Uncommitted > 0 {
		p.r.note("%d transactions not committed by the end of the replay were not applied", p.rep.Uncommitted)
	}
	names := make([]string, 0, len(p.skip))
	for name := range p.skip {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p.r.note("oplog: %d %s commands were not replayed", p.skip[name], name)
	}
	return nil
}

// OplogNamespace is the namespace that Progress reports while a restore
// replays the oplog.
const OplogNamespace = "oplog"

// progressEntries is how often replay reports progress.
const progressEntries = 1000

// apply applies one entry or nested operation.
func (p *replayer) apply(ctx context.Context, e entry) error {
	switch e.op {
	case "n":
		p.rep.Skipped++
		return nil
	case "i", "u", "d":
		return p.crud(ctx, e)
	case "c":
		if err := p.flush(ctx); err != nil {
			return err
		}
		return p.command(ctx, e)
	}
	return fmt.Errorf("%w: unknown op %q", ErrCorrupt, e.op)
}

// selected reports whether the writes to source namespace ns are
// replayed, and where to.
func (p *replayer) selected(ns string) (string, bool) {
	if !replayable(ns) || !p.r.opts.Filter.Match(ns) {
		return "", false
	}
	return RenameNamespace(ns, p.r.opts.Renames), true
}

func (p *replayer) coll(to string) (*mongo.Collection, error) {
	db, name, ok := strings.Cut(to, ".")
	if !ok || db == "" || name == "" {
		return nil, fmt.Errorf("%w: rename to %q: a namespace is db.collection", ErrInvalid, to)
	}
	return p.r.client.Database(db).Collection(name), nil
}

// crud queues an insert, update or delete, as mongorestore applies them:
// inserts as upserts by _id, updates as upserts, deletes of documents
// already gone as no-ops. So an entry whose effect the backup already
// holds applies again without harm.
func (p *replayer) crud(ctx context.Context, e entry) error {
	to, ok := p.selected(e.ns)
	if !ok {
		p.rep.Skipped++
		return nil
	}
	var ops []writeOp
	switch e.op {
	case "i":
		id, err := e.o.LookupErr("_id")
		if err != nil {
			return fmt.Errorf("%w: an insert without _id", ErrCorrupt)
		}
		filter, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		ops = append(ops, writeOp{model: mongo.NewReplaceOneModel().SetFilter(bson.Raw(filter)).SetReplacement(e.o).SetUpsert(true)})
		p.rep.Inserts++
	case "u":
		if e.o2 == nil {
			return fmt.Errorf("%w: an update without o2", ErrCorrupt)
		}
		var err error
		if ops, err = updateOps(e.o2, e.o); err != nil {
			return err
		}
		p.rep.Updates++
	case "d":
		ops = append(ops, writeOp{model: mongo.NewDeleteOneModel().SetFilter(e.o)})
		p.rep.Deletes++
	}
	p.known[e.ns] = true
	if p.r.opts.DryRun {
		return nil
	}
	if to != p.batchTo || len(p.batch)+len(ops) > maxReplayBatch {
		if err := p.flush(ctx); err != nil {
			return err
		}
	}
	p.batchTo = to
	p.batch = append(p.batch, ops...)
	return nil
}

// updateOps translates the o of an update entry into writes on the
// document that filter (its o2) selects: a $v: 2 diff into update
// operators, operators ($v: 1, or none) as they are, FerretDB's whole-document
// $set and a replacement document into a replacement.
func updateOps(filter, o bson.Raw) ([]writeOp, error) {
	upsert := func(u any) writeOp {
		return writeOp{model: mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(u).SetUpsert(true)}
	}
	replace := func(doc bson.Raw) writeOp {
		return writeOp{model: mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(doc).SetUpsert(true)}
	}
	elems, err := o.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: update: %w", ErrCorrupt, err)
	}
	if v, ok := o.Lookup("$v").AsInt64OK(); ok && v == 2 {
		diff, ok := o.Lookup("diff").DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: a $v: 2 update without a diff", ErrCorrupt)
		}
		steps, err := diffUpdates(diff)
		if err != nil {
			return nil, err
		}
		var ops []writeOp
		for _, s := range steps {
			if s.trunc != nil {
				ops = append(ops, writeOp{filter: filter, trunc: s.trunc})
			} else {
				ops = append(ops, upsert(s.update))
			}
		}
		return ops, nil
	}
	var operators bson.D
	for _, el := range elems {
		if strings.HasPrefix(el.Key(), "$") {
			if el.Key() != "$v" {
				operators = append(operators, bson.E{Key: el.Key(), Value: el.Value()})
			}
		}
	}
	if len(operators) == 0 {
		if len(elems) > 0 && strings.HasPrefix(elems[0].Key(), "$") {
			return nil, nil // {$v: 1} alone: nothing to do
		}
		return []writeOp{replace(o)}, nil
	}
	if set, ok := o.Lookup("$set").DocumentOK(); ok && len(operators) == 1 && wholeDocument(filter, set) {
		return []writeOp{replace(set)}, nil
	}
	return []writeOp{upsert(operators)}, nil
}

// wholeDocument reports whether a $set is FerretDB's record of an update:
// the whole new document, _id included (MongoDB never logs a $set of _id).
// Replayed as a replacement, it also removes the fields the update unset.
func wholeDocument(filter, set bson.Raw) bool {
	id, err := set.LookupErr("_id")
	if err != nil {
		return false
	}
	want, err := filter.LookupErr("_id")
	return err == nil && id.Type == want.Type && bytes.Equal(id.Value, want.Value)
}

// flush applies the queued writes of one namespace in order.
func (p *replayer) flush(ctx context.Context) error {
	ops := p.batch
	p.batch = nil
	if len(ops) == 0 {
		return nil
	}
	coll, err := p.coll(p.batchTo)
	if err != nil {
		return err
	}
	for len(ops) > 0 {
		if t := ops[0].trunc; t != nil {
			if err := p.truncate(ctx, coll, ops[0].filter, *t); err != nil {
				return err
			}
			ops = ops[1:]
			continue
		}
		n := slices.IndexFunc(ops, func(o writeOp) bool { return o.trunc != nil })
		if n < 0 {
			n = len(ops)
		}
		models := make([]mongo.WriteModel, n)
		for i := range n {
			models[i] = ops[i].model
		}
		done, err := p.bulk(ctx, coll, models)
		if err != nil {
			return err
		}
		ops = ops[done:]
	}
	return nil
}

// bulk writes models in order and returns how many it is done with: all
// of them, or those up to and including one that failed with a conflict,
// which it passes over. The writes from the failed one's reported index on
// are retried one by one to find it (every write applies again without
// harm, and a server may report too low an index: FerretDB does).
func (p *replayer) bulk(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) (int, error) {
	_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
	if err == nil {
		return len(models), nil
	}
	k, ok := conflictAt(err)
	if !ok || k >= len(models) {
		return 0, fmt.Errorf("write to %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	for j := k; j < len(models); j++ {
		_, err := coll.BulkWrite(ctx, models[j:j+1])
		if err == nil {
			continue
		}
		if _, ok := conflictAt(err); !ok {
			return 0, fmt.Errorf("write to %s.%s: %w", coll.Database().Name(), coll.Name(), err)
		}
		p.rep.Conflicts++
		return j + 1, nil
	}
	return len(models), nil
}

// conflictAt reports whether err is a bulk write's failure on an update that
// does not fit the document's shape (a field set inside a value that is no
// object), and the index of the write that failed.
func conflictAt(err error) (int, bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) != 1 {
		return 0, false
	}
	we := bwe.WriteErrors[0]
	return we.Index, we.Code == codePathNotViable
}

// truncate cuts an array of the document filter selects, as a diff's new
// length says.
func (p *replayer) truncate(ctx context.Context, coll *mongo.Collection, filter bson.Raw, t truncation) error {
	doc, err := coll.FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	u := t.truncate(doc)
	if u == nil {
		return nil
	}
	if _, err := coll.UpdateOne(ctx, filter, u); err != nil {
		return fmt.Errorf("write to %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	return nil
}

// command applies a command entry.
func (p *replayer) command(ctx context.Context, e entry) error {
	name := e.command()
	switch name {
	case "applyOps":
		if key, ok := e.txnKey(); ok {
			return p.transaction(ctx, e, key)
		}
		ops, err := nestedOps(e)
		if err != nil {
			return err
		}
		return p.applyAll(ctx, ops)
	case "commitTransaction":
		key, ok := e.txnKey()
		buf := p.txns[key]
		if !ok || buf == nil || !buf.prepared {
			p.rep.Incomplete++
			p.r.note("a transaction committed at %s was not replayed: its prepare entry is not in the oplog (it began before the capture)", tsString(e.ts))
			return nil
		}
		delete(p.txns, key)
		p.rep.Transactions++
		return p.applyAll(ctx, buf.ops)
	case "abortTransaction":
		if key, ok := e.txnKey(); ok {
			delete(p.txns, key)
		}
		return nil
	case "dropDatabase":
		return p.dropDatabase(ctx, e.db())
	case "renameCollection":
		return p.rename(ctx, e)
	case "create", "drop", "createIndexes", "commitIndexBuild", "dropIndexes", "deleteIndexes", "collMod":
		return p.collCommand(ctx, e, name)
	case "startIndexBuild", "abortIndexBuild":
		p.rep.Skipped++ // commitIndexBuild builds the indexes
		return nil
	}
	p.rep.Skipped++
	p.skip[name]++
	return nil
}

// nestedOps parses the operations of an applyOps.
func nestedOps(e entry) ([]bson.Raw, error) {
	arr, ok := e.o.Lookup("applyOps").ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: applyOps is no array", ErrCorrupt)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("%w: applyOps: %w", ErrCorrupt, err)
	}
	ops := make([]bson.Raw, 0, len(vals))
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: an operation of applyOps is no document", ErrCorrupt)
		}
		ops = append(ops, d)
	}
	return ops, nil
}

func (p *replayer) applyAll(ctx context.Context, ops []bson.Raw) error {
	for _, raw := range ops {
		op, err := parseEntry(raw, true)
		if err != nil {
			return fmt.Errorf("%w: applyOps: %w", ErrCorrupt, err)
		}
		if err := p.apply(ctx, op); err != nil {
			return err
		}
	}
	return p.flush(ctx)
}

// transaction handles an applyOps entry of a transaction: the entries of a
// transaction that spans several (partialTxn) and of a prepared one are
// held until it commits, linked by prevOpTime; the entry that commits an
// unprepared one applies them all.
func (p *replayer) transaction(ctx context.Context, e entry, key string) error {
	ops, err := nestedOps(e)
	if err != nil {
		return err
	}
	buf := p.txns[key]
	if prev := e.prevTS(); prev.IsZero() {
		buf = nil // its first entry
	} else if buf == nil || !buf.last.Equal(prev) {
		delete(p.txns, key)
		p.rep.Incomplete++
		p.r.note("a transaction whose entry at %s follows one at %s that is not in the oplog was not replayed (it began before the capture)", tsString(e.ts), tsString(prev))
		return nil
	}
	if buf == nil {
		buf = &txnBuf{}
	}
	for _, op := range ops {
		buf.ops = append(buf.ops, bytes.Clone(op))
	}
	buf.last = e.ts
	if flag(e.o, "partialTxn") || flag(e.o, "prepare") {
		buf.prepared = flag(e.o, "prepare")
		p.txns[key] = buf
		return nil
	}
	delete(p.txns, key)
	p.rep.Transactions++
	return p.applyAll(ctx, buf.ops)
}

// withoutKeys returns o without the given top-level keys.
func withoutKeys(o bson.Raw, keys ...string) bson.D {
	elems, _ := o.Elements()
	var d bson.D
	for _, e := range elems {
		if !slices.Contains(keys, e.Key()) {
			d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return d
}

// collCommand applies a command on one collection: create, drop,
// createIndexes (and commitIndexBuild), dropIndexes and collMod, tolerating
// what a replay onto data the backup holds in a later state meets: a
// collection that exists or is gone, an index that exists or is gone.
func (p *replayer) collCommand(ctx context.Context, e entry, name string) error {
	from := e.target()
	to, ok := p.selected(from)
	if !ok {
		p.rep.Skipped++
		return nil
	}
	p.rep.Commands++
	if name == "create" {
		p.known[from] = true
	}
	if name == "drop" {
		delete(p.known, from)
	}
	if p.r.opts.DryRun {
		return nil
	}
	coll, err := p.coll(to)
	if err != nil {
		return err
	}
	db := coll.Database()
	var cmd bson.D
	var tolerate []int
	switch name {
	case "create":
		cmd = append(bson.D{{Key: "create", Value: coll.Name()}}, withoutKeys(e.o, "create", "idIndex")...)
		tolerate = []int{codeNamespaceExists}
	case "drop":
		if err := coll.Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", to, err)
		}
		return nil
	case "createIndexes", "commitIndexBuild":
		var raws []bson.Raw
		if name == "createIndexes" {
			spec, _ := bson.Marshal(withoutKeys(e.o, "createIndexes"))
			raws = []bson.Raw{spec}
		} else {
			specs, _ := e.o.Lookup("indexes").ArrayOK()
			vals, _ := specs.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					raws = append(raws, d)
				}
			}
		}
		specs := indexSpecs(raws)
		if len(specs) == 0 {
			return nil
		}
		cmd = bson.D{{Key: "createIndexes", Value: coll.Name()}, {Key: "indexes", Value: specs}}
		tolerate = []int{codeIndexOptionsConflict, codeIndexKeySpecConflict}
	case "dropIndexes", "deleteIndexes":
		cmd = bson.D{{Key: "dropIndexes", Value: coll.Name()}, {Key: "index", Value: e.o.Lookup("index")}}
		tolerate = []int{codeIndexNotFound, codeNamespaceNotFound}
	case "collMod":
		cmd = append(bson.D{{Key: "collMod", Value: coll.Name()}}, withoutKeys(e.o, "collMod")...)
		tolerate = []int{codeNamespaceNotFound}
	}
	err = db.RunCommand(ctx, cmd).Err()
	switch {
	case err == nil:
		return nil
	case slices.ContainsFunc(tolerate, func(c int) bool { return isCode(err, c) }):
		return nil
	case name == "collMod" && (isCode(err, codeCommandNotFound) || isCode(err, codeNotImplemented)):
		p.rep.Commands--
		p.rep.Skipped++
		p.skip[name]++
		return nil
	}
	return fmt.Errorf("%s on %s: %w", name, to, err)
}

// dropDatabase drops, of database db, the collections the replay knows of
// and selects: a database drop does not reach beyond the restore's own
// namespaces, wherever renames put them.
func (p *replayer) dropDatabase(ctx context.Context, db string) error {
	var drop []string
	for from := range p.known {
		if strings.HasPrefix(from, db+".") {
			drop = append(drop, from)
		}
	}
	sort.Strings(drop)
	for _, from := range drop {
		delete(p.known, from)
		to, ok := p.selected(from)
		if !ok {
			continue
		}
		p.rep.Commands++
		if p.r.opts.DryRun {
			continue
		}
		coll, err := p.coll(to)
		if err != nil {
			return err
		}
		if err := coll.Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", to, err)
		}
	}
	return nil
}

// rename replays a renameCollection. Between two selected namespaces it
// renames their targets; out of the selection it drops the source's target;
// into the selection from outside it cannot (the documents are not in the
// restore), which the Report notes.
func (p *replayer) rename(ctx context.Context, e entry) error {
	from, _ := e.o.Lookup("renameCollection").StringValueOK()
	toNS, _ := e.o.Lookup("to").StringValueOK()
	dropTarget := false
	if v, err := e.o.LookupErr("dropTarget"); err == nil {
		b, isBool := v.BooleanOK()
		dropTarget = b || !isBool && v.Type != bson.TypeNull // a UUID: the target to drop
	}
	fromTo, fromOK := p.selected(from)
	toTo, toOK := p.selected(toNS)
	switch {
	case !fromOK && !toOK:
		p.rep.Skipped++
		return nil
	case !fromOK:
		p.rep.Skipped++
		p.r.note("the rename of %s into %s was not replayed: %s is not restored, so %s misses its documents", from, toNS, from, toTo)
		return nil
	}
	p.rep.Commands++
	delete(p.known, from)
	if toOK {
		p.known[toNS] = true
	}
	if p.r.opts.DryRun {
		return nil
	}
	src, err := p.coll(fromTo)
	if err != nil {
		return err
	}
	if !toOK {
		if err := src.Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", fromTo, err)
		}
		return nil
	}
	if _, err := p.coll(toTo); err != nil {
		return err
	}
	err = p.r.client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: fromTo}, {Key: "to", Value: toTo}, {Key: "dropTarget", Value: dropTarget},
	}).Err()
	switch {
	case err == nil, isCode(err, codeNamespaceNotFound): // already renamed
		return nil
	case isCode(err, codeNamespaceExists):
		// Both are in the backup: the target as renamed, the source as it
		// was before; the source is gone by the end.
		if err := src.Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", fromTo, err)
		}
		return nil
	}
	return fmt.Errorf("rename %s to %s: %w", fromTo, toTo, err)
}
