package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/restore"
)

func run(t *testing.T, data []byte, o restore.Options) (*restore.Report, error) {
	t.Helper()
	return testnode.RestoreBytes(t, data, o)
}

func sealedBackup(t *testing.T, docs map[string][]bson.D) []byte {
	t.Helper()
	return testnode.CraftedBackup(t, docs, nil, archive.TarFormat{})
}

func cut(ns string) (string, string, bool) { return strings.Cut(ns, ".") }

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

	_, err = run(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, Parallel: 4, BatchSize: 5})
	require.ErrorIs(t, err, restore.ErrDuplicateKey)
	assert.Equal(t, errcode.DuplicateKey, errcode.Of(err))
	assert.Contains(t, err.Error(), "duplicate key")
	assert.Contains(t, err.Error(), db+".a")
	assert.NotContains(t, err.Error(), "context canceled")
	assert.True(t, strings.HasPrefix(err.Error(), "restore: the target already holds documents of the backup; "), "the sentinel first: %v", err)
	assert.Equal(t, 1, strings.Count(err.Error(), "restore: "), "the package named once: %v", err)
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

	rep, err := run(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, SkipDuplicates: true, BatchSize: 7})
	require.NoError(t, err)
	require.Len(t, rep.Namespaces, 2)
	byTarget := map[string]restore.NamespaceReport{}
	for _, ns := range rep.Namespaces {
		byTarget[ns.To] = ns
	}
	assert.EqualValues(t, 28, byTarget[db+".a"].Documents)
	assert.EqualValues(t, 2, byTarget[db+".a"].Duplicates)
	assert.EqualValues(t, 10, byTarget[db+".b"].Documents)
	assert.EqualValues(t, 0, byTarget[db+".b"].Duplicates)
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

	rep, err := run(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}})
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
