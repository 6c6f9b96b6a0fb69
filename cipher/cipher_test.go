package cipher

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripSizes(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 12345} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			pt := pattern(n)
			ct := encrypt(t, pt)
			require.Equal(t, int64(n)+Overhead(int64(n)), int64(len(ct)))

			r, err := NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, nil)
			require.NoError(t, err)
			assert.Equal(t, int64(n), r.Size())
			require.NoError(t, r.Verify(context.Background()))
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, got), "plaintext differs")

			// Read after EOF keeps returning EOF.
			m, err := r.Read(make([]byte, 10))
			assert.Equal(t, 0, m)
			assert.ErrorIs(t, err, io.EOF)
		})
	}
}

func TestRoundTripSmallChunks(t *testing.T) {
	const chunk = 32
	for n := 0; n <= 5*chunk+1; n++ {
		pt := pattern(n)
		ct := encryptSmall(t, pt, chunk)
		require.Equal(t, headerSize+n+tagSize*int(numChunks(int64(n), chunk))+footerSize, len(ct), "size %d", n)
		got, err := decryptAll(ct, testPassword, chunk)
		require.NoError(t, err, "size %d", n)
		require.Equal(t, pt, got, "size %d", n)
	}
}

// TestBodyIsOneKeystream checks the body is AES-256-CTR over the whole
// plaintext as one stream, across chunk boundaries and counter carries.
func TestBodyIsOneKeystream(t *testing.T) {
	for _, ivHex := range []string{
		"00000000000000000000000000000000",
		"0000000000000000fffffffffffffffd", // carry into the high 64 bits
		"fffffffffffffffffffffffffffffffe", // 128-bit wrap
	} {
		t.Run(ivHex, func(t *testing.T) {
			var iv [ivSize]byte
			ivb, err := hex.DecodeString(ivHex)
			require.NoError(t, err)
			copy(iv[:], ivb)
			var salt [saltSize]byte
			pt := pattern(5*64 + 7)
			var buf bytes.Buffer
			w, err := newWriter(&buf, testPassword, tinyKDF, salt, iv, 64)
			require.NoError(t, err)
			_, err = w.Write(pt)
			require.NoError(t, err)
			require.NoError(t, w.Close())

			k, err := deriveKeys(testPassword, salt[:], tinyKDF)
			require.NoError(t, err)
			want := bytes.Clone(pt)
			k.xorChunk(&iv, 0, want) // one CTR stream from the IV
			assert.Equal(t, want, buf.Bytes()[headerSize:headerSize+len(pt)])

			got, err := decryptAll(buf.Bytes(), testPassword, 64)
			require.NoError(t, err)
			assert.Equal(t, pt, got)
		})
	}
}

func TestCounterAt(t *testing.T) {
	iv := [ivSize]byte{15: 0xff}
	for i := 8; i < 15; i++ {
		iv[i] = 0xff
	}
	c := counterAt(&iv, 32)
	assert.Equal(t, [ivSize]byte{7: 1, 15: 1}, c)
	all := [ivSize]byte{}
	for i := range all {
		all[i] = 0xff
	}
	assert.Equal(t, [ivSize]byte{}, counterAt(&all, 16))
}

func TestWrongPassword(t *testing.T) {
	ct := encrypt(t, pattern(1000))
	r, err := NewReader(bytes.NewReader(ct), int64(len(ct)), []byte("Correct horse battery staple"), nil)
	require.ErrorIs(t, err, ErrWrongPassword)
	assert.NotErrorIs(t, err, ErrCorrupt)
	assert.Nil(t, r, "no reader, so no plaintext")
	assert.NotContains(t, err.Error(), "horse", "the password must not leak into errors")
}

func TestEmptyPassword(t *testing.T) {
	_, err := NewWriter(io.Discard, nil, testOpts)
	require.ErrorIs(t, err, ErrEmptyPassword)
	_, err = NewWriter(io.Discard, []byte{}, testOpts)
	require.ErrorIs(t, err, ErrEmptyPassword)

	ct := encrypt(t, []byte("x"))
	_, err = NewReader(bytes.NewReader(ct), int64(len(ct)), nil, nil)
	require.ErrorIs(t, err, ErrEmptyPassword)
}

func TestTwoEncryptionsDiffer(t *testing.T) {
	pt := pattern(100)
	a, b := encrypt(t, pt), encrypt(t, pt)
	require.Equal(t, len(a), len(b))
	assert.NotEqual(t, a[20:52], b[20:52], "salt must be fresh")
	assert.NotEqual(t, a[52:68], b[52:68], "IV must be fresh")
	assert.NotEqual(t, a[headerSize:headerSize+100], b[headerSize:headerSize+100], "bodies must differ")
}

// smallStream is a 4-chunk stream with 32-byte chunks (the last one partial).
func smallStream(t *testing.T) (pt, ct []byte) { return smallStreamTB(t) }

// TestBitFlips flips one bit in every byte of a small multi-chunk stream:
// every flip is caught, and Read never releases the damaged chunk.
func TestBitFlips(t *testing.T) {
	const chunk = 32
	pt, ct := smallStream(t)
	bodyEnd := headerSize + len(pt)
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 1 << (i % 8)
		got, err := decryptAll(bad, testPassword, chunk)
		switch {
		case i == 8: // the version byte
			require.ErrorIs(t, err, ErrUnsupportedVersion, "byte %d", i)
		default:
			require.ErrorIs(t, err, ErrCorrupt, "byte %d", i)
		}
		require.True(t, bytes.HasPrefix(pt, got), "byte %d: released plaintext that is not the original", i)
		if i >= headerSize && i < bodyEnd {
			damaged := (i - headerSize) / chunk
			require.LessOrEqual(t, len(got), damaged*chunk, "byte %d: released plaintext of the damaged chunk", i)

			r, err := newReader(bytes.NewReader(bad), int64(len(bad)), testPassword, DefaultMaxWork, chunk, deriveKeys)
			require.NoError(t, err, "byte %d: body damage is found per chunk", i)
			require.ErrorIs(t, r.Verify(context.Background()), ErrCorrupt, "byte %d", i)
		} else {
			require.Empty(t, got, "byte %d", i)
		}
	}
}

// TestBitFlipRealChunks damages the second 1 MiB chunk: Read releases the
// first chunk only, and Verify catches it before any Read.
func TestBitFlipRealChunks(t *testing.T) {
	pt := pattern(2*ChunkSize + ChunkSize/2)
	ct := encrypt(t, pt)
	ct[headerSize+ChunkSize+12345] ^= 0x40

	r, err := NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, nil)
	require.NoError(t, err)
	require.ErrorIs(t, r.Verify(context.Background()), ErrCorrupt)
	got, err := io.ReadAll(r)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Equal(t, ChunkSize, len(got))
	require.True(t, bytes.Equal(pt[:ChunkSize], got))
	_, err = r.Read(make([]byte, 1))
	require.ErrorIs(t, err, ErrCorrupt, "the error is sticky")
}

func TestEveryTruncation(t *testing.T) {
	_, ct := smallStream(t)
	for n := range len(ct) {
		got, err := decryptAll(ct[:n], testPassword, 32)
		require.ErrorIs(t, err, ErrCorrupt, "length %d", n)
		require.Empty(t, got, "length %d", n)
	}
}

func TestTruncationAtChunkBoundaries(t *testing.T) {
	pt := pattern(3 * ChunkSize)
	ct := encrypt(t, pt)
	body := headerSize + len(pt)
	for _, n := range []int{
		headerSize, headerSize + ChunkSize, headerSize + 2*ChunkSize, body,
		body + tagSize, body + 2*tagSize, len(ct) - footerSize, len(ct) - 1,
	} {
		_, err := NewReader(bytes.NewReader(ct[:n]), int64(n), testPassword, nil)
		require.ErrorIs(t, err, ErrCorrupt, "length %d", n)
	}
	// Dropping the last chunk and its tag but keeping a footer is caught too.
	cut := append(append(bytes.Clone(ct[:headerSize+2*ChunkSize]), ct[body:body+2*tagSize]...), ct[len(ct)-footerSize:]...)
	_, err := NewReader(bytes.NewReader(cut), int64(len(cut)), testPassword, nil)
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestEmptyStream(t *testing.T) {
	ct := encrypt(t, nil)
	require.Len(t, ct, headerSize+tagSize+footerSize)
	got, err := decryptAll(ct, testPassword, ChunkSize)
	require.NoError(t, err)
	assert.Empty(t, got)
	// An empty stream's tag still has to verify.
	bad := bytes.Clone(ct)
	bad[headerSize] ^= 1
	_, err = decryptAll(bad, testPassword, ChunkSize)
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestTrailingBytes(t *testing.T) {
	for _, n := range []int{0, 100, ChunkSize} {
		ct := encrypt(t, pattern(n))
		for _, extra := range [][]byte{{0}, make([]byte, tagSize), ct[len(ct)-footerSize:]} {
			bad := append(bytes.Clone(ct), extra...)
			got, err := decryptAll(bad, testPassword, ChunkSize)
			require.ErrorIs(t, err, ErrCorrupt, "size %d + %d", n, len(extra))
			require.Empty(t, got)
		}
	}
}

func TestReorderedChunks(t *testing.T) {
	const chunk = 32
	_, ct := smallStream(t)
	c0 := headerSize
	c1 := headerSize + chunk
	tags := len(ct) - footerSize - 4*tagSize
	swap := func(b []byte, i, j, n int) {
		tmp := bytes.Clone(b[i : i+n])
		copy(b[i:], b[j:j+n])
		copy(b[j:], tmp)
	}

	// Chunks swapped, tags left: the first chunk fails, nothing is released.
	bad := bytes.Clone(ct)
	swap(bad, c0, c1, chunk)
	got, err := decryptAll(bad, testPassword, chunk)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Empty(t, got)

	// Chunks and their tags swapped together: the footer MAC catches it.
	swap(bad, tags, tags+tagSize, tagSize)
	_, err = decryptAll(bad, testPassword, chunk)
	require.ErrorIs(t, err, ErrCorrupt)

	// Tags swapped alone.
	bad = bytes.Clone(ct)
	swap(bad, tags, tags+2*tagSize, tagSize)
	_, err = decryptAll(bad, testPassword, chunk)
	require.ErrorIs(t, err, ErrCorrupt)

	// Tag table of another stream under the same password and salt.
	other := encryptSmall(t, pattern(3*32 + 11 + 1)[1:], chunk)
	bad = bytes.Clone(ct)
	copy(bad[tags:], other[tags:])
	_, err = decryptAll(bad, testPassword, chunk)
	require.ErrorIs(t, err, ErrCorrupt)
}

// craftHeader returns a stream whose header has the given KDF fields and a
// valid checksum, so that the parameter checks are what is exercised.
func craftHeader(t testing.TB, version, kdf, logN byte, r, p uint32) []byte {
	t.Helper()
	ct := encryptSmall(t, pattern(10), 32)
	b := bytes.Clone(ct)
	b[8], b[9], b[10] = version, kdf, logN
	h := header{kdf: kdfParams{logN: logN, r: r, p: p}}
	tmp := make([]byte, headerMACStart)
	h.marshalUnsigned(tmp)
	copy(b[12:20], tmp[12:20])
	fixCRC(b)
	return b
}

func fixCRC(b []byte) {
	hdr := b[:headerSize]
	c := crc32IEEE(hdr[:headerCRCStart])
	hdr[100], hdr[101], hdr[102], hdr[103] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

// countingKDF derives keys with tinyKDF whatever a header asks, and records
// the parameters it was asked for: a test that opens a stream through it
// knows whether, and with which cost, the reader would have run scrypt.
type countingKDF struct {
	asked []kdfParams
}

func (c *countingKDF) derive(password, salt []byte, kp kdfParams) (*keys, error) {
	c.asked = append(c.asked, kp)
	return deriveKeys(password, salt, tinyKDF)
}

// costlyStream writes pt in a stream whose header asks for kp but whose keys
// are derived with tinyKDF, so that reading it through countingKDF is cheap.
func costlyStream(t *testing.T, kp kdfParams, pt []byte) []byte {
	t.Helper()
	var salt [saltSize]byte
	var iv [ivSize]byte
	copy(salt[:], pattern(saltSize))
	k, err := deriveKeys(testPassword, salt[:], tinyKDF)
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := newWriterKeys(&buf, k, kp, salt, iv, 32)
	require.NoError(t, err)
	_, err = w.Write(pt)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// TestKDFCapRefusesBeforeWork: a header asking for more work N·r·p than the
// cap, or for more memory than the cap allows, fails with
// ErrKDFTooExpensive before any key is derived, and says what it asks, what
// the cap is and which option raises it.
func TestKDFCapRefusesBeforeWork(t *testing.T) {
	for _, c := range []struct {
		logN byte
		r, p uint32
	}{
		{20, 8, 16}, // 128 times the default: about 75 s and 1 GiB before "wrong password"
		{21, 8, 1},  // 16 times, through N
		{17, 8, 9},  // 9 times, through p
		{17, 72, 1}, // 9 times, through r
		{24, 1, 1},
		{10, 1 << 20, 1},
		{63, 1, 1},
		{64, 1, 1},
		{255, 8, 1},
		{10, 0xffffffff, 0xffffffff},
		{1, 1 << 22, 1}, // work at the cap, but 2.5 GiB of memory through r
		{4, 1 << 19, 1}, // likewise, 1.19 GiB
	} {
		b := craftHeader(t, 1, 1, c.logN, c.r, c.p)
		var kdf countingKDF
		_, err := newReader(bytes.NewReader(b), int64(len(b)), testPassword, DefaultMaxWork, 32, kdf.derive)
		require.ErrorIs(t, err, ErrKDFTooExpensive, "%+v", c)
		require.Empty(t, kdf.asked, "%+v: no key is derived over the cap", c)
		require.Contains(t, err.Error(), fmt.Sprintf("log2 N %d, r %d, p %d", c.logN, c.r, c.p))
		require.Contains(t, err.Error(), fmt.Sprint(DefaultMaxWork))
		require.Contains(t, err.Error(), "Options.MaxWork")
		require.NotContains(t, err.Error(), string(testPassword))
	}
	b := craftHeader(t, 1, 1, 20, 8, 16)
	_, err := newReader(bytes.NewReader(b), int64(len(b)), testPassword, DefaultMaxWork, 32, (&countingKDF{}).derive)
	require.ErrorContains(t, err, "N·r·p = 134217728 (128 times the default cost), above the cap of 8388608 (8 times the default cost)")
	b = craftHeader(t, 1, 1, 1, 1<<22, 1)
	_, err = newReader(bytes.NewReader(b), int64(len(b)), testPassword, DefaultMaxWork, 32, (&countingKDF{}).derive)
	require.ErrorContains(t, err, "scrypt would allocate 2684354560 bytes")

	// Zero parameters in a header are invalid.
	b = craftHeader(t, 1, 1, 10, 0, 1)
	_, err = NewReader(bytes.NewReader(b), int64(len(b)), testPassword, nil)
	require.ErrorIs(t, err, ErrCorrupt)
}

// TestKDFCapAdmitsUpTo8x: the default cost and 8 times it (through N, r or
// p) open under the default cap, deriving the key once with the header's
// parameters, as do shapes whose memory is within 1.125 GiB.
func TestKDFCapAdmitsUpTo8x(t *testing.T) {
	pt := pattern(100)
	for _, kp := range []kdfParams{
		{logN: 17, r: 8, p: 1},
		{logN: 20, r: 8, p: 1},
		{logN: 17, r: 8, p: 8},
		{logN: 17, r: 64, p: 1},
		{logN: 23, r: 1, p: 1},
		{logN: 1, r: 1, p: 1 << 22}, // 512 MiB through p
		{logN: 5, r: 1 << 18, p: 1}, // 1.09 GiB through r
	} {
		ct := costlyStream(t, kp, pt)
		var kdf countingKDF
		r, err := newReader(bytes.NewReader(ct), int64(len(ct)), testPassword, (*Options)(nil).maxWork(), 32, kdf.derive)
		require.NoError(t, err, "%+v", kp)
		require.Equal(t, []kdfParams{kp}, kdf.asked)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, pt, got)
	}
}

// TestKDFCapRaised: Options.MaxWork raises the cap, and the expensive
// header is then derived with and its stream opened; it also lowers it.
func TestKDFCapRaised(t *testing.T) {
	kp := kdfParams{logN: 20, r: 8, p: 16}
	pt := pattern(77)
	ct := costlyStream(t, kp, pt)

	var kdf countingKDF
	_, err := newReader(bytes.NewReader(ct), int64(len(ct)), testPassword, (&Options{}).maxWork(), 32, kdf.derive)
	require.ErrorIs(t, err, ErrKDFTooExpensive)
	require.Empty(t, kdf.asked)

	opts := &Options{MaxWork: 128 * DefaultMaxWork / 8}
	r, err := newReader(bytes.NewReader(ct), int64(len(ct)), testPassword, opts.maxWork(), 32, kdf.derive)
	require.NoError(t, err)
	require.Equal(t, []kdfParams{kp}, kdf.asked)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, pt, got)

	// A crafted header (no valid MAC) under the raised cap reaches the
	// password check.
	kdf.asked = nil
	b := craftHeader(t, 1, 1, 20, 8, 16)
	_, err = newReader(bytes.NewReader(b), int64(len(b)), testPassword, opts.maxWork(), 32, kdf.derive)
	require.ErrorIs(t, err, ErrWrongPassword)
	require.Equal(t, []kdfParams{kp}, kdf.asked)

	// Through the public API: a cap below a cheap stream's cost refuses it,
	// one at its cost opens it.
	ct = encrypt(t, pt) // testOpts: N·r·p = 2^10·8·1
	_, err = NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, &Options{MaxWork: 1<<13 - 1})
	require.ErrorIs(t, err, ErrKDFTooExpensive)
	r, err = NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, &Options{MaxWork: 1 << 13})
	require.NoError(t, err)
	got, err = io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, pt, got)

	// Parameters scrypt itself cannot compute are refused as too expensive
	// even under an unlimited cap.
	for _, c := range [][3]uint32{{63, 1, 1}, {40, 1 << 20, 1}, {10, 1 << 15, 1 << 15}} {
		b := craftHeader(t, 1, 1, byte(c[0]), c[1], c[2])
		_, err = NewReader(bytes.NewReader(b), int64(len(b)), testPassword, &Options{MaxWork: math.MaxUint64})
		require.ErrorIs(t, err, ErrKDFTooExpensive, "%v", c)
	}
}

// TestWriterKDFCap: NewWriter refuses a cost the default reader cap would
// refuse, whatever MaxWork says, before deriving anything; up to the cap
// the parameters are accepted.
func TestWriterKDFCap(t *testing.T) {
	for _, o := range []Options{
		{LogN: 20, R: 8, P: 16},
		{LogN: 19}, // 16 times the default work, through N
		{P: 33},    // 8.25 times, through p
		{R: 72},    // 9 times, through r
		{LogN: 18, P: 8},
		{LogN: 19, MaxWork: 1 << 40},
		{LogN: 255},
		{LogN: 10, R: 1 << 30, P: 1 << 30},
	} {
		_, err := NewWriter(io.Discard, testPassword, &o)
		require.ErrorIs(t, err, ErrKDFTooExpensive, "%+v", o)
		require.ErrorContains(t, err, "DefaultMaxWork")
	}
	for _, o := range []Options{{}, {LogN: 17, P: 1}, {LogN: 18}, {P: 32}, {R: 64}, {LogN: 23, R: 1, P: 1}} {
		kp, err := o.params()
		require.NoError(t, err, "%+v", o)
		require.Empty(t, kp.overCap(DefaultMaxWork))
	}
	_, err := NewWriter(io.Discard, testPassword, &Options{LogN: 10, R: -1})
	require.Error(t, err)
}

func TestDefaultOptions(t *testing.T) {
	for _, o := range []*Options{nil, {}} {
		kp, err := o.params()
		require.NoError(t, err)
		assert.Equal(t, kdfParams{logN: 15, r: 8, p: 4}, kp)
	}
	kp, err := (&Options{LogN: 12, P: 2}).params()
	require.NoError(t, err)
	assert.Equal(t, kdfParams{logN: 12, r: 8, p: 2}, kp)
	// A field set alone keeps the others' defaults: LogN 17 is not the
	// cost of before 0.2.0 without P 1.
	kp, err = (&Options{LogN: 17}).params()
	require.NoError(t, err)
	assert.Equal(t, kdfParams{logN: 17, r: 8, p: 4}, kp)
	kp, err = (&Options{LogN: 17, P: 1}).params()
	require.NoError(t, err)
	assert.Equal(t, kdfParams{logN: 17, r: 8, p: 1}, kp)
}

func TestUnsupportedVersion(t *testing.T) {
	for _, b := range [][]byte{craftHeader(t, 2, 1, 4, 8, 1), craftHeader(t, 1, 2, 4, 8, 1)} {
		_, err := NewReader(bytes.NewReader(b), int64(len(b)), testPassword, nil)
		require.ErrorIs(t, err, ErrUnsupportedVersion)
	}
	// A future version is recognised even when shorter than a v1 header.
	_, err := NewReader(bytes.NewReader([]byte("KEEPSLOT\x02")), 9, testPassword, nil)
	require.ErrorIs(t, err, ErrUnsupportedVersion)
}

func TestBadMagic(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("KEEP"), []byte("not a stream at all, long enough to hold a header maybe")} {
		_, err := NewReader(bytes.NewReader(b), int64(len(b)), testPassword, nil)
		require.ErrorIs(t, err, ErrCorrupt)
	}
	_, ct := smallStream(t)
	ct[0] = 'k'
	_, err := NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, nil)
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestVerifyHonorsContext(t *testing.T) {
	ct := encrypt(t, pattern(3*ChunkSize))
	r, err := NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, r.Verify(ctx), context.Canceled)
	// Verify does not disturb Read.
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Len(t, got, 3*ChunkSize)
}

type failWriter struct {
	n   int // bytes accepted before failing
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		m := f.n
		f.n = 0
		return m, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriterDstErrors(t *testing.T) {
	boom := errors.New("disk full")
	// Fails on the header.
	_, err := NewWriter(&failWriter{n: 10, err: boom}, testPassword, testOpts)
	require.ErrorIs(t, err, boom)

	// Fails in the body: some Write or Close reports it, Close keeps reporting it.
	for _, n := range []int{headerSize + 10, headerSize + 2*ChunkSize + 3, headerSize + 3*ChunkSize + 5} {
		w, err := NewWriter(&failWriter{n: n, err: boom}, testPassword, testOpts)
		require.NoError(t, err)
		var werr error
		for range 4 {
			if _, werr = w.Write(pattern(ChunkSize)); werr != nil {
				break
			}
		}
		cerr := w.Close()
		require.ErrorIs(t, errors.Join(werr, cerr), boom, "fail at %d", n)
		require.ErrorIs(t, cerr, boom, "Close reports the failure (fail at %d)", n)
		require.ErrorIs(t, w.Close(), boom)
	}
}

func TestWriteAfterClose(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testPassword, testOpts)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close())
	n := buf.Len()
	_, err = w.Write([]byte("x"))
	require.ErrorIs(t, err, errClosed)
	assert.Equal(t, n, buf.Len())
}

func TestOverhead(t *testing.T) {
	assert.Equal(t, int64(headerSize+tagSize+footerSize), Overhead(0))
	assert.Equal(t, int64(headerSize+tagSize+footerSize), Overhead(ChunkSize))
	assert.Equal(t, int64(headerSize+2*tagSize+footerSize), Overhead(ChunkSize+1))
	assert.Equal(t, int64(headerSize+100*1024*tagSize+footerSize), Overhead(100<<30))
}

// flakyReaderAt fails every read that touches [from, to).
type flakyReaderAt struct {
	r        io.ReaderAt
	from, to int64
	err      error
}

func (f flakyReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < f.to && off+int64(len(p)) > f.from {
		return 0, f.err
	}
	return f.r.ReadAt(p, off)
}

func TestReaderSourceErrors(t *testing.T) {
	eio := errors.New("input/output error")
	ct := encrypt(t, pattern(2*ChunkSize))
	// Failing in the body: NewReader succeeds, Read and Verify report the
	// I/O error itself, not corruption.
	src := flakyReaderAt{r: bytes.NewReader(ct), from: headerSize + ChunkSize + 1, to: headerSize + ChunkSize + 2, err: eio}
	r, err := NewReader(src, int64(len(ct)), testPassword, nil)
	require.NoError(t, err)
	verr := r.Verify(context.Background())
	require.ErrorIs(t, verr, eio)
	require.NotErrorIs(t, verr, ErrCorrupt)
	got, err := io.ReadAll(r)
	require.ErrorIs(t, err, eio)
	require.Len(t, got, ChunkSize)

	// Failing on the header.
	_, err = NewReader(flakyReaderAt{r: bytes.NewReader(ct), from: 0, to: 1, err: eio}, int64(len(ct)), testPassword, nil)
	require.ErrorIs(t, err, eio)
}

// TestAbort: an aborted Writer writes nothing more, ends its goroutines and
// refuses further use; Abort after Close changes nothing.
func TestAbort(t *testing.T) {
	base := runtime.NumGoroutine()
	var buf bytes.Buffer
	w, err := newWriter(&buf, testPassword, tinyKDF, [saltSize]byte{}, [ivSize]byte{}, 64)
	require.NoError(t, err)
	_, err = w.Write(pattern(64*10 + 7)) // chunks in flight, one being filled
	require.NoError(t, err)
	w.Abort()
	n := buf.Len()
	require.LessOrEqual(t, n, headerSize+64*10, "no tag table or footer after Abort")
	_, err = w.Write([]byte("x"))
	require.ErrorIs(t, err, errClosed)
	require.ErrorIs(t, w.Close(), errAborted)
	w.Abort()
	assert.Equal(t, n, buf.Len())
	_, err = decryptAll(buf.Bytes(), testPassword, 64)
	require.ErrorIs(t, err, ErrCorrupt, "an aborted stream does not open")
	// The Writer's goroutines have done their work when Abort returns; give
	// the runtime a moment to retire them before counting.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base && time.Now().Before(deadline); {
		runtime.Gosched()
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), base, "Abort ends the Writer's goroutines")

	var done bytes.Buffer
	w, err = newWriter(&done, testPassword, tinyKDF, [saltSize]byte{}, [ivSize]byte{}, 64)
	require.NoError(t, err)
	_, err = w.Write(pattern(100))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	w.Abort()
	require.NoError(t, w.Close())
	pt, err := decryptAll(done.Bytes(), testPassword, 64)
	require.NoError(t, err)
	assert.Equal(t, pattern(100), pt)
}
