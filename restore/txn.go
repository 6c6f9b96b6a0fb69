package restore

import (
	"bytes"
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/oplog"
)

// txnBuf holds the operations of a transaction until its commit.
type txnBuf struct {
	ops      []bson.Raw
	last     bson.Timestamp // of its latest entry
	prepared bool
}

// nestedOps parses the operations of an applyOps.
func nestedOps(e oplog.Entry) ([]bson.Raw, error) {
	arr, ok := e.O.Lookup("applyOps").ArrayOK()
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
		op, err := oplog.Parse(raw, true)
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
func (p *replayer) transaction(ctx context.Context, e oplog.Entry, key string) error {
	ops, err := nestedOps(e)
	if err != nil {
		return err
	}
	buf := p.txns[key]
	if prev := e.PrevTS(); prev.IsZero() {
		buf = nil // its first entry
	} else if buf == nil || !buf.last.Equal(prev) {
		delete(p.txns, key)
		p.rep.Incomplete++
		p.r.note("a transaction whose entry at %s follows one at %s that is not in the oplog was not replayed (it began before the capture)", oplog.FormatTS(e.TS), oplog.FormatTS(prev))
		return nil
	}
	if buf == nil {
		buf = &txnBuf{}
	}
	for _, op := range ops {
		buf.ops = append(buf.ops, bytes.Clone(op))
	}
	buf.last = e.TS
	if oplog.Flag(e.O, "partialTxn") || oplog.Flag(e.O, "prepare") {
		buf.prepared = oplog.Flag(e.O, "prepare")
		p.txns[key] = buf
		return nil
	}
	delete(p.txns, key)
	p.rep.Transactions++
	return p.applyAll(ctx, buf.ops)
}
