package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/examples/embedded"
	"github.com/keepslot/keepslot/sensitive"
)

// encryptFile writes plain, encrypted with the password "pw" as keepslot's
// backups are, to a new file in dir.
func encryptFile(t *testing.T, dir, name string, plain []byte) string {
	t.Helper()
	var enc bytes.Buffer
	w, err := cipher.NewWriter(&enc, []byte("pw"), &cipher.Options{LogN: 10})
	require.NoError(t, err)
	_, err = w.Write(plain)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, enc.Bytes(), 0o600))
	return p
}

// mongodumpTar is a tarred mongodump directory of the collection d.a with
// n documents, as `tar cf` writes it: the directories, then each
// collection's .bson before its .metadata.json; no manifest.json.
func mongodumpTar(t *testing.T, n int) []byte {
	t.Helper()
	var docs []byte
	for i := range n {
		b, err := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
		require.NoError(t, err)
		docs = append(docs, b...)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, d := range []string{"dump/", "dump/d/"} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}))
	}
	for _, e := range []struct {
		name string
		data []byte
	}{
		{"dump/d/a.bson", docs},
		{"dump/d/a.metadata.json", []byte(`{"options":{},"indexes":[]}`)},
	} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.data)), Mode: 0o644}))
		_, err := tw.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return tb.Bytes()
}

// TestRestoreForeignTar checks that a tarred mongodump directory, which
// has no manifest.json, is refused as corrupt (exit 6) with a message that
// names --allow-missing-manifest, before anything is written, and restored
// with it.
//
// That nothing is written rests on the archive's tar reader, which refuses
// such a tar at its first header (without it, the refusal came at the end,
// once every document was written).
func TestRestoreForeignTar(t *testing.T) {
	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	count := func() int64 {
		n, err := client.Database("d").Collection("a").CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		return n
	}

	dir := t.TempDir()
	file := encryptFile(t, dir, "dump.tar.enc", mongodumpTar(t, 50))
	pw := writePassword(t, dir)
	r := runCtl(t, "restore", "--uri", srv.URI(), "--password-file", pw, file)
	assert.Equal(t, exitBadBackup, r.code, "%v", r.err)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "manifest.json")
	assert.Contains(t, r.err.Error(), "--allow-missing-manifest")
	assert.ErrorIs(t, r.err, archive.ErrCorrupt)
	assert.Zero(t, count(), "refused before the first write")

	r = runCtl(t, "restore", "--uri", srv.URI(), "--password-file", pw, "--allow-missing-manifest", "--drop", file)
	require.NoError(t, r.err, r.stderr)
	assert.Contains(t, r.stdout, "Restored 50 documents")
	assert.EqualValues(t, 50, count())

	for _, args := range [][]string{
		{"restore", "--sensitive", "--dir", dir, "--allow-missing-manifest", "--password-file", pw, file},
		{"restore", "--to-time", "1796250548:7", "--allow-missing-manifest", "--dry-run", "--password-file", pw},
	} {
		r := runCtl(t, args...)
		assert.Equal(t, exitUsage, r.code, "%v: %v", args, r.err)
	}
}

// sourceFunc is an archive.Source of a function.
type sourceFunc func(ctx context.Context, c archive.Collection, emit func([]byte) error) error

func (f sourceFunc) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	return f(ctx, c, emit)
}

// TestSensitiveTooManyExit checks that a sensitive restore of a file with
// more manifest entries than a backup holds ends with exit 6, the code of
// a corrupt file (it was 2, usage), and writes nothing.
func TestSensitiveTooManyExit(t *testing.T) {
	var plain bytes.Buffer
	cols := []archive.Collection{{DB: sensitive.DB, Name: sensitive.ManifestCollection}, {DB: sensitive.DB, Name: sensitive.FilesCollection}}
	_, err := archive.Dump(context.Background(), &plain, cols, sourceFunc(func(_ context.Context, c archive.Collection, emit func([]byte) error) error {
		if c.Name != sensitive.ManifestCollection {
			return nil
		}
		sum := sha256.Sum256([]byte("x"))
		for i := range sensitive.MaxSecrets + 1 {
			b, err := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("k%05d", i)}, {Key: "size", Value: int64(1)}, {Key: "sha256", Value: hex.EncodeToString(sum[:])}})
			if err != nil {
				return err
			}
			if err := emit(b); err != nil {
				return err
			}
		}
		return nil
	}), &archive.DumpOptions{Parallel: 1})
	require.NoError(t, err)
	dir := t.TempDir()
	file := encryptFile(t, dir, "sensitive.enc", plain.Bytes())
	target := filepath.Join(dir, "restored")
	r := runCtl(t, "restore", "--sensitive", "--dir", target, "--password-file", writePassword(t, dir), file)
	assert.Equal(t, exitBadBackup, r.code, "%v", r.err)
	require.Error(t, r.err)
	assert.ErrorIs(t, r.err, sensitive.ErrTooManyEntries)
	assert.Contains(t, r.err.Error(), "more than 10000 entries")
	left, _ := os.ReadDir(target)
	for _, e := range left {
		assert.NotContains(t, e.Name(), "k0", "no secret is written")
	}
}
