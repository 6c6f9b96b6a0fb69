package restore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/archive/archivetest"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

// databases lists the databases of e's server.
func databases(e *testnode.Env) []string {
	e.T.Helper()
	names, err := e.Srv.Client.ListDatabaseNames(context.Background(), bson.D{})
	require.NoError(e.T, err)
	return names
}

func TestRestoreRefusesBeforeWriting(t *testing.T) {
	e := testnode.New(t)
	e.Seed(10)
	_, data := testnode.BackupBytes(t, e, e.Config())
	ctx := context.Background()
	opts := &restore.Options{
		Conn:    conn.Config{Client: e.Srv.Client},
		Renames: []namespace.Rename{{From: e.Srv.Prefix + "*.*", To: e.Srv.Prefix + "x_*.*"}},
	}
	before := databases(e)

	_, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte("wrong"), opts)
	assert.ErrorIs(t, err, cipher.ErrWrongPassword)

	// A flipped bit near the end: authentication of the whole file fails
	// before the first document is written.
	bad := bytes.Clone(data)
	bad[len(bad)-200] ^= 1
	_, err = restore.Run(ctx, bytes.NewReader(bad), int64(len(bad)), []byte(testnode.Password), opts)
	assert.ErrorIs(t, err, restore.ErrCorrupt)

	_, err = restore.Run(ctx, bytes.NewReader(data[:len(data)-1]), int64(len(data)-1), []byte(testnode.Password), opts)
	assert.ErrorIs(t, err, restore.ErrCorrupt)

	assert.ElementsMatch(t, before, databases(e))
}

func TestRestoreOptions(t *testing.T) {
	e := testnode.New(t)
	e.Seed(30)
	_, data := testnode.BackupBytes(t, e, e.Config())
	ctx := context.Background()
	run := func(o restore.Options) *restore.Report {
		t.Helper()
		o.Conn.Client = e.Srv.Client
		rep, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &o)
		require.NoError(t, err)
		return rep
	}
	app, shop := e.Srv.DB("app"), e.Srv.DB("shop")

	// Dry run: reports everything, writes nothing.
	before := databases(e)
	rep := run(restore.Options{DryRun: true, Renames: []namespace.Rename{{From: "*", To: "dry_*"}}})
	assert.True(t, rep.DryRun)
	assert.EqualValues(t, 90, rep.Documents)
	assert.Equal(t, 3, rep.Indexes)
	assert.ElementsMatch(t, before, databases(e))

	// Filter and rename one collection.
	rep = run(restore.Options{
		Filter:  namespace.Filter{Include: []string{shop + ".orders"}},
		Renames: []namespace.Rename{{From: shop + ".orders", To: shop + ".orders_copy"}},
	})
	require.Len(t, rep.Namespaces, 1)
	assert.Equal(t, shop+".orders_copy", rep.Namespaces[0].To)
	assert.EqualValues(t, 30, e.Count(shop, "orders_copy"))

	// Over the originals: without Drop the inserts collide, with Drop the
	// collection is replaced.
	o := restore.Options{Filter: namespace.Filter{Include: []string{app + ".events"}}}
	o.Conn.Client = e.Srv.Client
	_, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &o)
	assert.Error(t, err)
	_, err = e.Srv.Client.Database(app).Collection("events").InsertOne(ctx, bson.D{{Key: "_id", Value: int64(-1)}})
	require.NoError(t, err)
	assert.EqualValues(t, 31, e.Count(app, "events"))
	run(restore.Options{Filter: namespace.Filter{Include: []string{app + ".events"}}, Drop: true, BatchSize: 7, Parallel: 2})
	assert.EqualValues(t, 30, e.Count(app, "events"))
}

func TestArchiveFormatRoundTrip(t *testing.T) {
	e := testnode.New(t)
	e.Seed(25)
	cfg := e.Config()
	cfg.Format, cfg.Compression = archive.ArchiveFormat{}, archive.NewZstd(archive.DefaultZstdLevel)
	st, data := testnode.BackupBytes(t, e, cfg)
	assert.Regexp(t, `\.archive\.zst$`, st.Name)

	rep, err := restore.Run(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &restore.Options{
		Conn:    conn.Config{Client: e.Srv.Client},
		Renames: []namespace.Rename{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "z*"}},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 75, rep.Documents)
	assert.EqualValues(t, 25, e.Count(e.Srv.DB("zapp"), "users"))
	assert.EqualValues(t, 25, e.Count(e.Srv.DB("zshop"), "orders"))
}

// TestPluggedCompressionRestores checks that a backup made with a
// compression of the embedder's own restores when Restore is given it, and
// fails as corrupt, saying how to fix it, when it is not.
func TestPluggedCompressionRestores(t *testing.T) {
	e := testnode.New(t)
	e.Seed(10)
	cfg := e.Config()
	cfg.Compression = archivetest.Foreign
	_, data := testnode.BackupBytes(t, e, cfg)
	ctx := context.Background()
	opts := &restore.Options{
		Conn:    conn.Config{Client: e.Srv.Client},
		Renames: []namespace.Rename{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "s2*"}},
	}

	_, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), opts)
	require.ErrorIs(t, err, restore.ErrCorrupt)
	assert.ErrorIs(t, err, archive.ErrUnknownFormat)
	assert.Contains(t, err.Error(), "restore.Options.Formats, .Compressions")

	opts.Compressions = []archive.Compression{archivetest.Foreign}
	rep, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), opts)
	require.NoError(t, err)
	assert.EqualValues(t, 30, rep.Documents)
	assert.EqualValues(t, 10, e.Count(e.Srv.DB("s2app"), "users"))
}
