package archive

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// writeTarBoth writes the same collections, in the same order, as one
// compressed stream and in parts, and returns both outputs.
func writeTarBoth(t *testing.T, comp Compression, spill int64) (whole, parts []byte) {
	t.Helper()
	cols := []Collection{{DB: "app", Name: "users"}, {DB: "app", Name: "empty"}, {DB: "shop", Name: "orders"}}
	docs := func(c Collection, i int) []byte {
		d, err := bson.Marshal(bson.D{{Key: "_id", Value: int64(i)}, {Key: "ns", Value: c.Namespace()}, {Key: "pad", Value: string(bytes.Repeat([]byte{byte(i)}, i%700))}})
		require.NoError(t, err)
		return d
	}
	h := Header{ToolVersion: "test", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Collections: cols}
	opts := &WriterOptions{Spill: Spill{Dir: t.TempDir(), Threshold: spill}}
	write := func(w Writer) {
		for ci, c := range cols {
			cw, err := w.Collection(c)
			require.NoError(t, err)
			for i := range []int{2500, 0, 3000}[ci] {
				require.NoError(t, cw.WriteDocument(docs(c, i)))
			}
			require.NoError(t, cw.Close())
		}
		require.NoError(t, w.Close())
	}

	var a bytes.Buffer
	cw, err := comp.NewWriter(&a)
	require.NoError(t, err)
	w, err := TarFormat{}.NewWriter(cw, h, opts)
	require.NoError(t, err)
	write(w)
	require.NoError(t, cw.Close())

	var b bytes.Buffer
	pw, err := TarFormat{}.newPartWriter(&b, h, opts, comp.(partCompression))
	require.NoError(t, err)
	write(pw)
	return a.Bytes(), b.Bytes()
}

func decompress(t *testing.T, comp Compression, b []byte) []byte {
	t.Helper()
	r, err := comp.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return out
}

// A tar compressed in parts decompresses to the very bytes of the same tar
// compressed as one stream, in memory or spilled, and reads back.
func TestPartsSameTar(t *testing.T) {
	for _, comp := range []Compression{NewGzip(1), NewGzip(DefaultGzipLevel), NewSerialGzip(6), NewZstd(DefaultZstdLevel)} {
		for _, spill := range []int64{0, 64 << 10} {
			t.Run(fmt.Sprintf("%s/spill%d", comp.Name(), spill), func(t *testing.T) {
				whole, parts := writeTarBoth(t, comp, spill)
				plain := decompress(t, comp, whole)
				assert.True(t, bytes.Equal(plain, decompress(t, comp, parts)), "same tar")
				assert.Zero(t, len(plain)%blockSize)

				r, err := Open(bytes.NewReader(parts), nil)
				require.NoError(t, err)
				require.NoError(t, drain(r))
				assert.Len(t, r.Manifest().Namespaces, 3)
			})
		}
	}
}

// Stock gzip and tar read a tar compressed in parts as one .tar.gz.
func TestPartsStockTools(t *testing.T) {
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar on PATH")
	}
	_, parts := writeTarBoth(t, NewGzip(1), 0)
	dir := t.TempDir()
	cmd := exec.Command(tarBin, "xzf", "-", "-C", dir)
	cmd.Stdin = bytes.NewReader(parts)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, f := range []string{"dump/app/users.bson", "dump/app/users.metadata.json", "dump/shop/orders.bson", "dump/app/empty.bson", "manifest.json"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
}
