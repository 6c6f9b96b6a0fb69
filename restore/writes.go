package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
)

// maxReplayBatch is the most writes sent in one bulk write. FerretDB v1
// holds a connection of its SQLite pool (100) for every update of a command
// that matched a document until the command ends, and a command of about
// 100 such updates waits forever for one more: stay well below.
const maxReplayBatch = 64

// writeOp is a write of a batch: a model, or an array truncation (which
// reads the document first).
type writeOp struct {
	model  mongo.WriteModel
	filter bson.Raw
	trunc  *oplog.Truncation
}

// crud queues an insert, update or delete, as mongorestore applies them:
// inserts as upserts by _id, updates as upserts, deletes of documents
// already gone as no-ops. So an entry whose effect the backup already
// holds applies again without harm.
func (p *replayer) crud(ctx context.Context, e oplog.Entry) error {
	to, ok := p.selected(e.NS)
	if !ok {
		p.rep.Skipped++
		return nil
	}
	var ops []writeOp
	switch e.Op {
	case "i":
		id, err := e.O.LookupErr("_id")
		if err != nil {
			return fmt.Errorf("%w: an insert without _id", ErrCorrupt)
		}
		filter, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		ops = append(ops, writeOp{model: mongo.NewReplaceOneModel().SetFilter(bson.Raw(filter)).SetReplacement(e.O).SetUpsert(true)})
		p.rep.Inserts++
	case "u":
		if e.O2 == nil {
			return fmt.Errorf("%w: an update without o2", ErrCorrupt)
		}
		var err error
		if ops, err = updateOps(e.O2, e.O); err != nil {
			return err
		}
		p.rep.Updates++
	case "d":
		ops = append(ops, writeOp{model: mongo.NewDeleteOneModel().SetFilter(e.O)})
		p.rep.Deletes++
	}
	p.known[e.NS] = true
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
		steps, err := oplog.DiffUpdates(diff)
		if err != nil {
			return nil, err
		}
		var ops []writeOp
		for _, s := range steps {
			if s.Trunc != nil {
				ops = append(ops, writeOp{filter: filter, trunc: s.Trunc})
			} else {
				ops = append(ops, upsert(s.Update))
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
	d := p.r.opts.Conn.OperationTimeout
	err := mongodb.Ask(ctx, d, func(ctx context.Context) error {
		_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
		return err
	})
	err = p.probe(ctx, err)
	if err == nil {
		return len(models), nil
	}
	k, ok := conflictAt(err)
	if !ok || k >= len(models) {
		return 0, fmt.Errorf("write to %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	for j := k; j < len(models); j++ {
		err := mongodb.Ask(ctx, d, func(ctx context.Context) error {
			_, err := coll.BulkWrite(ctx, models[j:j+1])
			return err
		})
		err = p.probe(ctx, err)
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

// probe tells a replayed write that got no answer within the operation
// timeout from a server that is down: when the server answers a ping, the
// error is mongodb.ErrSlow, which says to raise the timeout, rather than
// ErrUnreachable.
func (p *replayer) probe(ctx context.Context, err error) error {
	if err == nil || !errors.Is(err, ErrUnreachable) {
		return err
	}
	if f := p.r.opts.replayTimedOut; f != nil {
		f()
	}
	return mongodb.Probe(ctx, p.r.client, err)
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
	return we.Index, we.Code == mongodb.CodePathNotViable
}

// truncate cuts an array of the document filter selects, as a diff's new
// length says.
func (p *replayer) truncate(ctx context.Context, coll *mongo.Collection, filter bson.Raw, t oplog.Truncation) error {
	d := p.r.opts.Conn.OperationTimeout
	var doc bson.Raw
	err := mongodb.Ask(ctx, d, func(ctx context.Context) (err error) {
		doc, err = coll.FindOne(ctx, filter).Raw()
		return err
	})
	err = p.probe(ctx, err)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	u := t.Update(doc)
	if u == nil {
		return nil
	}
	err = mongodb.Ask(ctx, d, func(ctx context.Context) error {
		_, err := coll.UpdateOne(ctx, filter, u)
		return err
	})
	err = p.probe(ctx, err)
	if err != nil {
		return fmt.Errorf("write to %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	return nil
}
