// Package archivetest is a conformance suite for implementations of
// archive.Format and archive.Compression, in the spirit of testing/fstest
// and package storetest.
//
// A test of an embedder's own compression or format runs it once:
//
//	func TestS2(t *testing.T) { archivetest.RunCompression(t, s2Compression{}) }
//
// The suite writes and reads back, checks that the implementation is
// recognised by archive.Open (OpenOptions) through its Match method, and feeds it
// truncated and damaged input, which must fail (or at least never yield
// the original data) and never panic or hang.
package archivetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
)

// RunCompression runs the conformance suite against c.
func RunCompression(t *testing.T, c archive.Compression) {
	t.Run("Names", func(t *testing.T) {
		assert.NotEmpty(t, c.Name())
		if ext := c.Extension(); ext != "" {
			assert.True(t, strings.HasPrefix(ext, "."), "Extension %q starts with a dot", ext)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		for _, in := range payloads() {
			out := compress(t, c, in)
			assert.Equal(t, in, decompress(t, c, out), "%d bytes", len(in))
		}
	})
	t.Run("CloseKeepsUnderlyingOpen", func(t *testing.T) {
		dst := &closeRecorder{}
		w, err := c.NewWriter(dst)
		require.NoError(t, err)
		_, err = w.Write([]byte("some data"))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		assert.False(t, dst.closed, "closing the compressor must not close the io.Writer under it")
		assert.Positive(t, dst.Len(), "Close flushes")
	})
	t.Run("Match", func(t *testing.T) {
		for _, in := range payloads() {
			out := compress(t, c, in)
			if len(out) == 0 {
				continue // an empty stream: nothing to recognise, and no archive is empty
			}
			assert.True(t, c.Match(head(out)), "Match recognises its own output of %d bytes", len(in))
		}
	})
	t.Run("Open", func(t *testing.T) {
		data, want := sampleArchive(t, archive.TarFormat{}, c)
		r, err := archive.Open(bytes.NewReader(data), &archive.OpenOptions{Compressions: []archive.Compression{c}})
		require.NoError(t, err)
		assert.Equal(t, want, readArchive(t, r))
	})
	t.Run("Truncated", func(t *testing.T) {
		in := payloads()[3]
		out := compress(t, c, in)
		for _, cut := range cuts(len(out)) {
			got, err := tryDecompress(c, out[:cut])
			assert.False(t, err == nil && bytes.Equal(got, in), "a stream cut at %d of %d bytes reads back whole", cut, len(out))
		}
	})
	t.Run("Damaged", func(t *testing.T) {
		out := compress(t, c, payloads()[3])
		rng := rand.New(rand.NewPCG(1, 2))
		for range 64 {
			bad := bytes.Clone(out)
			bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
			_, _ = tryDecompress(c, bad) // must return, not panic or hang
		}
		_, _ = tryDecompress(c, []byte("not a compressed stream at all"))
	})
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				in := bytes.Repeat([]byte{byte(i)}, 100<<10)
				got, err := tryDecompress(c, compress(t, c, in))
				assert.NoError(t, err)
				assert.Equal(t, in, got)
			})
		}
		wg.Wait()
	})
}

// RunFormat runs the conformance suite against f.
func RunFormat(t *testing.T, f archive.Format) {
	t.Run("Names", func(t *testing.T) {
		assert.NotEmpty(t, f.Name())
		assert.True(t, strings.HasPrefix(f.Extension(), "."), "Extension %q starts with a dot", f.Extension())
	})
	t.Run("RoundTrip", func(t *testing.T) {
		data, want := sampleArchive(t, f, archive.NoCompression{})
		r, err := f.NewReader(bytes.NewReader(data))
		require.NoError(t, err)
		assert.Equal(t, want, readArchive(t, r))

		got := map[string]archive.Collection{}
		for _, c := range r.Collections() {
			got[c.Namespace()] = c
		}
		for _, c := range sampleCollections() {
			g, ok := got[c.Namespace()]
			if assert.True(t, ok, "collection %s is listed", c.Namespace()) {
				assert.Equal(t, typ(c.Type), typ(g.Type), c.Namespace())
				assert.Len(t, g.Indexes, len(c.Indexes), c.Namespace())
			}
		}
		m := r.Manifest()
		require.NotNil(t, m, "a manifest after io.EOF")
		for ns, docs := range want {
			st, ok := m.Stats(ns)
			if assert.True(t, ok, "manifest has %s", ns) {
				assert.EqualValues(t, len(docs), st.Documents, ns)
			}
		}
	})
	t.Run("Match", func(t *testing.T) {
		data, _ := sampleArchive(t, f, archive.NoCompression{})
		assert.True(t, f.Match(head(data)), "Match recognises its own output")
		assert.False(t, f.Match([]byte("neither tar nor archive, just text")), "Match refuses plain text")
	})
	t.Run("Open", func(t *testing.T) {
		for _, c := range []archive.Compression{archive.NoCompression{}, archive.NewGzip(archive.DefaultGzipLevel)} {
			data, want := sampleArchive(t, f, c)
			r, err := archive.Open(bytes.NewReader(data), &archive.OpenOptions{Formats: []archive.Format{f}})
			require.NoError(t, err, c.Name())
			assert.Equal(t, want, readArchive(t, r), c.Name())
		}
	})
	t.Run("Incomplete", func(t *testing.T) {
		cols := sampleCollections()
		w, err := f.NewWriter(io.Discard, archive.Header{ToolVersion: "archivetest", Collections: cols}, nil)
		require.NoError(t, err)
		cw, err := w.Collection(cols[0])
		require.NoError(t, err)
		require.NoError(t, cw.Close())
		assert.ErrorIs(t, w.Close(), archive.ErrIncomplete, "closing before every collection is written")
	})
	t.Run("Truncated", func(t *testing.T) {
		data, _ := sampleArchive(t, f, archive.NoCompression{})
		for _, cut := range cuts(len(data)) {
			err := tryRead(f, data[:cut])
			assert.Error(t, err, "an archive cut at %d of %d bytes reads without error", cut, len(data))
		}
	})
	t.Run("Damaged", func(t *testing.T) {
		data, _ := sampleArchive(t, f, archive.NoCompression{})
		rng := rand.New(rand.NewPCG(3, 4))
		for range 64 {
			bad := bytes.Clone(data)
			bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
			_ = tryRead(f, bad) // must return, not panic or hang
		}
	})
}

// payloads are the inputs compressions are tried on: empty, one byte, a
// small text, and 1 MiB that is half repetitive and half random.
func payloads() [][]byte {
	rng := rand.New(rand.NewPCG(5, 6))
	big := bytes.Repeat([]byte("keepslot compresses this line well. "), 16<<10)
	for i := len(big) / 2; i < len(big); i++ {
		big[i] = byte(rng.Uint32())
	}
	return [][]byte{{}, {42}, []byte("hello, archivetest"), big}
}

func compress(t *testing.T, c archive.Compression, in []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := c.NewWriter(&out)
	require.NoError(t, err)
	for p := in; len(p) > 0; {
		n := min(len(p), 100<<10)
		_, err := w.Write(p[:n])
		require.NoError(t, err)
		p = p[n:]
	}
	require.NoError(t, w.Close())
	return out.Bytes()
}

func decompress(t *testing.T, c archive.Compression, in []byte) []byte {
	t.Helper()
	out, err := tryDecompress(c, in)
	require.NoError(t, err)
	return out
}

// maxOut bounds what a damaged stream may expand to before the suite stops
// reading it.
const maxOut = 64 << 20

func tryDecompress(c archive.Compression, in []byte) ([]byte, error) {
	r, err := c.NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, maxOut))
}

// typ is a collection's type, "collection" when empty.
func typ(s string) string {
	if s == "" {
		return "collection"
	}
	return s
}

func head(b []byte) []byte { return b[:min(len(b), archive.HeadSize)] }

// cuts are the lengths a stream of n bytes is cut to: none, the first
// bytes, around the middle, and the last bytes.
func cuts(n int) []int {
	var out []int
	for _, c := range []int{0, 1, 2, 10, n / 3, n / 2, n - 100, n - 10, n - 1} {
		if c >= 0 && c < n && (len(out) == 0 || out[len(out)-1] < c) {
			out = append(out, c)
		}
	}
	return out
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// sampleCollections has a plain collection with an index, an empty one
// and a view.
func sampleCollections() []archive.Collection {
	idx := func(name string, key bson.D) bson.Raw {
		b, _ := bson.Marshal(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: key}, {Key: "name", Value: name}})
		return b
	}
	view, _ := bson.Marshal(bson.D{{Key: "viewOn", Value: "users"}, {Key: "pipeline", Value: bson.A{}}})
	return []archive.Collection{
		{DB: "app", Name: "users", Type: "collection",
			Indexes: []bson.Raw{idx("_id_", bson.D{{Key: "_id", Value: int32(1)}}), idx("email_1", bson.D{{Key: "email", Value: int32(1)}})}},
		{DB: "app", Name: "empty", Type: "collection", Indexes: []bson.Raw{idx("_id_", bson.D{{Key: "_id", Value: int32(1)}})}},
		{DB: "app", Name: "adults", Type: "view", Options: view},
	}
}

// sampleArchive writes the sample collections with 500 documents in
// app.users, compressed with c, and returns the bytes and the documents by
// namespace.
func sampleArchive(t *testing.T, f archive.Format, c archive.Compression) ([]byte, map[string][][]byte) {
	t.Helper()
	cols := sampleCollections()
	var out bytes.Buffer
	zw, err := c.NewWriter(&out)
	require.NoError(t, err)
	w, err := f.NewWriter(zw, archive.Header{ToolVersion: "archivetest", Collections: cols},
		&archive.WriterOptions{Spill: archive.Spill{Dir: t.TempDir()}})
	require.NoError(t, err)
	want := map[string][][]byte{}
	for _, col := range cols {
		cw, err := w.Collection(col)
		require.NoError(t, err)
		if col.Name == "users" {
			for i := range 500 {
				doc, err := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "email", Value: fmt.Sprintf("u%d@example.com", i)}})
				require.NoError(t, err)
				require.NoError(t, cw.WriteDocument(doc))
				want[col.Namespace()] = append(want[col.Namespace()], doc)
			}
		}
		require.NoError(t, cw.Close())
	}
	require.NoError(t, w.Close())
	require.NoError(t, zw.Close())
	return out.Bytes(), want
}

// readArchive reads every document of r by namespace.
func readArchive(t *testing.T, r archive.Reader) map[string][][]byte {
	t.Helper()
	got := map[string][][]byte{}
	for {
		c, err := r.Next()
		if err == io.EOF {
			return got
		}
		require.NoError(t, err)
		for {
			doc, err := r.ReadDocument()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			got[c.Namespace()] = append(got[c.Namespace()], doc)
		}
	}
}

// tryRead reads all of an uncompressed archive of format f and returns the
// first error.
func tryRead(f archive.Format, data []byte) error {
	r, err := f.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	for {
		if _, err := r.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		for {
			if _, err := r.ReadDocument(); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return err
			}
		}
	}
}
