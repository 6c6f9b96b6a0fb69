package pitr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
)

// ReadMode is how a Slicer reads the oplog.
type ReadMode int

const (
	// ReadAuto tails the oplog with a tailable cursor, but polls it on
	// FerretDB (see [ReadPoll]).
	ReadAuto ReadMode = iota
	// ReadTail tails the oplog with a tailable, awaitData cursor, which
	// the server answers as soon as entries come: on MongoDB, whose
	// readers see the oplog without holes, every entry read is all there
	// is up to it. FerretDB answers such a cursor by reading its whole
	// oplog every 10 ms, and may log two concurrent writes in the other
	// order than their timestamps, so that a cursor can pass an entry
	// over: use it there only with a single writer, as the tests do.
	ReadTail
	// ReadPoll reads the entries of whole seconds of the server's clock
	// that ended Config.Settle ago, every Config.Poll, and those logged
	// late after the last entry read: a write logged later than Settle
	// after its timestamp was taken goes into the open slice, or, if the
	// slice for its time was stored already, is in none, which the
	// status records as a gap.
	ReadPoll
)

// String names the mode as keepslotd's flags do.
func (m ReadMode) String() string {
	switch m {
	case ReadTail:
		return "tail"
	case ReadPoll:
		return "poll"
	}
	return "auto"
}

// errRolledOver: entries the slicer had not read yet are gone from the
// oplog.
type errRolledOver struct {
	oldest, want bson.Timestamp
}

func (e *errRolledOver) Error() string {
	return fmt.Sprintf("the oplog rolled over: its oldest entry is %s, newer than %s, where the slices end", oplog.FormatTS(e.oldest), oplog.FormatTS(e.want))
}

// oplogReader reads the oplog for a Slicer, from where it stands.
type oplogReader interface {
	// read emits the entries from where the reader stands, oldest first,
	// and returns the horizon: every entry before it has been emitted.
	read(ctx context.Context, emit func(oplog.Entry) error) (bson.Timestamp, error)
	// target returns the horizon past every entry logged before the call.
	target(ctx context.Context) (bson.Timestamp, error)
	// wait is how long to wait before the next read, when the horizon
	// should reach target.
	wait(target bson.Timestamp) time.Duration
	// checkHeld fails with errRolledOver unless the oplog holds from.
	checkHeld(ctx context.Context, from bson.Timestamp) error
	// anchor returns the newest entry before from, zero for none.
	anchor(ctx context.Context, from bson.Timestamp) (bson.Timestamp, error)
	// seek makes the next read start at from, after the entry anchor
	// (zero for none): the oplog must still hold it, or an entry after it
	// may have been lost.
	seek(from, anchor bson.Timestamp)
	// at is the horizon of the last read.
	at() bson.Timestamp
	close(ctx context.Context)
}

// oplogColl reads the oplog; the primary is ahead of every secondary.
type oplogColl struct {
	client *mongo.Client
	coll   *mongo.Collection
	ns     string
}

func newOplogColl(client *mongo.Client, ns string) oplogColl {
	db, coll, _ := mongodb.Split(ns)
	return oplogColl{client: client, ns: ns, coll: client.Database(db).Collection(coll,
		options.Collection().SetReadPreference(primaryPreferred))}
}

// The ends of the oplog that edge reads, as $natural sort orders.
const (
	oldest = 1
	newest = -1
)

// edge returns the timestamp of the oldest or newest entry; ok is false for
// an empty oplog.
func (o oplogColl) edge(ctx context.Context, end int) (bson.Timestamp, bool, error) {
	var e struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err := o.coll.FindOne(ctx, bson.D{}, options.FindOne().
		SetSort(bson.D{{Key: "$natural", Value: end}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.Timestamp{}, false, nil
	}
	if err != nil {
		return bson.Timestamp{}, false, mongodb.Classify(fmt.Errorf("read %s: %w", o.ns, err))
	}
	return e.TS, true, nil
}

// checkHeld fails with errRolledOver when entries at or after from may be
// gone: the oplog's oldest entry is newer than from.
func (o oplogColl) checkHeld(ctx context.Context, from bson.Timestamp) error {
	first, ok, err := o.edge(ctx, oldest)
	if err != nil {
		return err
	}
	if ok && first.After(from) {
		return &errRolledOver{oldest: first, want: from}
	}
	return nil
}

func (o oplogColl) anchor(ctx context.Context, from bson.Timestamp) (bson.Timestamp, error) {
	var e struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err := o.coll.FindOne(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$lt", Value: from}}}}, options.FindOne().
		SetSort(bson.D{{Key: "ts", Value: -1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.Timestamp{}, nil
	}
	if err != nil {
		return bson.Timestamp{}, mongodb.Classify(fmt.Errorf("read %s: %w", o.ns, err))
	}
	return e.TS, nil
}

// serverTime returns the server's clock (hello's localTime), or the local
// clock for a server that does not say.
func serverTime(ctx context.Context, client *mongo.Client) (time.Time, error) {
	var hello struct {
		LocalTime time.Time `bson:"localTime"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return time.Time{}, mongodb.Classify(fmt.Errorf("ask the server its time (hello): %w", err))
	}
	if hello.LocalTime.IsZero() {
		return time.Now(), nil
	}
	return hello.LocalTime, nil
}

// poller reads the oplog by queries, up to a horizon that lets every
// write logged before it be visible: its entry is logged a moment after
// its timestamp is taken, not with it, so two writes may become visible in
// the other order than their timestamps'. The horizon is the later of the
// start of the second, on the server's clock, that settle ago was in, and
// right after the newest entry that was visible settle ago: every entry
// before that one had its timestamp taken before it was logged. So a write
// whose entry is logged more than settle after its timestamp was taken
// could be passed over; the poller logs one it meets.
//
// Each read is one query (on FerretDB, which filters nothing in SQLite,
// every query reads the whole oplog): from the last entry it read (at
// first, the last before where it starts), which must still be there, so
// that no entry after it was lost to truncation.
type poller struct {
	oplogColl
	consumed bson.Timestamp // every entry before it has been emitted
	last     bson.Timestamp // the last entry read, before consumed; zero for none
	settle   time.Duration
	poll     time.Duration
	offset   time.Duration // the server's clock minus ours, at the last read
	seen     []seen        // the newest entries of recent reads, not yet settled
}

// seen is the newest entry visible at a moment of the server's clock.
type seen struct {
	at     time.Time
	newest bson.Timestamp
}

// horizon returns the horizon that the entries seen settle ago, and the
// server's clock, now allow.
func (p *poller) horizon(ctx context.Context) (bson.Timestamp, error) {
	now, err := serverTime(ctx, p.client)
	if err != nil {
		return bson.Timestamp{}, err
	}
	p.offset = now.Sub(time.Now())
	cut := now.Add(-p.settle)
	h := bson.Timestamp{T: uint32(cut.Unix())}
	for len(p.seen) > 0 && !p.seen[0].at.After(cut) {
		if !p.seen[0].newest.IsZero() {
			h = later(h, next(p.seen[0].newest))
		}
		p.seen = p.seen[1:]
	}
	return h, nil
}

// newest is the timestamp of the newest entry visible, zero for none.
func (p *poller) newest(ctx context.Context) (bson.Timestamp, error) {
	var e struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err := p.coll.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "ts", Value: -1}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.Timestamp{}, nil
	}
	if err != nil {
		return bson.Timestamp{}, mongodb.Classify(fmt.Errorf("read %s: %w", p.ns, err))
	}
	return e.TS, nil
}

func (p *poller) read(ctx context.Context, emit func(oplog.Entry) error) (bson.Timestamp, error) {
	h, err := p.horizon(ctx)
	if err != nil {
		return p.consumed, err
	}
	from := p.last
	if from.IsZero() { // no entry before where it starts: nothing to lose
		from = p.consumed
	}
	cur, err := p.coll.Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: from}}}},
		options.Find().SetSort(bson.D{{Key: "ts", Value: 1}}))
	if err != nil {
		return p.consumed, mongodb.Classify(fmt.Errorf("read %s: %w", p.ns, err))
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var newestTS bson.Timestamp
	first := true
	for cur.Next(ctx) {
		e, err := oplog.Parse(cur.Current, false)
		if err != nil {
			return p.consumed, fmt.Errorf("read %s: %w", p.ns, err)
		}
		newestTS = e.TS
		if first && !p.last.IsZero() {
			// Truncation takes the oldest entries first: while the last
			// entry read is there, none after it was lost.
			if e.TS != p.last {
				return p.consumed, &errRolledOver{oldest: e.TS, want: p.consumed}
			}
			first = false
			continue
		}
		first = false
		// An entry before consumed was logged more than Settle after
		// its timestamp was taken. It still follows the last entry read,
		// so that it goes in order into the open slice, unless that slice
		// was stored before it was logged (the Slicer's keep says so).
		if e.TS.Before(h) {
			if err := emit(e); err != nil {
				return p.consumed, err
			}
			p.last = e.TS
		}
	}
	if err := cur.Err(); err != nil {
		return p.consumed, mongodb.Classify(fmt.Errorf("read %s: %w", p.ns, err))
	}
	if first && !p.last.IsZero() {
		return p.consumed, &errRolledOver{want: p.consumed} // the oplog holds nothing from the last entry read on
	}
	p.seen = append(p.seen, seen{at: time.Now().Add(p.offset), newest: newestTS})
	if p.consumed.Before(h) {
		p.consumed = h
	}
	return p.consumed, nil
}

// target is right after the newest entry visible now.
func (p *poller) target(ctx context.Context) (bson.Timestamp, error) {
	n, err := p.newest(ctx)
	if err != nil {
		return bson.Timestamp{}, err
	}
	if n.IsZero() {
		return p.consumed, nil
	}
	return later(next(n), p.consumed), nil
}

func (p *poller) wait(target bson.Timestamp) time.Duration {
	if target.IsZero() || !p.consumed.Before(target) {
		return p.poll
	}
	return min(p.poll, p.settle)
}

func (p *poller) seek(from, anchor bson.Timestamp) { p.consumed, p.last, p.seen = from, anchor, nil }

func (p *poller) at() bson.Timestamp { return p.consumed }

func (p *poller) close(context.Context) {}

// tailBatch is the most entries a tailing read emits before it returns.
const tailBatch = 1000

// tailer reads the oplog with a tailable, awaitData cursor, which it
// opens at the last entry it read (at first, the last before where it
// starts): the oplog must still hold that entry, so that no entry after it
// was lost to truncation.
type tailer struct {
	oplogColl
	horizon bson.Timestamp // every entry before it has been emitted
	last    bson.Timestamp // the last entry read, before horizon; zero for none
	poll    time.Duration
	cur     *mongo.Cursor
	check   bool // the cursor's first entry must be last
}

func (t *tailer) read(ctx context.Context, emit func(oplog.Entry) error) (bson.Timestamp, error) {
	if t.cur == nil {
		from := t.last
		if from.IsZero() {
			from = t.horizon
		}
		cur, err := t.coll.Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: from}}}},
			options.Find().SetCursorType(options.TailableAwait).SetMaxAwaitTime(t.poll))
		if err != nil {
			return t.horizon, mongodb.Classify(fmt.Errorf("tail %s: %w", t.ns, err))
		}
		t.cur, t.check = cur, !t.last.IsZero()
	}
	for n := 0; n < tailBatch && t.cur.TryNext(ctx); n++ {
		e, err := oplog.Parse(t.cur.Current, false)
		if err != nil {
			return t.horizon, fmt.Errorf("tail %s: %w", t.ns, err)
		}
		if t.check {
			t.check = false
			if e.TS != t.last {
				t.close(ctx)
				return t.horizon, &errRolledOver{oldest: e.TS, want: t.horizon}
			}
			continue
		}
		if e.TS.Before(t.horizon) {
			return t.horizon, fmt.Errorf("tail %s: entry %s comes after %s: the oplog is not in timestamp order (on FerretDB with concurrent writers, poll it)", t.ns, oplog.FormatTS(e.TS), oplog.FormatTS(prev(t.horizon)))
		}
		if err := emit(e); err != nil {
			return t.horizon, err
		}
		t.horizon, t.last = next(e.TS), e.TS
		if t.cur.RemainingBatchLength() == 0 {
			break
		}
	}
	if err := t.cur.Err(); err != nil {
		t.close(ctx)
		if mongodb.IsCode(err, mongodb.CodeCappedPositionLost) {
			first, _, _ := t.edge(ctx, oldest)
			return t.horizon, &errRolledOver{oldest: first, want: t.horizon}
		}
		return t.horizon, mongodb.Classify(fmt.Errorf("tail %s: %w", t.ns, err))
	}
	if t.cur.ID() == 0 { // the server ended the cursor (an empty oplog): open another
		t.close(ctx)
	}
	return t.horizon, nil
}

func (t *tailer) target(ctx context.Context) (bson.Timestamp, error) {
	last, ok, err := t.edge(ctx, newest)
	if err != nil || !ok {
		return t.horizon, err
	}
	return later(next(last), t.horizon), nil
}

func (t *tailer) wait(bson.Timestamp) time.Duration { return 0 } // read waits on the server

func (t *tailer) seek(from, anchor bson.Timestamp) { t.horizon, t.last = from, anchor }

func (t *tailer) at() bson.Timestamp { return t.horizon }

func (t *tailer) close(ctx context.Context) {
	if t.cur != nil {
		_ = t.cur.Close(context.WithoutCancel(ctx))
		t.cur = nil
	}
}
