package restore_test

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/restore"
)

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
		Formats: []archive.Format{archive.TarFormat{AllowMissingManifest: true, SpillDir: t.TempDir()}},
	})
	require.NoError(t, err)
	require.Len(t, rep.Namespaces, 1)
	assert.EqualValues(t, 2, rep.Namespaces[0].Documents)
	require.NotNil(t, rep.Oplog, "the oplog is replayed")
	assert.EqualValues(t, 3, rep.Oplog.Entries)
}
