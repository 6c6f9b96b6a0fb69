package restore_test

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/restore"
)

// tarEntry is an entry of a hand-made tar: a regular file, or a directory
// when its name ends with "/".
type tarEntry struct {
	name string
	data []byte
}

// sealedTar tars entries as tar(1) does (owner names recorded) and seals
// the tar with testnode.Password.
func sealedTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range entries {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.data)), Mode: 0o644, Uname: "ops", Gname: "ops"}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	var enc bytes.Buffer
	w, err := cipher.NewWriter(&enc, []byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	_, err = w.Write(tb.Bytes())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return enc.Bytes()
}

// dumpDir is a tarred mongodump directory of db with collections a (two
// documents) and b (one), with files and directories beside the layout:
// a README at the top, notes beside the .bson files, an empty directory.
func dumpDir(t *testing.T, db string) []byte {
	doc := func(id int32) []byte {
		b, err := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		require.NoError(t, err)
		return b
	}
	meta := []byte(`{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}]}`)
	return sealedTar(t,
		tarEntry{"README.md", []byte("# nightly dump\n")},
		tarEntry{"dump/", nil},
		tarEntry{"dump/notes.txt", []byte("taken before the upgrade\n")},
		tarEntry{"dump/" + db + "/", nil},
		tarEntry{"dump/" + db + "/a.metadata.json", meta},
		tarEntry{"dump/" + db + "/a.bson", append(doc(1), doc(2)...)},
		tarEntry{"dump/" + db + "/notes.txt", []byte("a holds the orders\n")},
		tarEntry{"dump/" + db + "/b.bson", doc(3)},
		tarEntry{"dump/" + db + "/scratch/", nil},
	)
}

// TestRestoreMongodumpTarWithStrayFiles: a tarred mongodump directory that
// holds files beside its layout restores whole, each stray file named in
// the report's notes, as mongorestore skips them.
func TestRestoreMongodumpTarWithStrayFiles(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("stray")
	rep, err := testnode.RestoreBytes(t, dumpDir(t, db), restore.Options{
		Conn:    conn.Config{Client: srv.Client},
		Formats: []archive.Format{archive.TarFormat{AllowMissingManifest: true, Spill: archive.Spill{Dir: t.TempDir()}}},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 3, rep.Documents)
	assert.Len(t, testnode.Contents(t, srv, db+".a"), 2)
	assert.Len(t, testnode.Contents(t, srv, db+".b"), 1)
	notes := strings.Join(rep.Notes, "\n")
	for _, name := range []string{`"README.md"`, `"dump/notes.txt"`, `"dump/` + db + `/notes.txt"`, `"dump/` + db + `/scratch/"`} {
		assert.Contains(t, notes, name+" (")
	}
	assert.Contains(t, notes, "not part of mongodump's layout")
}

// TestRestoreForeignTarWithoutOptionWritesNothing: the same tar restored
// without AllowMissingManifest is refused before its first document is
// written, with the option named.
func TestRestoreForeignTarWithoutOptionWritesNothing(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("foreign")
	rep, err := testnode.RestoreBytes(t, dumpDir(t, db), restore.Options{Conn: conn.Config{Client: srv.Client}})
	require.ErrorIs(t, err, restore.ErrCorrupt)
	require.ErrorIs(t, err, archive.ErrCorrupt)
	assert.Equal(t, errcode.Corrupt, errcode.Of(err))
	assert.ErrorContains(t, err, "AllowMissingManifest")
	assert.ErrorContains(t, err, "--allow-missing-manifest")
	require.NotNil(t, rep)
	assert.Zero(t, rep.Documents)
	names, err := srv.Client.Database(db).ListCollectionNames(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Empty(t, names, "nothing was written")
}

// TestRestoreMongodumpTarOplogFirst: a tarred mongodump --oplog directory
// whose oplog.bson comes before the collections, as `tar czf` may order
// it, restores (here as a dry run) with its oplog replayed after them.
func TestRestoreMongodumpTarOplogFirst(t *testing.T) {
	doc := func(d bson.D) []byte {
		b, err := bson.Marshal(d)
		require.NoError(t, err)
		return b
	}
	var oplog []byte
	for i := range 3 {
		oplog = append(oplog, doc(bson.D{
			{Key: "ts", Value: bson.Timestamp{T: 100, I: uint32(i + 1)}}, {Key: "op", Value: "i"}, {Key: "ns", Value: "d.a"},
			{Key: "o", Value: bson.D{{Key: "_id", Value: int32(10 + i)}}},
		})...)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range []struct {
		name string
		data []byte
	}{
		{"dump/oplog.bson", oplog},
		{"dump/d/a.metadata.json", []byte(`{"options":{},"indexes":[]}`)},
		{"dump/d/a.bson", append(doc(bson.D{{Key: "_id", Value: int32(1)}}), doc(bson.D{{Key: "_id", Value: int32(2)}})...)},
	} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.data)), Mode: 0o644}))
		_, err := tw.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())

	var enc bytes.Buffer
	w, err := cipher.NewWriter(&enc, []byte("pw"), &cipher.Options{LogN: 10})
	require.NoError(t, err)
	_, err = w.Write(tb.Bytes())
	require.NoError(t, err)
	require.NoError(t, w.Close())

	rep, err := restore.Run(context.Background(), bytes.NewReader(enc.Bytes()), int64(enc.Len()), []byte("pw"), &restore.Options{
		DryRun:  true,
		Formats: []archive.Format{archive.TarFormat{AllowMissingManifest: true, Spill: archive.Spill{Dir: t.TempDir()}}},
	})
	require.NoError(t, err)
	require.Len(t, rep.Namespaces, 1)
	assert.EqualValues(t, 2, rep.Namespaces[0].Documents)
	require.NotNil(t, rep.Oplog, "the oplog is replayed")
	assert.EqualValues(t, 3, rep.Oplog.Entries)
}
