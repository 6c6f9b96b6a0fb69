package cipher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzMaxWork keeps the KDF cheap whatever header the fuzzer invents: N·r·p
// at most 4096 is under a millisecond and at most 512 KiB.
const fuzzMaxWork = 1 << 12

const fuzzChunk = 32

var fuzzPassword = testPassword

// readerSeeds are valid streams (and a few broken ones) for FuzzReader.
func readerSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, n := range []int{0, 1, 31, 32, 33, 100} {
		seeds = append(seeds, encryptSmall(t, pattern(n), fuzzChunk))
	}
	_, ct := smallStreamTB(t)
	trunc := bytes.Clone(ct[:len(ct)-1])
	seeds = append(seeds, trunc, append(bytes.Clone(ct), 0), []byte("KEEPSLOT"), nil)
	// A header asking for 128 times the default work, and one just under
	// fuzzMaxWork: the cap refuses the first before deriving anything.
	seeds = append(seeds, craftHeader(t, 1, 1, 20, 8, 16), craftHeader(t, 1, 1, 9, 4, 2))
	return seeds
}

func smallStreamTB(t testing.TB) ([]byte, []byte) {
	pt := pattern(3*32 + 11)
	return pt, encryptSmall(t, pt, 32)
}

// FuzzReader feeds arbitrary bytes to the reader. It must never panic, and
// whatever plaintext Read releases must be authentic: re-encrypting it with
// the header's own salt, IV and parameters must reproduce the input (all of
// it when Read reached EOF, the released chunks and their tags otherwise).
func FuzzReader(f *testing.F) {
	for _, s := range readerSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := newReader(bytes.NewReader(data), int64(len(data)), fuzzPassword, fuzzMaxWork, fuzzChunk, deriveKeys)
		if err != nil {
			require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrWrongPassword) ||
				errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrKDFTooExpensive), "untyped error: %v", err)
			return
		}
		verr := r.Verify(context.Background())
		var got bytes.Buffer
		_, rerr := io.Copy(&got, r)
		if rerr == nil {
			require.NoError(t, verr, "Read succeeded where Verify failed")
		} else {
			require.ErrorIs(t, rerr, ErrCorrupt)
			require.Error(t, verr, "Verify passed where Read failed")
			require.Zero(t, got.Len()%fuzzChunk, "a partial chunk was released")
		}

		// Re-encrypt what was released with the stream's own parameters.
		h := r.hdr
		pt := got.Bytes()
		if rerr != nil {
			pt = append(bytes.Clone(pt), 0) // keep the released chunks non-final
		}
		var re bytes.Buffer
		w, err := newWriter(&re, fuzzPassword, h.kdf, h.salt, h.iv, fuzzChunk)
		require.NoError(t, err)
		_, err = w.Write(pt)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		if rerr == nil {
			require.Equal(t, data, re.Bytes(), "accepted a stream the writer would not produce")
			return
		}
		k := got.Len() / fuzzChunk
		require.Equal(t, data[:headerSize+got.Len()], re.Bytes()[:headerSize+got.Len()])
		dataTags := data[len(data)-footerSize-int(r.n)*tagSize:]
		reTags := re.Bytes()[re.Len()-footerSize-int(numChunks(int64(len(pt)), fuzzChunk))*tagSize:]
		require.Equal(t, dataTags[:k*tagSize], reTags[:k*tagSize], "released a chunk whose tag is not authentic")
	})
}

// FuzzRoundTrip encrypts and decrypts arbitrary data written in pieces of
// arbitrary size, with small or real chunks.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{}, uint16(1), true)
	f.Add([]byte("hello"), uint16(3), false)
	f.Add(pattern(100), uint16(32), true)
	f.Add(pattern(257), uint16(7), true)
	f.Fuzz(func(t *testing.T, data []byte, piece uint16, small bool) {
		chunk := ChunkSize
		if small {
			chunk = fuzzChunk
		}
		var salt [saltSize]byte
		var iv [ivSize]byte
		copy(iv[:], data)
		var buf bytes.Buffer
		w, err := newWriter(&buf, fuzzPassword, tinyKDF, salt, iv, chunk)
		require.NoError(t, err)
		step := int(piece%97) + 1
		for p := data; len(p) > 0; {
			n := min(step, len(p))
			m, err := w.Write(p[:n])
			require.NoError(t, err)
			require.Equal(t, n, m)
			p = p[n:]
		}
		require.NoError(t, w.Close())
		require.Equal(t, headerSize+len(data)+tagSize*int(numChunks(int64(len(data)), int64(chunk)))+footerSize, buf.Len())
		got, err := decryptAll(buf.Bytes(), fuzzPassword, int64(chunk))
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got))
	})
}

// TestWriteFuzzSeeds writes the seed corpus under testdata/fuzz with -update.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, s := range readerSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
	}
}
