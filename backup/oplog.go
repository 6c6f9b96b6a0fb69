package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/slot"
)

// errEmptyOplog: the oplog holds no entry to start a capture from.
var errEmptyOplog = errors.New("backup: the oplog is empty")

// oplogCapture captures the oplog written while a backup reads its
// collections: an archive.OplogSource. Its start is taken by begin, before
// the first collection is read; Oplog takes the end after the last one and
// copies the entries in between. The oplog is read from the primary, which
// is ahead of every secondary, so that the end follows every collection
// read; the collections, read as the backup's read preference says, are
// read (through session) in causally consistent sessions that wait for the
// time of the start, so that each reflects at least the start. No read of
// the local database is made to wait itself.
type oplogCapture struct {
	client *mongo.Client
	db     string       // local
	coll   string       // oplog.rs
	scope  *oplog.Scope // what of the oplog concerns the backup
	start  bson.Timestamp
	// timeout bounds each request, each batch of a cursor on its own.
	timeout time.Duration

	opTime      *bson.Timestamp // the operation time of the start's read; nil without sessions
	clusterTime bson.Raw        // and the cluster time that came with it
}

var _ archive.OplogSource = (*oplogCapture)(nil)

// oplogReadPref is where the capture reads the oplog and config.transactions.
var oplogReadPref = readpref.PrimaryPreferred()

func (c *oplogCapture) oplog() *mongo.Collection {
	return c.client.Database(c.db).Collection(c.coll, options.Collection().SetReadPreference(oplogReadPref))
}

func (c *oplogCapture) ns() string { return c.db + "." + c.coll }

// session returns ctx with a causally consistent session whose reads wait
// until the server has reached the start, and a function that ends it.
// Without sessions (a server that has none, or gives no operation time,
// such as FerretDB), ctx is returned as is.
func (c *oplogCapture) session(ctx context.Context) (context.Context, func()) {
	if c.opTime == nil {
		return ctx, func() {}
	}
	sess, err := c.client.StartSession(options.Session().SetCausalConsistency(true))
	if err != nil {
		return ctx, func() {}
	}
	if c.clusterTime != nil {
		_ = sess.AdvanceClusterTime(c.clusterTime)
	}
	_ = sess.AdvanceOperationTime(c.opTime)
	return mongo.NewSessionContext(ctx, sess), func() { sess.EndSession(context.WithoutCancel(ctx)) }
}

// begin takes the start: the oldest start of a transaction in progress or
// prepared (config.transactions), whose first entries replay needs, else the
// newest entry of the oplog; and the operation time of that read, which
// the collection reads wait for.
func (c *oplogCapture) begin(ctx context.Context) error {
	latest, err := c.edge(ctx, newest, true)
	if err != nil {
		return err
	}
	c.start = latest
	var txn struct {
		StartOpTime struct {
			TS bson.Timestamp `bson:"ts"`
		} `bson:"startOpTime"`
	}
	err = mongodb.Ask(ctx, c.timeout, func(ctx context.Context) error {
		return c.client.Database("config").Collection("transactions", options.Collection().SetReadPreference(oplogReadPref)).FindOne(ctx,
			bson.D{{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{"prepared", "inProgress"}}}}},
			options.FindOne().SetSort(bson.D{{Key: "startOpTime", Value: 1}}).SetProjection(bson.D{{Key: "startOpTime", Value: 1}}),
		).Decode(&txn)
	})
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return fmt.Errorf("read config.transactions for the transactions in progress: %w", err)
	case !txn.StartOpTime.TS.IsZero() && txn.StartOpTime.TS.Before(latest):
		c.start = txn.StartOpTime.TS
	}
	return nil
}

// The ends of the oplog that edge reads, as $natural sort orders.
const (
	oldest = 1
	newest = -1
)

// edge returns the timestamp of the oldest or newest entry of the oplog;
// with keepOpTime, it keeps the read's operation time (each attempt in a
// new session, so that none waits). A read that loses its place to the
// oplog's truncation is tried again.
func (c *oplogCapture) edge(ctx context.Context, end int, keepOpTime bool) (bson.Timestamp, error) {
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return bson.Timestamp{}, ctx.Err()
			}
		}
		rctx := ctx
		var sess *mongo.Session
		if keepOpTime {
			if s, err := c.client.StartSession(options.Session().SetCausalConsistency(true)); err == nil {
				sess, rctx = s, mongo.NewSessionContext(ctx, s)
			}
		}
		var e struct {
			TS bson.Timestamp `bson:"ts"`
		}
		err := mongodb.Ask(rctx, c.timeout, func(ctx context.Context) error {
			return c.oplog().FindOne(ctx, bson.D{}, options.FindOne().
				SetSort(bson.D{{Key: "$natural", Value: end}}).
				SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&e)
		})
		if sess != nil {
			if err == nil && sess.OperationTime() != nil {
				t := *sess.OperationTime()
				c.opTime, c.clusterTime = &t, sess.ClusterTime()
			}
			sess.EndSession(context.WithoutCancel(ctx))
		}
		switch {
		case err == nil:
			return e.TS, nil
		case errors.Is(err, mongo.ErrNoDocuments):
			return bson.Timestamp{}, errEmptyOplog
		case !mongodb.IsCode(err, mongodb.CodeCappedPositionLost):
			return bson.Timestamp{}, fmt.Errorf("read %s: %w", c.ns(), err)
		}
		last = err
	}
	return bson.Timestamp{}, fmt.Errorf("read %s: %w", c.ns(), last)
}

// checkRollover fails with ErrOplogRollover when the oplog no longer holds
// the start.
func (c *oplogCapture) checkRollover(ctx context.Context, when string) error {
	first, err := c.edge(ctx, oldest, false)
	if errors.Is(err, errEmptyOplog) {
		return fmt.Errorf("%w: %s, %s holds no entry at all, not even the start %s", ErrOplogRollover, when, c.ns(), oplog.FormatTS(c.start))
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if first.After(c.start) {
		return fmt.Errorf("%w: %s, the oldest entry of %s is %s, newer than the backup's start %s", ErrOplogRollover, when, c.ns(), oplog.FormatTS(first), oplog.FormatTS(c.start))
	}
	return nil
}

// Oplog takes the end (the newest entry) and emits the entries from start
// to end that the filter selects, checking before and after the copy that
// the oplog still holds the start.
func (c *oplogCapture) Oplog(ctx context.Context, emit func([]byte) error) (archive.OplogSpan, error) {
	end, err := c.edge(ctx, newest, false)
	if err != nil {
		return archive.OplogSpan{}, fmt.Errorf("backup: %w", mongodb.Classify(err))
	}
	span := archive.OplogSpan{Start: c.start, End: end}
	if err := c.checkRollover(ctx, "before the oplog was copied"); err != nil {
		return span, err
	}
	var cur *mongo.Cursor
	err = mongodb.Ask(ctx, c.timeout, func(ctx context.Context) (err error) {
		cur, err = c.oplog().Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: c.start}, {Key: "$lte", Value: end}}}})
		return err
	})
	if err != nil {
		return span, fmt.Errorf("backup: read %s: %w", c.ns(), err)
	}
	defer mongodb.CloseCursor(ctx, c.timeout, cur)
	var prev bson.Timestamp
	for {
		ok, err := mongodb.Next(ctx, c.timeout, cur)
		if err != nil {
			return span, c.readError(err)
		}
		if !ok {
			break
		}
		e, err := oplog.Parse(cur.Current, false)
		if err != nil {
			return span, fmt.Errorf("backup: read %s: %w", c.ns(), err)
		}
		if e.TS.Before(prev) {
			return span, fmt.Errorf("backup: read %s: entry %s comes after %s: the oplog is not in timestamp order", c.ns(), oplog.FormatTS(e.TS), oplog.FormatTS(prev))
		}
		prev = e.TS
		out, ok, err := c.scope.Keep(e)
		if err != nil {
			return span, fmt.Errorf("backup: read %s: %w", c.ns(), err)
		}
		if ok {
			if err := emit(out); err != nil {
				return span, err
			}
		}
	}
	if err := c.checkRollover(ctx, "after the oplog was copied"); err != nil {
		return span, err
	}
	return span, nil
}

// readError is the error of a failed read of the oplog's entries.
func (c *oplogCapture) readError(err error) error {
	if mongodb.IsCode(err, mongodb.CodeCappedPositionLost) {
		return fmt.Errorf("%w: entries were truncated while the oplog was copied: %w", ErrOplogRollover, err)
	}
	return fmt.Errorf("backup: read %s: %w", c.ns(), err)
}

// startOplog starts the capture of a backup as s.Oplog says, before the
// first collection is read: nil when there is none, with a note that says
// why when the backup cannot be consistent.
func (s *Source) startOplog(ctx context.Context, client *mongo.Client, p slot.Plan) (*oplogCapture, string, error) {
	if s.Oplog == ToggleOff {
		return nil, "", nil
	}
	ns := oplog.Namespace
	if s.oplogNS != "" {
		ns = s.oplogNS
	}
	db, coll, _ := strings.Cut(ns, ".")
	var names []string
	err := mongodb.Ask(ctx, s.Conn.OperationTimeout, func(ctx context.Context) (err error) {
		names, err = client.Database(db).ListCollectionNames(ctx, bson.D{{Key: "name", Value: coll}})
		return err
	})
	switch {
	case err != nil && s.Oplog == ToggleOn:
		return nil, "", fmt.Errorf("backup: %w", mongodb.Classify(fmt.Errorf("look for the oplog: %w", err)))
	case err != nil:
		return nil, fmt.Sprintf("the oplog was not captured (the backup is not point-in-time): looking for it failed: %v", err), nil
	case len(names) == 0 && s.Oplog == ToggleOn:
		return nil, "", fmt.Errorf("backup: %w: Source.Oplog is on but the server keeps no oplog (%s): it is not a replica set member; run it as one, or leave Oplog at auto", ErrNoOplog, ns)
	case len(names) == 0:
		return nil, "the server keeps no oplog (not a replica set member): the backup is not point-in-time consistent", nil
	}
	var dbs []string
	for _, col := range p.Collections {
		dbs = append(dbs, col.DB)
	}
	c := &oplogCapture{client: client, db: db, coll: coll, scope: oplog.NewScope(s.Filter, dbs), timeout: s.Conn.OperationTimeout}
	err = c.begin(ctx)
	switch {
	case errors.Is(err, errEmptyOplog) && s.Oplog == ToggleOn:
		return nil, "", fmt.Errorf("backup: %w: Source.Oplog is on but %s is empty: there is no entry to start a capture from", ErrNoOplog, ns)
	case errors.Is(err, errEmptyOplog):
		return nil, "the oplog is empty, with no entry to start a capture from: the backup is not point-in-time consistent", nil
	case err != nil:
		return nil, "", fmt.Errorf("backup: %w", mongodb.Classify(err))
	}
	return c, "", nil
}
