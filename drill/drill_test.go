package drill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/restore"
)

// seeded is a node seeded with testnode's data and a backup of it.
type seeded struct {
	e      *testnode.Env
	data   []byte
	prefix string // a drill prefix of the test's own
}

func newSeeded(t *testing.T) *seeded {
	t.Helper()
	e := testnode.New(t)
	e.Seed(50)
	_, data := testnode.BackupBytes(t, e, e.Config())
	return &seeded{e: e, data: data, prefix: "drill_" + e.Srv.Prefix}
}

// run drills s's backup under its prefix on its own server, as o says.
func (s *seeded) run(ctx context.Context, o Options) (*Report, error) {
	if o.Conn.Client == nil {
		o.Conn.Client = s.e.Srv.Client
	}
	if o.Prefix == "" {
		o.Prefix = s.prefix
	}
	o.Logger = slog.New(slog.DiscardHandler)
	return Run(ctx, bytes.NewReader(s.data), int64(len(s.data)), []byte(testnode.Password), &o)
}

// under lists the databases of client whose names start with prefix.
func under(t *testing.T, client *mongo.Client, prefix string) []string {
	t.Helper()
	names, err := client.ListDatabaseNames(context.Background(), bson.D{})
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// digestOf digests the documents of ns on client, independently of the
// drill's reading.
func digestOf(t *testing.T, client *mongo.Client, ns string) (int64, string) {
	t.Helper()
	db, coll, _ := strings.Cut(ns, ".")
	cur, err := client.Database(db).Collection(coll).Find(context.Background(), bson.D{})
	require.NoError(t, err)
	var d digest
	var n int64
	for cur.Next(context.Background()) {
		d.add(cur.Current)
		n++
	}
	require.NoError(t, cur.Err())
	return n, d.String()
}

func byNamespace(rep *Report, ns string) *NamespaceReport {
	for i := range rep.Namespaces {
		if rep.Namespaces[i].Namespace == ns {
			return &rep.Namespaces[i]
		}
	}
	return nil
}

// failure returns err's *Failure.
func failure(t *testing.T, err error) *Failure {
	t.Helper()
	require.ErrorIs(t, err, ErrFailed)
	assert.Equal(t, errcode.DrillFailed, errcode.Of(err))
	var f *Failure
	require.True(t, errors.As(err, &f), "%v", err)
	return f
}

func TestDigest(t *testing.T) {
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	var x, y digest
	for _, d := range [][]byte{a, b, c} {
		x.add(d)
	}
	for _, d := range [][]byte{c, a, b} {
		y.add(d)
	}
	assert.Equal(t, x, y, "the order of the documents does not matter")
	y.add(a)
	assert.NotEqual(t, x, y)

	// The sum wraps modulo 2^256 and carries between words.
	var z digest
	z.add(a)
	z.add(a)
	sum := sha256.Sum256(a)
	var want digest
	for i := 0; i < 2; i++ {
		var carry uint64
		for w := 3; w >= 0; w-- {
			v := uint64(0)
			for _, byt := range sum[w*8 : w*8+8] {
				v = v<<8 | uint64(byt)
			}
			s := want[w] + v + carry
			if s < want[w] || carry == 1 && s == want[w] {
				carry = 1
			} else {
				carry = 0
			}
			want[w] = s
		}
	}
	assert.Equal(t, want, z)
	assert.Len(t, z.String(), 64)
}

func TestRunPasses(t *testing.T) {
	s := newSeeded(t)
	var (
		mu     sync.Mutex
		events []archive.Progress
	)
	rep, err := s.run(context.Background(), Options{Progress: func(p archive.Progress) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, p)
	}})
	require.NoError(t, err)
	assert.True(t, rep.Passed)
	assert.Equal(t, "main", rep.Backup)
	assert.Empty(t, rep.Differences)
	require.Len(t, rep.Namespaces, 4)

	users := byNamespace(rep, s.e.Srv.DB("app")+".users")
	require.NotNil(t, users)
	assert.Equal(t, s.prefix+s.e.Srv.DB("app")+".users", users.Target)
	assert.True(t, users.Checked)
	assert.EqualValues(t, 50, users.ExpectedDocuments)
	assert.EqualValues(t, 50, users.FoundDocuments)
	// The expected digest is that of the protected node's documents.
	n, d := digestOf(t, s.e.Srv.Client, s.e.Srv.DB("app")+".users")
	assert.EqualValues(t, 50, n)
	assert.Equal(t, d, users.ExpectedDigest)
	assert.Equal(t, d, users.FoundDigest)
	assert.ElementsMatch(t, []string{"_id_", "email_1", "age_-1_score_1"}, users.ExpectedIndexes)
	assert.ElementsMatch(t, users.ExpectedIndexes, users.FoundIndexes)

	empty := byNamespace(rep, s.e.Srv.DB("shop")+".empty")
	require.NotNil(t, empty)
	assert.Zero(t, empty.FoundDocuments)
	assert.Equal(t, strings.Repeat("0", 64), empty.FoundDigest)

	assert.EqualValues(t, 150, rep.Documents)
	assert.Positive(t, rep.Bytes)
	assert.Positive(t, rep.RestoreTime)
	assert.Positive(t, rep.CheckTime)
	assert.Positive(t, rep.BytesPerSecond)
	assert.Positive(t, rep.DocumentsPerSecond)
	assert.EqualValues(t, len(s.data), rep.FileBytes)
	assert.Nil(t, rep.Replay, "the backup holds no oplog")
	assert.NotEmpty(t, events)
	assert.Equal(t, 4, events[len(events)-1].NamespacesTotal, "the read-back's progress comes last")

	// It drops what it restored, and touches nothing of the node.
	assert.ElementsMatch(t, []string{s.prefix + s.e.Srv.DB("app"), s.prefix + s.e.Srv.DB("shop")}, rep.Dropped)
	assert.Empty(t, under(t, s.e.Srv.Client, s.prefix))
	assert.EqualValues(t, 50, s.e.Count(s.e.Srv.DB("app"), "users"))

	// The report's JSON names are stable.
	j, err := json.Marshal(rep)
	require.NoError(t, err)
	for _, k := range []string{`"passed":true`, `"restore_time_ns":`, `"bytes_per_second":`, `"documents_per_second":`,
		`"expected_documents":50`, `"found_digest":"` + d + `"`, `"expected_indexes":`, `"found_indexes":`, `"dropped":`} {
		assert.Contains(t, string(j), k)
	}
}

// TestRunScratchServer drills into a server of its own, which must be
// empty, and refuses to write namespaces of the backup or the server's
// own.
func TestRunScratchServer(t *testing.T) {
	s := newSeeded(t)
	scratch := mongotest.New(t)
	ctx := context.Background()

	// By URI, without a prefix: the namespaces keep their names.
	o := &Options{Conn: conn.Config{URI: scratch.URI}, Logger: slog.New(slog.DiscardHandler)}
	rep, err := Run(ctx, bytes.NewReader(s.data), int64(len(s.data)), []byte(testnode.Password), o)
	require.NoError(t, err)
	assert.True(t, rep.Passed)
	assert.Equal(t, s.e.Srv.DB("app")+".users", byNamespace(rep, s.e.Srv.DB("app")+".users").Target)
	assert.ElementsMatch(t, []string{s.e.Srv.DB("app"), s.e.Srv.DB("shop")}, rep.Dropped)
	assert.Empty(t, under(t, scratch.Client, s.e.Srv.Prefix))

	// The node itself is no scratch server: it holds databases.
	_, err = Run(ctx, bytes.NewReader(s.data), int64(len(s.data)), []byte(testnode.Password),
		&Options{Conn: conn.Config{Client: s.e.Srv.Client}, Logger: slog.New(slog.DiscardHandler)})
	assert.ErrorIs(t, err, ErrTargetInUse)
	assert.Equal(t, errcode.Exists, errcode.Of(err))
	assert.EqualValues(t, 50, s.e.Count(s.e.Srv.DB("app"), "users"))

	// A prefix that the backup's databases start with would map one of
	// them onto another's name.
	_, err = s.run(ctx, Options{Conn: conn.Config{Client: scratch.Client}, Prefix: s.e.Srv.Prefix})
	assert.ErrorIs(t, err, ErrSourceNamespace)
	assert.ErrorIs(t, err, ErrTargetInUse)
	assert.NotErrorIs(t, err, ErrFailed)
	assert.Empty(t, under(t, scratch.Client, s.e.Srv.Prefix))

	_, err = s.run(ctx, Options{Conn: conn.Config{Client: scratch.Client}, Prefix: "bad.prefix"})
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestRunRefusesPrefixReuse(t *testing.T) {
	s := newSeeded(t)
	ctx := context.Background()
	other := s.prefix + "earlier"
	_, err := s.e.Srv.Client.Database(other).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)

	rep, err := s.run(ctx, Options{})
	require.ErrorIs(t, err, ErrTargetInUse)
	assert.NotErrorIs(t, err, ErrSourceNamespace)
	assert.Contains(t, err.Error(), other)
	assert.False(t, rep.Passed)
	assert.Equal(t, err.Error(), rep.Error)
	assert.Empty(t, rep.Dropped)
	assert.Equal(t, []string{other}, under(t, s.e.Srv.Client, s.prefix), "a refused drill drops nothing")
}

// TestRunFailsOnLostDocument changes the target under the drill, after the
// restore and before the read-back: a document lost, one changed, an
// index dropped.
func TestRunFailsOnTargetChanges(t *testing.T) {
	s := newSeeded(t)
	events, orders, users := s.e.Srv.DB("app")+".events", s.e.Srv.DB("shop")+".orders", s.e.Srv.DB("app")+".users"
	for _, tc := range []struct {
		name string
		ns   string
		kind Kind
		hook func(ctx context.Context, db func(string) *mongo.Database) error
		want string
	}{
		{"lost document", events, KindCount, func(ctx context.Context, db func(string) *mongo.Database) error {
			_, err := db("app").Collection("events").DeleteOne(ctx, bson.D{{Key: "_id", Value: int64(7)}})
			return err
		}, "the backup holds 50 documents"},
		{"changed document", users, KindDigest, func(ctx context.Context, db func(string) *mongo.Database) error {
			_, err := db("app").Collection("users").UpdateOne(ctx, bson.D{{Key: "email", Value: "user00003@example.com"}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: int32(99)}}}})
			return err
		}, "as many documents as the backup (50) but others"},
		{"missing index", orders, KindIndex, func(ctx context.Context, db func(string) *mongo.Database) error {
			return db("shop").Collection("orders").Indexes().DropOne(ctx, "sku_1")
		}, `index sku_1 {"sku": 1} is missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := s.run(context.Background(), Options{checkHook: func(ctx context.Context, c *mongo.Client) error {
				return tc.hook(ctx, func(name string) *mongo.Database { return c.Database(s.prefix + s.e.Srv.DB(name)) })
			}})
			f := failure(t, err)
			require.Len(t, f.Differences, 1, "%v", f.Differences)
			d := f.Differences[0]
			assert.Equal(t, tc.ns, d.Namespace)
			assert.Equal(t, tc.kind, d.Kind)
			assert.Contains(t, d.Detail, tc.want)
			assert.Contains(t, err.Error(), tc.ns)
			assert.Nil(t, f.Restore)
			assert.False(t, rep.Passed)
			assert.Equal(t, f.Differences, rep.Differences)
			assert.Equal(t, err.Error(), rep.Error)
			assert.Empty(t, under(t, s.e.Srv.Client, s.prefix), "dropped after a failure too")
		})
	}
}

// craftedBackup returns an encrypted backup of ns, whose document holding
// "victim" is changed after the archive was written: it differs from what
// the manifest promises.
func craftedBackup(t *testing.T, ns string) []byte {
	t.Helper()
	docs := testnode.Docs{ns: {
		{{Key: "_id", Value: 1}, {Key: "v", Value: "keep"}},
		{{Key: "_id", Value: 2}, {Key: "v", Value: "victim"}},
		{{Key: "_id", Value: 3}, {Key: "v", Value: "keep"}},
	}}
	p, err := docs.Plan(context.Background())
	require.NoError(t, err)
	var plain bytes.Buffer
	_, err = archive.Dump(context.Background(), &plain, p.Collections, docs, &archive.DumpOptions{Compression: archive.NoCompression{}})
	require.NoError(t, err)
	b := plain.Bytes()
	at := bytes.Index(b, []byte("victim"))
	require.Positive(t, at)
	b[at] = 'V' // the same length: the archive still reads
	var enc bytes.Buffer
	w, err := cipher.NewWriter(&enc, []byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return enc.Bytes()
}

func TestRunFailsOnCraftedBackup(t *testing.T) {
	srv := mongotest.New(t)
	ns := srv.DB("crafted") + ".coll"
	s := &seeded{e: &testnode.Env{T: t, Srv: srv}, data: craftedBackup(t, ns), prefix: "drill_" + srv.Prefix}
	rep, err := s.run(context.Background(), Options{})
	f := failure(t, err)
	assert.ErrorIs(t, err, restore.ErrCorrupt)
	require.NotEmpty(t, f.Differences)
	d := f.Differences[len(f.Differences)-1]
	assert.Equal(t, KindRestore, d.Kind)
	assert.Contains(t, d.Detail, ns, "the restore's error names the namespace")
	assert.Contains(t, d.Detail, "manifest.json says 3")
	assert.False(t, rep.Passed)
	nr := byNamespace(rep, ns)
	require.NotNil(t, nr)
	assert.EqualValues(t, 3, nr.ExpectedDocuments)
	assert.False(t, nr.Checked)
	// The restore had inserted the documents before it met the manifest:
	// they are dropped.
	assert.Equal(t, []string{s.prefix + srv.DB("crafted")}, rep.Dropped)
	assert.Empty(t, under(t, srv.Client, s.prefix))
}

func TestRunCancelledCleansUp(t *testing.T) {
	s := newSeeded(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := s.run(ctx, Options{checkHook: func(ctx context.Context, _ *mongo.Client) error {
		cancel()
		return ctx.Err()
	}})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrFailed)
	assert.Equal(t, errcode.Cancelled, errcode.Of(err))
	assert.False(t, rep.Passed)
	assert.NotEmpty(t, rep.Dropped)
	assert.Empty(t, under(t, s.e.Srv.Client, s.prefix))
}

func TestRunWithOplog(t *testing.T) {
	srv := mongotest.New(t)
	ns := srv.DB("op") + ".c"
	data := testnode.CraftedBackup(t, map[string][]bson.D{ns: {testnode.ID(1), testnode.ID(2)}},
		[]bson.D{
			testnode.Ins(ns, bson.D{{Key: "_id", Value: 3}}),
			testnode.Upd(ns, 1, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}),
			testnode.Del(ns, 2),
		}, archive.TarFormat{})
	s := &seeded{e: &testnode.Env{T: t, Srv: srv}, data: data, prefix: "drill_" + srv.Prefix}
	rep, err := s.run(context.Background(), Options{})
	require.NoError(t, err)
	assert.True(t, rep.Passed)
	require.NotNil(t, rep.Replay)
	assert.EqualValues(t, 3, rep.Replay.Entries)
	assert.EqualValues(t, 1, rep.Replay.Inserts)
	assert.EqualValues(t, 1, rep.Replay.Updates)
	assert.EqualValues(t, 1, rep.Replay.Deletes)
	assert.Zero(t, rep.Replay.Conflicts)
	nr := byNamespace(rep, ns)
	require.NotNil(t, nr)
	assert.EqualValues(t, 2, nr.FoundDocuments, "read back before the replay")
	assert.Empty(t, under(t, srv.Client, s.prefix))
	assert.True(t, slices.Contains(rep.Dropped, s.prefix+srv.DB("op")))
}
