package cipher

import (
	"bytes"
	"hash/crc32"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	testPassword = []byte("correct horse battery staple")
	// fastKDF keeps tests quick; the format does not care.
	fastKDF  = kdfParams{logN: 10, r: 8, p: 1}
	tinyKDF  = kdfParams{logN: 4, r: 8, p: 1}
	testOpts = &Options{LogN: 10, P: 1} // fastKDF
)

// pattern returns n deterministic, non-repeating-looking bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// writeOdd writes p to w in pieces of varying, odd sizes.
func writeOdd(t testing.TB, w io.Writer, p []byte) {
	t.Helper()
	sizes := []int{1, 7, 4093, 65537, 3, 1<<20 + 5, 250}
	for i := 0; len(p) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(p))
		m, err := w.Write(p[:n])
		require.NoError(t, err)
		require.Equal(t, n, m)
		p = p[n:]
	}
}

// encrypt encrypts pt with the public API and a low KDF cost.
func encrypt(t testing.TB, pt []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testPassword, testOpts)
	require.NoError(t, err)
	writeOdd(t, w, pt)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// encryptSmall encrypts pt with a small chunk size, to exercise chunk logic
// on small inputs.
func encryptSmall(t testing.TB, pt []byte, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var salt [saltSize]byte
	var iv [ivSize]byte
	copy(salt[:], pattern(saltSize))
	copy(iv[:], pattern(ivSize + 3)[3:])
	w, err := newWriter(&buf, testPassword, tinyKDF, salt, iv, chunk)
	require.NoError(t, err)
	for i := 0; len(pt) > 0; i++ {
		n := min(i%13+1, len(pt))
		_, err := w.Write(pt[:n])
		require.NoError(t, err)
		pt = pt[n:]
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// decryptAll opens ct and reads it to the end, returning what Read released
// (even on error) and the first error from NewReader or Read.
func decryptAll(ct []byte, password []byte, chunk int64) ([]byte, error) {
	r, err := newReader(bytes.NewReader(ct), int64(len(ct)), password, DefaultMaxWork, chunk, deriveKeys)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
