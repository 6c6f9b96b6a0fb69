package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/mongotest"
	"github.com/keepslot/keepslot/internal/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

type (
	D = bson.D
	A = bson.A
)

// ensureOplog gives the server an oplog: on the embedded FerretDB a capped
// local.oplog.rs, once created, makes it record inserts, updates and
// deletes; a real server must be a replica set member.
func ensureOplog(t *testing.T, srv *mongotest.Server, maxDocs int64) {
	t.Helper()
	ctx := context.Background()
	local := srv.Client.Database("local")
	if !srv.Embedded {
		names, err := local.ListCollectionNames(ctx, D{{Key: "name", Value: "oplog.rs"}})
		require.NoError(t, err)
		require.NotEmpty(t, names, "%s must point at a replica set member, which keeps an oplog", mongotest.EnvURI)
		return
	}
	opts := options.CreateCollection().SetCapped(true).SetSizeInBytes(64 << 20)
	if maxDocs > 0 {
		opts.SetMaxDocuments(maxDocs)
	}
	require.NoError(t, local.CreateCollection(ctx, "oplog.rs", opts))
}

// duringDump is a Source that calls during while the dump reads each
// collection (after its first document, or at its start if it has none)
// and waits for it: the writes during makes provably happen mid-backup.
type duringDump struct {
	*backup.Source
	during func(c archive.Collection) error
}

func (d *duringDump) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	called := false
	err := d.Source.Documents(ctx, c, func(doc []byte) error {
		if err := emit(doc); err != nil {
			return err
		}
		if !called {
			called = true
			return d.during(c)
		}
		return nil
	})
	if err == nil && !called {
		err = d.during(c)
	}
	return err
}

// modelDoc is a document of the writer's model of the data.
type modelDoc struct {
	ID   string
	N    int32
	Seq  int64
	Tags []string
	Sub  *int32 // sub.x; nil when sub is unset
}

func (m modelDoc) bson() D {
	tags := A{}
	for _, tg := range m.Tags {
		tags = append(tags, tg)
	}
	d := D{{Key: "_id", Value: m.ID}, {Key: "n", Value: m.N}, {Key: "seq", Value: m.Seq}, {Key: "tags", Value: tags}}
	if m.Sub != nil {
		d = append(d, bson.E{Key: "sub", Value: D{{Key: "x", Value: *m.Sub}}})
	}
	return d
}

// logged is one write of the writer's log.
type logged struct {
	seq int64
	op  string // i, u, d
	ns  string
	id  string
}

// writer performs batches of inserts, updates and deletes across
// collections when the dump asks, in its own goroutine, keeping a log of
// them (each insert and update writes its sequence number into the
// document) and a model of the data they leave.
type writer struct {
	client *mongo.Client
	colls  []string
	seq    int64
	log    []logged
	model  map[string]map[string]*modelDoc
	req    chan int
	done   chan error
}

func newWriter(client *mongo.Client, colls []string) *writer {
	w := &writer{client: client, colls: colls, model: map[string]map[string]*modelDoc{}, req: make(chan int), done: make(chan error)}
	go func() {
		for k := range w.req {
			w.done <- w.batch(k)
		}
		close(w.done)
	}()
	return w
}

// do runs batch k in the writer's goroutine and waits for it.
func (w *writer) do(k int) error {
	w.req <- k
	return <-w.done
}

func (w *writer) stop() {
	close(w.req)
	for range w.done {
	}
}

func (w *writer) coll(ns string) *mongo.Collection {
	db, name, _ := strings.Cut(ns, ".")
	return w.client.Database(db).Collection(name)
}

func int32p(v int32) *int32 { return &v }

// writeGuard bounds each call of the writer: a server that stops answering
// fails the test with the write that got no answer, rather than holding it
// until go test's timeout. A guard, never reached by a working server.
const writeGuard = 2 * time.Minute

// seed writes ten documents s-0 ... s-9 into each collection.
func (w *writer) seed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, writeGuard)
	defer cancel()
	for _, ns := range w.colls {
		w.model[ns] = map[string]*modelDoc{}
		var docs []any
		for i := range 10 {
			m := &modelDoc{ID: fmt.Sprintf("s-%d", i), N: int32(i), Tags: []string{"x", "y"}, Sub: int32p(int32(i))}
			w.model[ns][m.ID] = m
			docs = append(docs, m.bson())
		}
		if _, err := w.coll(ns).InsertMany(ctx, docs); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) next(op, ns, id string) int64 {
	w.seq++
	w.log = append(w.log, logged{seq: w.seq, op: op, ns: ns, id: id})
	return w.seq
}

// batch k, in every collection: inserts a document, updates two (one with
// $set, $inc and $push, one with $unset and $pop), deletes one, and updates
// the document the batch before inserted.
func (w *writer) batch(k int) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeGuard)
	defer cancel()
	for ci, ns := range w.colls {
		c := w.coll(ns)
		id := fmt.Sprintf("k%d-%d", k, ci)
		m := &modelDoc{ID: id, N: int32(k), Tags: []string{"a"}, Sub: int32p(int32(k))}
		m.Seq = w.next("i", ns, id)
		if _, err := c.InsertOne(ctx, m.bson()); err != nil {
			return err
		}
		w.model[ns][id] = m

		up := fmt.Sprintf("s-%d", k)
		seq := w.next("u", ns, up)
		if _, err := c.UpdateByID(ctx, up, D{
			{Key: "$set", Value: D{{Key: "seq", Value: seq}}},
			{Key: "$inc", Value: D{{Key: "n", Value: int32(1)}}},
			{Key: "$push", Value: D{{Key: "tags", Value: fmt.Sprintf("t%d", k)}}},
		}); err != nil {
			return err
		}
		mu := w.model[ns][up]
		mu.Seq, mu.N, mu.Tags = seq, mu.N+1, append(mu.Tags, fmt.Sprintf("t%d", k))

		up = fmt.Sprintf("s-%d", k+3)
		seq = w.next("u", ns, up)
		if _, err := c.UpdateByID(ctx, up, D{
			{Key: "$set", Value: D{{Key: "seq", Value: seq}}},
			{Key: "$unset", Value: D{{Key: "sub", Value: ""}}},
			{Key: "$pop", Value: D{{Key: "tags", Value: 1}}},
		}); err != nil {
			return err
		}
		mu = w.model[ns][up]
		mu.Seq, mu.Sub, mu.Tags = seq, nil, mu.Tags[:len(mu.Tags)-1]

		gone := fmt.Sprintf("s-%d", k+6)
		w.next("d", ns, gone)
		if _, err := c.DeleteOne(ctx, D{{Key: "_id", Value: gone}}); err != nil {
			return err
		}
		delete(w.model[ns], gone)

		if k > 0 {
			prev := fmt.Sprintf("k%d-%d", k-1, ci)
			seq = w.next("u", ns, prev)
			if _, err := c.UpdateByID(ctx, prev, D{{Key: "$set", Value: D{{Key: "seq", Value: seq}, {Key: "sub.x", Value: int32(100)}}}}); err != nil {
				return err
			}
			mp := w.model[ns][prev]
			mp.Seq, mp.Sub = seq, int32p(100)
		}
	}
	return nil
}

// after writes in every collection once the backup is over: an insert, an
// update and a delete.
func (w *writer) after(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, writeGuard)
	defer cancel()
	for ci, ns := range w.colls {
		c := w.coll(ns)
		id := fmt.Sprintf("after-%d", ci)
		m := &modelDoc{ID: id, Seq: w.next("i", ns, id)}
		if _, err := c.InsertOne(ctx, m.bson()); err != nil {
			return err
		}
		w.model[ns][id] = m
		seq := w.next("u", ns, "s-1")
		if _, err := c.UpdateByID(ctx, "s-1", D{{Key: "$set", Value: D{{Key: "seq", Value: seq}}}}); err != nil {
			return err
		}
		w.model[ns]["s-1"].Seq = seq
		w.next("d", ns, "s-2")
		if _, err := c.DeleteOne(ctx, D{{Key: "_id", Value: "s-2"}}); err != nil {
			return err
		}
		delete(w.model[ns], "s-2")
	}
	return nil
}

// snapshot returns the model's documents of every collection, as contents
// reads them.
func (w *writer) snapshot(t *testing.T) map[string][]string {
	out := map[string][]string{}
	for _, ns := range w.colls {
		var ids []string
		for id := range w.model[ns] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		var docs []D
		for _, id := range ids {
			docs = append(docs, w.model[ns][id].bson())
		}
		out[ns] = testnode.DocsOf(t, docs...)
	}
	return out
}

// capturedOplog decrypts a retrieved backup and returns its oplog entries.
func capturedOplog(t *testing.T, data []byte) []bson.Raw {
	t.Helper()
	plain, err := cipher.NewReader(bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), nil)
	require.NoError(t, err)
	r, err := archive.Open(plain)
	require.NoError(t, err)
	var entries []bson.Raw
	for {
		c, err := r.Next()
		if err == io.EOF {
			return entries
		}
		require.NoError(t, err)
		for {
			d, err := r.ReadDocument()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if c.IsOplog() {
				entries = append(entries, d)
			}
		}
	}
}

// seqOf finds the writer's sequence number in an insert or update entry,
// whatever the server's update format: FerretDB's whole-document $set,
// $v: 1 operators or a $v: 2 diff.
func seqOf(e bson.Raw) (int64, bool) {
	for _, path := range [][]string{{"o", "seq"}, {"o", "$set", "seq"}, {"o", "diff", "u", "seq"}, {"o", "diff", "i", "seq"}} {
		if v, err := e.LookupErr(path...); err == nil {
			if n, ok := v.AsInt64OK(); ok {
				return n, true
			}
		}
	}
	return 0, false
}

func tsOf(e bson.Raw) bson.Timestamp {
	t, i := e.Lookup("ts").Timestamp()
	return bson.Timestamp{T: t, I: i}
}

// TestOplogConcurrentWriter backs up collections while a writer inserts,
// updates and deletes across them, restores with replay into new
// namespaces, and checks that the restored data equals the writer's model
// as of the capture's end; without replay it does not.
func TestOplogConcurrentWriter(t *testing.T) {
	e := testnode.New(t)
	ensureOplog(t, e.Srv, 0)
	ctx := context.Background()
	colls := []string{e.Srv.DB("app") + ".a", e.Srv.DB("app") + ".b", e.Srv.DB("shop") + ".c"}
	w := newWriter(e.Srv.Client, colls)
	defer w.stop()
	require.NoError(t, w.seed(ctx))

	src := &backup.Source{Client: e.Srv.Client, Filter: e.Filter}
	batch := 0
	dd := &duringDump{Source: src, during: func(c archive.Collection) error {
		err := w.do(batch)
		batch++
		return err
	}}
	cfg := e.Config()
	cfg.Parallel = 1 // collections in turn: a batch changes those already read
	s, st := testnode.RunSlot(t, dd, cfg.Config)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	require.Equal(t, len(colls), batch, "one batch while each collection was read")
	// Every write of the log so far happened before the capture's end:
	// the model now is the data as of the end.
	duringLog := len(w.log)
	atEnd := w.snapshot(t)
	// Writes after the end are not in the backup.
	require.NoError(t, w.after(ctx))
	later := w.snapshot(t)

	require.NotNil(t, st.Oplog, "the capture's span is in the status")
	assert.False(t, st.Oplog.End.Before(st.Oplog.Start))
	assert.False(t, st.ConsistentAt().IsZero())

	var buf bytes.Buffer
	_, err := s.Retrieve(ctx, &buf)
	require.NoError(t, err)
	data := buf.Bytes()

	// Every write of the writer during the backup is in the oplog, in
	// order, and nothing of ours but the start entry itself besides.
	entries := capturedOplog(t, data)
	assert.EqualValues(t, len(entries), st.Oplog.Entries)
	var matched []int64
	for _, en := range entries {
		ts := tsOf(en)
		assert.False(t, ts.Before(st.Oplog.Start) || ts.After(st.Oplog.End), "entry %v in the span", ts)
		ns := en.Lookup("ns").StringValue()
		if !slices.Contains(colls, ns) {
			continue
		}
		switch op := en.Lookup("op").StringValue(); op {
		case "i", "u":
			seq, ok := seqOf(en)
			if ok && seq > 0 {
				matched = append(matched, seq)
				continue
			}
		case "d":
			id := en.Lookup("o", "_id").StringValue()
			if i := slices.IndexFunc(w.log[:duringLog], func(l logged) bool { return l.op == "d" && l.ns == ns && l.id == id }); i >= 0 {
				matched = append(matched, w.log[i].seq)
				continue
			}
		}
		assert.Equal(t, st.Oplog.Start, ts, "an entry of ours not in the writer's log is the start entry: %s", en)
	}
	want := make([]int64, duringLog)
	for i := range want {
		want[i] = int64(i + 1)
	}
	assert.Equal(t, want, matched, "the writer's log, in order")

	// Restored with replay into new namespaces: the model as of the end.
	renamed := func(to string) []namespace.Rename {
		return []namespace.Rename{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + to + "*"}}
	}
	rep, err := testnode.RestoreBytes(t, data, restore.Options{Client: e.Srv.Client, Renames: renamed("r_")})
	require.NoError(t, err)
	require.NotNil(t, rep.Oplog)
	assert.Equal(t, st.Oplog.End, rep.Oplog.Captured.End)
	assert.False(t, rep.Oplog.Last.After(st.Oplog.End))
	if e.Srv.Embedded { // on a shared server the newest entry may be another's
		assert.Equal(t, st.Oplog.End, rep.Oplog.Last, "replayed to the end")
	}
	for _, ns := range colls {
		got := testnode.Contents(t, e.Srv, strings.Replace(ns, e.Srv.Prefix, e.Srv.Prefix+"r_", 1))
		assert.Equal(t, atEnd[ns], got, "%s restored with replay is as of the end", ns)
		assert.NotEqual(t, later[ns], got, "%s: the writes after the end are not restored", ns)
	}

	// Without replay the data is a mix of moments: the first collection
	// misses the writes made while the others were read.
	_, err = testnode.RestoreBytes(t, data, restore.Options{Client: e.Srv.Client, Renames: renamed("n_"), OplogReplay: slot.ToggleOff})
	require.NoError(t, err)
	first := strings.Replace(colls[0], e.Srv.Prefix, e.Srv.Prefix+"n_", 1)
	assert.NotEqual(t, atEnd[colls[0]], testnode.Contents(t, e.Srv, first), "without replay the restore is not as of the end")

	// Stopped early by OplogLimit: the first collection lacks the last
	// batch's insert, made after it was read, but has the one before.
	var limit bson.Timestamp
	for _, en := range entries {
		if seq, ok := seqOf(en); ok && seq > 0 && en.Lookup("op").StringValue() == "i" && w.log[seq-1].id == "k2-0" {
			limit = tsOf(en)
		}
	}
	require.False(t, limit.IsZero())
	rep, err = testnode.RestoreBytes(t, data, restore.Options{Client: e.Srv.Client, Renames: renamed("l_"), OplogLimit: limit})
	require.NoError(t, err)
	assert.True(t, rep.Oplog.LimitReached)
	ids := testnode.Contents(t, e.Srv, strings.Replace(colls[0], e.Srv.Prefix, e.Srv.Prefix+"l_", 1))
	assert.True(t, slices.ContainsFunc(ids, func(s string) bool { return strings.Contains(s, `"k1-0"`) }))
	assert.False(t, slices.ContainsFunc(ids, func(s string) bool { return strings.Contains(s, `"k2-0"`) }))
}

// TestOplogRollover overruns a tiny capped oplog while the backup reads a
// collection: the backup fails with ErrOplogRollover, leaving the slot
// empty and no temporary file.
func TestOplogRollover(t *testing.T) {
	e := testnode.New(t)
	ctx := context.Background()
	e.Seed(5)
	src := &backup.Source{Client: e.Srv.Client, Filter: e.Filter}
	var overrun func() error
	if e.Srv.Embedded {
		ensureOplog(t, e.Srv, 20)
		spill := e.Srv.Client.Database(e.Srv.DB("app")).Collection("spill")
		_, err := spill.InsertOne(ctx, D{{Key: "_id", Value: "before"}})
		require.NoError(t, err)
		overrun = func() error {
			for i := range 30 {
				if _, err := spill.InsertOne(ctx, D{{Key: "_id", Value: i}}); err != nil {
					return err
				}
			}
			// FerretDB enforces a capped collection's bounds on compact.
			return e.Srv.Client.Database("local").RunCommand(ctx, D{{Key: "compact", Value: "oplog.rs"}}).Err()
		}
	} else {
		// The real oplog is too large to overrun: a small capped collection
		// of the test's own stands in for it.
		db := e.Srv.Client.Database(e.Srv.DB("oplog"))
		require.NoError(t, db.CreateCollection(ctx, "rs", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(20)))
		fake := db.Collection("rs")
		i := uint32(0)
		add := func(n int) error {
			for range n {
				i++
				if _, err := fake.InsertOne(ctx, D{{Key: "ts", Value: bson.Timestamp{T: 1, I: i}}, {Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: D{}}}); err != nil {
					return err
				}
			}
			return nil
		}
		require.NoError(t, add(5))
		backup.SetOplogNamespace(src, db.Name()+".rs")
		overrun = func() error { return add(30) }
	}
	// The dump reads collections in parallel: the first of them to start
	// overruns the oplog, the others wait for it to finish.
	var once sync.Once
	dd := &duringDump{Source: src, during: func(archive.Collection) error {
		var err error
		once.Do(func() { err = overrun() })
		return err
	}}
	cfg := e.Config()
	cfg.SpillThreshold = 1 // every collection spills to TempDir
	_, st := testnode.RunSlot(t, dd, cfg.Config)
	require.Equal(t, slot.StateFailed, st.State)
	assert.Equal(t, errcode.OplogRollover, st.Code)
	assert.Contains(t, st.Error, "too small for the dump's duration")
	_, err := e.Store.Stat(ctx)
	assert.ErrorIs(t, err, store.ErrEmpty, "the slot is left empty")
	left, err := os.ReadDir(cfg.TempDir)
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file is left")
}

// TestBackupWithoutOplog checks a server without an oplog: Auto backs up
// without one and notes it, On refuses to start, and the restore of a
// backup without an oplog replays nothing (and with OplogReplay On fails
// once the collections are in).
func TestBackupWithoutOplog(t *testing.T) {
	e := testnode.New(t)
	ctx := context.Background()
	e.Seed(4)
	src := func(mode slot.Toggle) *backup.Source {
		s := &backup.Source{Client: e.Srv.Client, Filter: e.Filter, Oplog: mode}
		backup.SetOplogNamespace(s, e.Srv.DB("none")+".oplog") // no such collection, on any server
		return s
	}

	s, err := slot.New(src(slot.ToggleOn), e.Config().Config)
	require.NoError(t, err)
	require.NoError(t, s.Role().Set())
	err = s.Start(ctx, []byte(testnode.Password))
	require.ErrorIs(t, err, backup.ErrNoOplog)
	assert.Equal(t, errcode.Invalid, errcode.Of(err))
	assert.Contains(t, err.Error(), "keeps no oplog")

	s, err = slot.New(src(slot.ToggleAuto), e.Config().Config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Start(ctx, []byte(testnode.Password)))
	st, err := s.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	assert.Nil(t, st.Oplog)
	assert.True(t, st.ConsistentAt().IsZero())
	assert.Contains(t, strings.Join(st.Notes, "\n"), "not point-in-time consistent")

	var buf bytes.Buffer
	_, err = s.Retrieve(ctx, &buf)
	require.NoError(t, err)
	assert.Empty(t, capturedOplog(t, buf.Bytes()))
	opts := restore.Options{Client: e.Srv.Client, Renames: []namespace.Rename{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "r_*"}}}
	rep, err := testnode.RestoreBytes(t, buf.Bytes(), opts)
	require.NoError(t, err)
	assert.Nil(t, rep.Oplog)
	assert.EqualValues(t, 12, rep.Documents)

	opts.OplogReplay, opts.Drop = slot.ToggleOn, true
	_, err = testnode.RestoreBytes(t, buf.Bytes(), opts)
	assert.ErrorIs(t, err, restore.ErrNoOplog)
	assert.EqualValues(t, 4, e.Count(e.Srv.DB("r_app"), "users"), "the collections are restored before")
}
