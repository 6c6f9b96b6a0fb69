package backup_test

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
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

func (e *env) count(db, coll string) int64 {
	e.t.Helper()
	n, err := e.srv.Client.Database(db).Collection(coll).CountDocuments(context.Background(), bson.D{})
	require.NoError(e.t, err)
	return n
}

func (e *env) databases() []string {
	e.t.Helper()
	names, err := e.srv.Client.ListDatabaseNames(context.Background(), bson.D{})
	require.NoError(e.t, err)
	return names
}

func TestRestoreRefusesBeforeWriting(t *testing.T) {
	e := newEnv(t)
	e.seed(10)
	_, data := backupBytes(t, e, e.config())
	ctx := context.Background()
	opts := &restore.Options{
		Client:  e.srv.Client,
		Renames: []namespace.Rename{{From: e.srv.Prefix + "*.*", To: e.srv.Prefix + "x_*.*"}},
	}
	before := e.databases()

	_, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte("wrong"), opts)
	assert.ErrorIs(t, err, cipher.ErrWrongPassword)

	// A flipped bit near the end: authentication of the whole file fails
	// before the first document is written.
	bad := bytes.Clone(data)
	bad[len(bad)-200] ^= 1
	_, err = restore.Run(ctx, bytes.NewReader(bad), int64(len(bad)), []byte(password), opts)
	assert.ErrorIs(t, err, restore.ErrCorrupt)

	_, err = restore.Run(ctx, bytes.NewReader(data[:len(data)-1]), int64(len(data)-1), []byte(password), opts)
	assert.ErrorIs(t, err, restore.ErrCorrupt)

	assert.ElementsMatch(t, before, e.databases())
}

func TestRestoreOptions(t *testing.T) {
	e := newEnv(t)
	e.seed(30)
	_, data := backupBytes(t, e, e.config())
	ctx := context.Background()
	run := func(o restore.Options) *restore.Report {
		t.Helper()
		o.Client = e.srv.Client
		rep, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), &o)
		require.NoError(t, err)
		return rep
	}
	app, shop := e.srv.DB("app"), e.srv.DB("shop")

	// Dry run: reports everything, writes nothing.
	before := e.databases()
	rep := run(restore.Options{DryRun: true, Renames: []namespace.Rename{{From: "*", To: "dry_*"}}})
	assert.True(t, rep.DryRun)
	assert.EqualValues(t, 90, rep.Documents)
	assert.Equal(t, 3, rep.Indexes)
	assert.ElementsMatch(t, before, e.databases())

	// Filter and rename one collection.
	rep = run(restore.Options{
		Filter:  namespace.Filter{Include: []string{shop + ".orders"}},
		Renames: []namespace.Rename{{From: shop + ".orders", To: shop + ".orders_copy"}},
	})
	require.Len(t, rep.Namespaces, 1)
	assert.Equal(t, shop+".orders_copy", rep.Namespaces[0].To)
	assert.EqualValues(t, 30, e.count(shop, "orders_copy"))

	// Over the originals: without Drop the inserts collide, with Drop the
	// collection is replaced.
	o := restore.Options{Filter: namespace.Filter{Include: []string{app + ".events"}}}
	o.Client = e.srv.Client
	_, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), &o)
	assert.Error(t, err)
	_, err = e.srv.Client.Database(app).Collection("events").InsertOne(ctx, bson.D{{Key: "_id", Value: int64(-1)}})
	require.NoError(t, err)
	assert.EqualValues(t, 31, e.count(app, "events"))
	run(restore.Options{Filter: namespace.Filter{Include: []string{app + ".events"}}, Drop: true, BatchSize: 7, Parallel: 2})
	assert.EqualValues(t, 30, e.count(app, "events"))
}

func TestArchiveFormatRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.seed(25)
	cfg := e.config()
	cfg.Format, cfg.Compression = archive.ArchiveFormat{}, archive.NewZstd(archive.DefaultZstdLevel)
	st, data := backupBytes(t, e, cfg)
	assert.Regexp(t, `\.archive\.zst$`, st.Name)

	rep, err := restore.Run(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(password), &restore.Options{
		Client:  e.srv.Client,
		Renames: []namespace.Rename{{From: e.srv.Prefix + "*", To: e.srv.Prefix + "z*"}},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 75, rep.Documents)
	assert.EqualValues(t, 25, e.count(e.srv.DB("zapp"), "users"))
	assert.EqualValues(t, 25, e.count(e.srv.DB("zshop"), "orders"))
}

// TestPluggedCompressionRestores checks that a backup made with a
// compression of the embedder's own restores when Restore is given it, and
// fails as corrupt, saying how to fix it, when it is not.
func TestPluggedCompressionRestores(t *testing.T) {
	e := newEnv(t)
	e.seed(10)
	cfg := e.config()
	cfg.Compression = archivetest.Foreign
	_, data := backupBytes(t, e, cfg)
	ctx := context.Background()
	opts := &restore.Options{
		Client:  e.srv.Client,
		Renames: []namespace.Rename{{From: e.srv.Prefix + "*", To: e.srv.Prefix + "s2*"}},
	}

	_, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), opts)
	require.ErrorIs(t, err, restore.ErrCorrupt)
	assert.ErrorIs(t, err, archive.ErrUnknownFormat)
	assert.Contains(t, err.Error(), "RestoreOptions.Formats, .Compressions")

	opts.Compressions = []archive.Compression{archivetest.Foreign}
	rep, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), opts)
	require.NoError(t, err)
	assert.EqualValues(t, 30, rep.Documents)
	assert.EqualValues(t, 10, e.count(e.srv.DB("s2app"), "users"))
}
