package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/mongotest"
	"github.com/keepslot/keepslot/restore"
)

// docSource serves documents from memory, by namespace.
type docSource map[string][]bson.D

func (m docSource) Documents(_ context.Context, c archive.Collection, emit func([]byte) error) error {
	for _, d := range m[c.Namespace()] {
		b, err := bson.Marshal(d)
		if err != nil {
			return err
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	return nil
}

// sealedBackup dumps docs, namespaces in sorted order, and encrypts them
// under pw, as a slot stores a backup.
func sealedBackup(t *testing.T, docs map[string][]bson.D) []byte {
	t.Helper()
	var cols []archive.Collection
	for _, ns := range slices.Sorted(func(yield func(string) bool) {
		for ns := range docs {
			if !yield(ns) {
				return
			}
		}
	}) {
		db, name, _ := cut(ns)
		cols = append(cols, archive.Collection{DB: db, Name: name, Type: "collection"})
	}
	var buf bytes.Buffer
	w, err := cipher.NewWriter(&buf, []byte(pw), &cipher.Options{LogN: 10})
	require.NoError(t, err)
	_, err = archive.Dump(context.Background(), w, cols, docSource(docs), &archive.DumpOptions{Compression: archive.NoCompression{}})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

const pw = "guard pass phrase"

func cut(ns string) (string, string, bool) {
	for i := range len(ns) {
		if ns[i] == '.' {
			return ns[:i], ns[i+1:], true
		}
	}
	return ns, "", false
}

func run(t *testing.T, data []byte, o restore.Options) (*restore.Report, error) {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	return restore.Run(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(pw), &o)
}

// docs returns n documents with _ids from..from+n-1.
func docs(from, n int) []bson.D {
	var out []bson.D
	for i := range n {
		out = append(out, bson.D{{Key: "_id", Value: int32(from + i)}, {Key: "v", Value: "backup"}})
	}
	return out
}

// TestDuplicateIsTheReportedCause restores over a target that already holds
// some of the backup's documents while many namespaces are in flight: the
// error is the duplicate key that stopped the restore, classified, not a
// sibling's cancellation.
func TestDuplicateIsTheReportedCause(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("app")
	backup := map[string][]bson.D{db + ".a": docs(0, 5)}
	for i := range 40 { // one batch each: the reader is mostly creating collections
		backup[fmt.Sprintf("%s.b%02d", db, i)] = docs(0, 5)
	}
	data := sealedBackup(t, backup)
	_, err := srv.Client.Database(db).Collection("a").InsertOne(context.Background(), bson.D{{Key: "_id", Value: int32(2)}, {Key: "v", Value: "target"}})
	require.NoError(t, err)

	_, err = run(t, data, restore.Options{Client: srv.Client, Parallel: 4, BatchSize: 5})
	require.ErrorIs(t, err, restore.ErrDuplicateKey)
	assert.Equal(t, errcode.DuplicateKey, errcode.Of(err))
	assert.Contains(t, err.Error(), "duplicate key")
	assert.Contains(t, err.Error(), db+".a")
	assert.NotContains(t, err.Error(), "context canceled")
}

// TestSkipDuplicates goes on past the documents the target holds, as
// mongorestore does, counting them, and keeps the target's.
func TestSkipDuplicates(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("app")
	data := sealedBackup(t, map[string][]bson.D{db + ".a": docs(0, 30), db + ".b": docs(0, 10)})
	coll := srv.Client.Database(db).Collection("a")
	_, err := coll.InsertMany(context.Background(), []any{
		bson.D{{Key: "_id", Value: int32(3)}, {Key: "v", Value: "target"}},
		bson.D{{Key: "_id", Value: int32(17)}, {Key: "v", Value: "target"}},
	})
	require.NoError(t, err)

	rep, err := run(t, data, restore.Options{Client: srv.Client, SkipDuplicates: true, BatchSize: 7})
	require.NoError(t, err)
	require.Len(t, rep.Namespaces, 2)
	assert.Equal(t, db+".a", rep.Namespaces[0].To)
	assert.EqualValues(t, 28, rep.Namespaces[0].Documents)
	assert.EqualValues(t, 2, rep.Namespaces[0].Duplicates)
	assert.EqualValues(t, 0, rep.Namespaces[1].Duplicates)
	n, err := coll.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 30, n)
	var kept bson.M
	require.NoError(t, coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: int32(17)}}).Decode(&kept))
	assert.Equal(t, "target", kept["v"], "the target's document is kept")
}

// TestServerNamespacesNotRestored: a backup that holds the server's own
// namespaces (made by hand; keepslot's backups never hold them) has them
// skipped, with a note each, and the rest restored.
func TestServerNamespacesNotRestored(t *testing.T) {
	srv := mongotest.New(t)
	app := srv.DB("app")
	refused := []string{"local.keepslot_test", "config.keepslot_test", "admin.system.js", app + ".system.profile", app + ".system.views"}
	backup := map[string][]bson.D{app + ".c": docs(0, 3)}
	for _, ns := range refused {
		backup[ns] = docs(0, 1)
	}
	data := sealedBackup(t, backup)

	rep, err := run(t, data, restore.Options{Client: srv.Client})
	require.NoError(t, err)
	require.Len(t, rep.Namespaces, 1)
	assert.Equal(t, app+".c", rep.Namespaces[0].To)
	for _, ns := range refused {
		assert.True(t, slices.ContainsFunc(rep.Notes, func(n string) bool { return bytes.HasPrefix([]byte(n), []byte(ns+" not restored")) }), "a note for %s in %q", ns, rep.Notes)
		db, coll, _ := cut(ns)
		names, err := srv.Client.Database(db).ListCollectionNames(context.Background(), bson.D{{Key: "name", Value: coll}})
		require.NoError(t, err)
		assert.Empty(t, names, "%s was not written", ns)
	}
}
