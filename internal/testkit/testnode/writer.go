package testnode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
)

// EnsureOplog gives the server an oplog: on the embedded FerretDB a capped
// local.oplog.rs, once created, makes it record inserts, updates and
// deletes; a real server must be a replica set member.
func EnsureOplog(t testing.TB, srv *mongotest.Server, maxDocs int64) {
	t.Helper()
	ctx := context.Background()
	local := srv.Client.Database("local")
	if !srv.Embedded {
		names, err := local.ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
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

// DuringDump is a Source that calls During while the dump reads each
// collection (after its first document, or at its start if it has none)
// and waits for it: the writes During makes provably happen mid-backup.
type DuringDump struct {
	*backup.Source
	During func(c archive.Collection) error
}

// Documents emits the collection's documents as the Source does, calling
// During after the first.
func (d *DuringDump) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	called := false
	err := d.Source.Documents(ctx, c, func(doc []byte) error {
		if err := emit(doc); err != nil {
			return err
		}
		if !called {
			called = true
			return d.During(c)
		}
		return nil
	})
	if err == nil && !called {
		err = d.During(c)
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

func (m modelDoc) bson() bson.D {
	tags := bson.A{}
	for _, tg := range m.Tags {
		tags = append(tags, tg)
	}
	d := bson.D{{Key: "_id", Value: m.ID}, {Key: "n", Value: m.N}, {Key: "seq", Value: m.Seq}, {Key: "tags", Value: tags}}
	if m.Sub != nil {
		d = append(d, bson.E{Key: "sub", Value: bson.D{{Key: "x", Value: *m.Sub}}})
	}
	return d
}

// Logged is one write of a Writer's log.
type Logged struct {
	Seq int64
	Op  string // i, u, d
	NS  string
	ID  string
}

// Writer performs batches of inserts, updates and deletes across
// collections when the dump asks, in its own goroutine, keeping a log of
// them (each insert and update writes its sequence number into the
// document) and a model of the data they leave.
type Writer struct {
	// Log is every write so far, in order; read it between batches.
	Log []Logged

	client *mongo.Client
	colls  []string
	seq    int64
	model  map[string]map[string]*modelDoc
	req    chan int
	done   chan error
}

// NewWriter returns a Writer over the collections colls (namespaces),
// stopped when the test ends.
func NewWriter(t testing.TB, client *mongo.Client, colls []string) *Writer {
	w := &Writer{client: client, colls: colls, model: map[string]map[string]*modelDoc{}, req: make(chan int), done: make(chan error)}
	t.Cleanup(w.stop)
	go func() {
		for k := range w.req {
			w.done <- w.batch(k)
		}
		close(w.done)
	}()
	return w
}

// Do runs batch k in the writer's goroutine and waits for it.
func (w *Writer) Do(k int) error {
	w.req <- k
	return <-w.done
}

func (w *Writer) stop() {
	close(w.req)
	for range w.done {
	}
}

func (w *Writer) coll(ns string) *mongo.Collection {
	db, name, _ := strings.Cut(ns, ".")
	return w.client.Database(db).Collection(name)
}

func int32p(v int32) *int32 { return &v }

// writeGuard bounds each call of the writer: a server that stops answering
// fails the test with the write that got no answer, rather than holding it
// until go test's timeout. A guard, never reached by a working server.
const writeGuard = 2 * time.Minute

// Seed writes ten documents s-0 ... s-9 into each collection.
func (w *Writer) Seed(ctx context.Context) error {
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

func (w *Writer) next(op, ns, id string) int64 {
	w.seq++
	w.Log = append(w.Log, Logged{Seq: w.seq, Op: op, NS: ns, ID: id})
	return w.seq
}

// batch k, in every collection: inserts a document, updates two of the
// seeded ones (s-k with $set, $inc and $push, s-(k+3) with $unset and
// $pop; numbers modulo 10), deletes s-(k+6), and updates the document the
// batch before inserted. Seeded documents already deleted are passed over.
func (w *Writer) batch(k int) error {
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

		if up := fmt.Sprintf("s-%d", k%10); w.model[ns][up] != nil {
			seq := w.next("u", ns, up)
			if _, err := c.UpdateByID(ctx, up, bson.D{
				{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}},
				{Key: "$inc", Value: bson.D{{Key: "n", Value: int32(1)}}},
				{Key: "$push", Value: bson.D{{Key: "tags", Value: fmt.Sprintf("t%d", k)}}},
			}); err != nil {
				return err
			}
			mu := w.model[ns][up]
			mu.Seq, mu.N, mu.Tags = seq, mu.N+1, append(mu.Tags, fmt.Sprintf("t%d", k))
		}

		if up := fmt.Sprintf("s-%d", (k+3)%10); w.model[ns][up] != nil {
			seq := w.next("u", ns, up)
			if _, err := c.UpdateByID(ctx, up, bson.D{
				{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}},
				{Key: "$unset", Value: bson.D{{Key: "sub", Value: ""}}},
				{Key: "$pop", Value: bson.D{{Key: "tags", Value: 1}}},
			}); err != nil {
				return err
			}
			mu := w.model[ns][up]
			mu.Seq, mu.Sub = seq, nil
			if len(mu.Tags) > 0 {
				mu.Tags = mu.Tags[:len(mu.Tags)-1]
			}
		}

		if gone := fmt.Sprintf("s-%d", (k+6)%10); w.model[ns][gone] != nil {
			w.next("d", ns, gone)
			if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: gone}}); err != nil {
				return err
			}
			delete(w.model[ns], gone)
		}

		if prev := fmt.Sprintf("k%d-%d", k-1, ci); k > 0 && w.model[ns][prev] != nil {
			seq := w.next("u", ns, prev)
			if _, err := c.UpdateByID(ctx, prev, bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}, {Key: "sub.x", Value: int32(100)}}}}); err != nil {
				return err
			}
			mp := w.model[ns][prev]
			mp.Seq, mp.Sub = seq, int32p(100)
		}
	}
	return nil
}

// After writes in every collection once the backup is over: an insert, an
// update of s-1 and a delete of s-2 (those that are still there).
func (w *Writer) After(ctx context.Context) error {
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
		if w.model[ns]["s-1"] != nil {
			seq := w.next("u", ns, "s-1")
			if _, err := c.UpdateByID(ctx, "s-1", bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}}}); err != nil {
				return err
			}
			w.model[ns]["s-1"].Seq = seq
		}
		if w.model[ns]["s-2"] != nil {
			w.next("d", ns, "s-2")
			if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: "s-2"}}); err != nil {
				return err
			}
			delete(w.model[ns], "s-2")
		}
	}
	return nil
}

// Snapshot returns the model's documents of every collection, by
// namespace, as [Contents] reads them.
func (w *Writer) Snapshot(t testing.TB) map[string][]string {
	out := map[string][]string{}
	for _, ns := range w.colls {
		var ids []string
		for id := range w.model[ns] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		var docs []bson.D
		for _, id := range ids {
			docs = append(docs, w.model[ns][id].bson())
		}
		out[ns] = DocsOf(t, docs...)
	}
	return out
}
