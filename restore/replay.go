package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/namespace"
)

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

// replayOplog replays the oplog run the reader stands at (if the archive
// has one and replay is on), then reads the archive to its end; then the
// further oplog of Options.FurtherOplog, if any.
func (r *restorer) replayOplog(ctx context.Context, ar archive.Reader) error {
	var p *replayer
	if r.oplogAt {
		p = r.newReplayer()
		if err := p.run(ctx, ar); err != nil {
			return replayError("replay the oplog", err)
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
	if r.opts.OplogReplay == ReplayRequired && !r.sawOplog {
		return fmt.Errorf("%w: Options.OplogReplay is ReplayRequired but the backup holds no oplog (it was made without one); its collections were restored as read", ErrNoOplog)
	}
	if r.opts.FurtherOplog != nil && r.opts.OplogReplay != ReplayNever {
		if p == nil {
			p = r.newReplayer()
		}
		if err := p.further(ctx, r.opts.FurtherOplog); err != nil {
			return replayError("replay the further oplog", err)
		}
	}
	if p != nil {
		if err := p.finish(ctx); err != nil {
			return replayError("replay the oplog", err)
		}
	}
	if r.oplogRep != nil {
		if m := ar.Manifest(); m != nil && m.Oplog != nil {
			r.oplogRep.Captured = m.Oplog.OplogSpan
		}
	}
	return nil
}

// replayError is err of a replay, with what the replay was doing before
// it, unless it is own (such as ErrCorrupt with details, which name the
// oplog entry).
func replayError(what string, err error) error {
	if own(err) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (r *restorer) newReplayer() *replayer {
	p := &replayer{r: r, rep: &OplogReport{}, txns: map[string]*txnBuf{}, known: map[string]bool{}, skip: map[string]int{}}
	for from, t := range r.byFrom {
		if t != nil {
			p.known[from] = true
		}
	}
	r.oplogRep = p.rep
	return p
}

// errLimit stops a replay at Options.OplogLimit.
var errLimit = errors.New("restore: the oplog limit is reached")

// run replays the oplog run the archive reader stands at.
func (p *replayer) run(ctx context.Context, ar archive.Reader) error {
	for {
		raw, err := ar.ReadDocument()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.entry(ctx, raw); errors.Is(err, errLimit) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// further replays the entries src emits, after those of the backup.
func (p *replayer) further(ctx context.Context, src archive.OplogSource) error {
	if p.rep.LimitReached {
		return nil
	}
	span, err := src.Oplog(ctx, func(raw []byte) error { return p.entry(ctx, raw) })
	if err != nil && !errors.Is(err, errLimit) {
		return err
	}
	p.rep.Further = span
	return nil
}

// entry replays one entry, in order; errLimit once it is at or after
// Options.OplogLimit.
func (p *replayer) entry(ctx context.Context, raw bson.Raw) error {
	limit := p.r.opts.OplogLimit
	p.rep.Entries++
	e, err := oplog.Parse(raw, false)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if e.TS.Before(p.prev) {
		return fmt.Errorf("%w: oplog entry %s comes after %s: the oplog is not in timestamp order", ErrCorrupt, oplog.FormatTS(e.TS), oplog.FormatTS(p.prev))
	}
	p.prev = e.TS
	if !limit.IsZero() && e.TS.Compare(limit) >= 0 {
		p.rep.LimitReached = true
		return errLimit
	}
	if err := p.apply(ctx, e); err != nil {
		if own(err) {
			return fmt.Errorf("%w (oplog entry %s)", err, e)
		}
		return fmt.Errorf("entry %s: %w", e, err)
	}
	if p.rep.First.IsZero() {
		p.rep.First = e.TS
	}
	p.rep.Last = e.TS
	if p.rep.Entries%progressEntries == 0 {
		p.r.advance(oplogProgress, 0, 0)
	}
	return nil
}

// finish writes what is batched and notes what was not replayed.
func (p *replayer) finish(ctx context.Context) error {
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

// oplogProgress is the namespace that Progress reports while a restore
// replays the oplog.
const oplogProgress = "oplog"

// progressEntries is how often replay reports progress.
const progressEntries = 1000

// apply applies one entry or nested operation.
func (p *replayer) apply(ctx context.Context, e oplog.Entry) error {
	switch e.Op {
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
	return fmt.Errorf("%w: unknown op %q", ErrCorrupt, e.Op)
}

// selected reports whether the writes to source namespace ns are
// replayed, and where to.
func (p *replayer) selected(ns string) (string, bool) {
	if !oplog.Replayable(ns) || !p.r.opts.Filter.Match(ns) {
		return "", false
	}
	return p.r.opts.Renames.Apply(ns), true
}

func (p *replayer) coll(to string) (*mongo.Collection, error) {
	db, name, ok := mongodb.Split(to)
	if !ok {
		return nil, fmt.Errorf("%w: rename to %q: a namespace is db.collection", namespace.ErrBadPattern, to)
	}
	return p.r.client.Database(db).Collection(name), nil
}
