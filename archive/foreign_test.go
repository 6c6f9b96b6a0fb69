package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestForeignTarRefusedBeforeDocuments: a tar without manifest.json, read
// without AllowMissingManifest, is refused at its first entry when that
// entry is not one this package's writer puts first, so that no document
// reaches the caller (a restore would otherwise write them all and fail at
// the end); the error names the option.
func TestForeignTarRefusedBeforeDocuments(t *testing.T) {
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	meta := []byte(`{"options":{},"indexes":[]}`)
	for name, tb := range map[string][]byte{
		"tar(1) of a dump directory": makeTar(t,
			entry{name: "dump/", typ: tar.TypeDir},
			entry{name: "dump/d/", typ: tar.TypeDir},
			entry{name: "dump/d/a.metadata.json", data: meta},
			entry{name: "dump/d/a.bson", data: doc}),
		"documents first": makeTar(t,
			entry{name: "dump/d/a.bson", data: doc},
			entry{name: "dump/d/a.metadata.json", data: meta}),
		"no dump root": makeTar(t,
			entry{name: "d/a.metadata.json", data: meta},
			entry{name: "d/a.bson", data: doc}),
		"owner recorded": ownedTar(t, "alice",
			entry{name: "dump/d/a.metadata.json", data: meta},
			entry{name: "dump/d/a.bson", data: doc}),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := TarFormat{}.NewReader(bytes.NewReader(tb))
			require.NoError(t, err)
			c, err := r.Next()
			assert.Nil(t, c, "no collection, and so no document, is returned")
			require.ErrorIs(t, err, ErrCorrupt)
			assert.ErrorContains(t, err, "TarFormat.AllowMissingManifest")
			assert.ErrorContains(t, err, "--allow-missing-manifest")
			_, err = r.ReadDocument()
			assert.ErrorIs(t, err, ErrCorrupt, "and none after")

			o, err := Open(bytes.NewReader(tb), nil)
			require.NoError(t, err)
			c, err = o.Next()
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ErrCorrupt)

			_, err = readLenient(t, tb)
			assert.NoError(t, err, "AllowMissingManifest reads it")
		})
	}
}

// ownedTar is makeTar with the owner names that tar(1) records.
func ownedTar(t *testing.T, owner string, entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.data)), Mode: 0o644, Uname: owner, Gname: owner}))
		_, err := tw.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// readLenient reads tb with AllowMissingManifest, through Open, and
// returns its documents by namespace and what it skipped.
func readLenient(t *testing.T, tb []byte) ([]SkippedEntry, error) {
	t.Helper()
	r, err := Open(bytes.NewReader(tb), &OpenOptions{Formats: []Format{TarFormat{AllowMissingManifest: true, Spill: Spill{Dir: t.TempDir()}}}})
	require.NoError(t, err)
	err = drain(r)
	return Skipped(r), err
}

// TestStrayEntriesSkipped: a tarred mongodump directory with files beside
// its layout (at the top, in the dump root, in a database directory, in a
// directory of its own) and an empty directory is read whole; what was
// passed over is listed, with its size.
func TestStrayEntriesSkipped(t *testing.T) {
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	tb := makeTar(t,
		entry{name: "README", data: []byte("how this dump was made\n")},
		entry{name: "dump/", typ: tar.TypeDir},
		entry{name: "dump/notes.txt", data: []byte("taken before the upgrade\n")},
		entry{name: "dump/d/", typ: tar.TypeDir},
		entry{name: "dump/d/a.metadata.json", data: []byte(`{"options":{},"indexes":[]}`)},
		entry{name: "dump/d/notes.txt", data: []byte("a holds the orders\n")},
		entry{name: "dump/d/a.bson", data: append(append([]byte{}, doc...), doc...)},
		entry{name: "dump/d/empty/", typ: tar.TypeDir},
		entry{name: "dump/d/old/a.bson", data: doc},
		entry{name: "dump/d/a.json", data: []byte(`{}`)},
	)
	r, err := TarFormat{AllowMissingManifest: true}.NewReader(bytes.NewReader(tb))
	require.NoError(t, err)
	docs, _ := readAll(t, r)
	assert.Len(t, docs["d.a"], 2)
	assert.Len(t, docs, 1)
	want := []SkippedEntry{
		{"README", 23}, {"dump/notes.txt", 25}, {"dump/d/notes.txt", 19},
		{"dump/d/empty/", 0}, {"dump/d/old/a.bson", int64(len(doc))}, {"dump/d/a.json", 2},
	}
	assert.Equal(t, want, Skipped(r))

	skipped, err := readLenient(t, tb)
	require.NoError(t, err)
	assert.Equal(t, want, skipped, "through Open too")

	_, err = TarFormat{}.NewReader(bytes.NewReader(tb))
	require.NoError(t, err)
	assert.ErrorIs(t, openBytes(tb), ErrCorrupt, "without AllowMissingManifest, refused")
	assert.Nil(t, Skipped(&archReader{}), "the archive format skips nothing")
}

// TestStraysPastBoundRefused: what is passed over is bounded, all stray
// entries together: one that claims more, or the one that takes the total
// past the bound, is refused by name before its body is read, whatever it
// decompresses to.
func TestStraysPastBoundRefused(t *testing.T) {
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	lead := []entry{
		{name: "dump/d/a.metadata.json", data: []byte(`{"options":{},"indexes":[]}`)},
		{name: "dump/d/a.bson", data: doc},
	}
	many := append([]entry{}, lead...)
	crossing, total := "", int64(0) // the entry that takes the total past the bound
	for i := range 300 {
		e := entry{name: fmt.Sprintf("dump/d/notes-%03d.txt", i), data: make([]byte, 4<<10)}
		many = append(many, e)
		if total += blockSize + int64(len(e.name)+len(e.data)); total > maxSkipped && crossing == "" {
			crossing = fmt.Sprintf("%q", e.name)
		}
	}
	require.NotEmpty(t, crossing)
	for name, tc := range map[string]struct {
		tar   []byte
		entry string
	}{
		"one large":  {makeTar(t, append(lead, entry{name: "dump/zeros.bin", data: make([]byte, 64<<20)})...), "dump/zeros.bin"},
		"many small": {makeTar(t, many...), crossing},
	} {
		t.Run(name, func(t *testing.T) {
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			_, err := zw.Write(tc.tar)
			require.NoError(t, err)
			require.NoError(t, zw.Close())
			zr, err := gzip.NewReader(&gz)
			require.NoError(t, err)
			plain := &countingReader{r: zr}
			r, err := TarFormat{AllowMissingManifest: true}.NewReader(plain)
			require.NoError(t, err)
			err = drain(r)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorIs(t, err, ErrTooLarge)
			assert.ErrorContains(t, err, tc.entry)
			assert.ErrorContains(t, err, "past 1048576 bytes")
			// The bound, the headers and one 64 KiB buffer of the reader.
			assert.LessOrEqual(t, plain.n, int64(maxSkipped+128<<10), "decompressed %d bytes", plain.n)
			_, err = io.Copy(io.Discard, zr)
			require.NoError(t, err)
		})
	}
}
