package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"math"
	"math/bits"
	"runtime/debug"

	"golang.org/x/crypto/scrypt"
)

// Layout of format version 1; FORMAT.md is the prose version of these.
const (
	magic          = "KEEPSLOT"
	version1       = 1
	kdfScrypt      = 1
	headerMACStart = 68  // the header MAC covers bytes [0, 68)
	headerCRCStart = 100 // the CRC-32 covers bytes [0, 100)
	headerSize     = 104
	tagSize        = sha256.Size
	footerSize     = 8 + tagSize
	saltSize       = 32
	ivSize         = aes.BlockSize

	// ChunkSize is the number of plaintext bytes each tag authenticates.
	ChunkSize = 1 << 20

	domainChunk  = 0x01
	domainFooter = 0x02
)

// Defaults for the scrypt cost of a new stream: the work N·r·p is 2^20, and
// scrypt holds 128·r·N bytes, 32 MiB, while it derives the key. Before 0.2.0
// they were log2 N 17, r 8, p 1: the same work, with 128 MiB; streams
// written so still open, since a stream's header carries its parameters.
const (
	DefaultLogN = 15
	defaultR    = 8
	defaultP    = 4
)

// DefaultMaxWork is the default cap on the scrypt work N·r·p a stream's
// header may ask for: 8 times the default cost (2^15·8·4), so the key
// derivation takes at most about 8 times as long as with the defaults. The
// cap bounds memory too (see [Options].MaxWork): at most 1.125 GiB by
// default.
const DefaultMaxWork uint64 = 8 * defaultWork

// defaultWork is N·r·p with the default parameters.
const defaultWork = (1 << DefaultLogN) * defaultR * defaultP

// Options set the scrypt cost of a Writer and the cap a Reader puts on it;
// nil or zero fields mean the defaults ([DefaultLogN] 15, r 8,
// p 4, MaxWork [DefaultMaxWork]), each on its own: LogN 17 alone
// is log2 N 17, r 8, p 4, four times the default work, and the cost of
// streams written before 0.2.0 is LogN 17 with P 1.
type Options struct {
	LogN uint8 // N = 2^LogN
	R, P int

	// MaxWork caps the scrypt work N·r·p that NewReader accepts from a
	// stream's header, and with it the memory: scrypt allocates
	// 128·r·(N+p+2) bytes, which may be at most 144·MaxWork (128·r·N for
	// the usual shapes, with room for p; this refuses only a large r with a
	// tiny N). Above the cap NewReader fails with
	// [ErrKDFTooExpensive] before deriving anything; 0 means
	// [DefaultMaxWork]. Raise it only for streams from a source you trust,
	// since a header alone makes the reader spend that work. NewWriter
	// ignores it: it refuses any cost above the default cap, so that every
	// stream it writes opens with the default cap.
	MaxWork uint64
}

type kdfParams struct {
	logN uint8
	r, p uint32
}

func (o *Options) params() (kdfParams, error) {
	kp := kdfParams{logN: DefaultLogN, r: defaultR, p: defaultP}
	if o != nil {
		if o.R < 0 || o.P < 0 {
			return kp, fmt.Errorf("cipher: negative scrypt parameter (R %d, P %d): use zero for the default", o.R, o.P)
		}
		if o.LogN != 0 {
			kp.logN = o.LogN
		}
		if o.R != 0 {
			kp.r = uint32(min(o.R, 1<<31))
		}
		if o.P != 0 {
			kp.p = uint32(min(o.P, 1<<31))
		}
	}
	if why := kp.overCap(DefaultMaxWork); why != "" {
		return kp, fmt.Errorf("%w: Options ask log2 N %d, r %d, p %d: %s; readers refuse that unless their Options.MaxWork is raised above DefaultMaxWork, so NewWriter does too: lower LogN, R or P",
			ErrKDFTooExpensive, kp.logN, kp.r, kp.p, why)
	}
	return kp, nil
}

// maxWork is the cap o sets for a reader.
func (o *Options) maxWork() uint64 {
	if o == nil || o.MaxWork == 0 {
		return DefaultMaxWork
	}
	return o.MaxWork
}

// work returns N·r·p; ok is false when it does not fit in 64 bits.
func (kp kdfParams) work() (w uint64, ok bool) {
	rp := uint64(kp.r) * uint64(kp.p) // both are 32 bits
	if kp.logN >= 64 || rp > math.MaxUint64>>kp.logN {
		return 0, false
	}
	return rp << kp.logN, true
}

// memory returns the bytes scrypt allocates, 128·r·(N+p+2) (V, B and XY
// in golang.org/x/crypto/scrypt); ok is false when that does not fit in
// 64 bits.
func (kp kdfParams) memory() (m uint64, ok bool) {
	if kp.logN >= 63 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(kp.r), 1<<kp.logN+uint64(kp.p)+2)
	if hi != 0 || lo > math.MaxUint64/128 {
		return 0, false
	}
	return 128 * lo, true
}

// maxMemory is the memory a cap on the work allows: 144 bytes per unit,
// saturating.
func maxMemory(maxWork uint64) uint64 {
	if maxWork > math.MaxUint64/144 {
		return math.MaxUint64
	}
	return 144 * maxWork
}

// overCap says why kp is above the cap that maxWork sets, or returns "" if
// it is not.
func (kp kdfParams) overCap(maxWork uint64) string {
	w, ok := kp.work()
	if !ok {
		return fmt.Sprintf("N·r·p is 2^64 or more, above the cap of %s", workString(maxWork))
	}
	if w > maxWork {
		return fmt.Sprintf("N·r·p = %s, above the cap of %s", workString(w), workString(maxWork))
	}
	m, ok := kp.memory()
	if !ok || m > maxMemory(maxWork) {
		need := "2^64 or more"
		if ok {
			need = fmt.Sprint(m)
		}
		return fmt.Sprintf("scrypt would allocate %s bytes (128·r·(N+p+2)), above the %d that the cap of %d on N·r·p allows (144 bytes each)",
			need, maxMemory(maxWork), maxWork)
	}
	return ""
}

// workString gives an amount of work N·r·p and how it compares with the
// default cost.
func workString(w uint64) string {
	if w%defaultWork == 0 {
		return fmt.Sprintf("%d (%d times the default cost)", w, w/defaultWork)
	}
	return fmt.Sprintf("%d (%.3g times the default cost)", w, float64(w)/defaultWork)
}

// check validates scrypt parameters read from a header against the cap on
// their work.
func (kp kdfParams) check(maxWork uint64) error {
	if kp.logN == 0 || kp.r == 0 || kp.p == 0 {
		return fmt.Errorf("%w: scrypt parameters must be non-zero (log2 N %d, r %d, p %d)", ErrCorrupt, kp.logN, kp.r, kp.p)
	}
	if why := kp.overCap(maxWork); why != "" {
		return fmt.Errorf("%w: the header asks log2 N %d, r %d, p %d: %s; if the stream comes from a source you trust, raise Options.MaxWork to open it",
			ErrKDFTooExpensive, kp.logN, kp.r, kp.p, why)
	}
	return nil
}

// keys holds what the password derives.
type keys struct {
	block  stdcipher.Block
	macKey [32]byte
}

func deriveKeys(password, salt []byte, kp kdfParams) (*keys, error) {
	dk, err := scrypt.Key(password, salt, 1<<kp.logN, int(kp.r), int(kp.p), 64)
	if err != nil {
		// scrypt refuses only parameters beyond what it can compute.
		return nil, fmt.Errorf("%w: scrypt cannot derive a key with log2 N %d, r %d, p %d: %v", ErrKDFTooExpensive, kp.logN, kp.r, kp.p, err)
	}
	defer clear(dk)
	// scrypt's buffer, 128·r·N bytes (32 MiB at the default cost), is
	// garbage now. The collector saw it live, so left to itself it would
	// let the heap grow to twice that before collecting again, and the
	// process's resident memory would follow for the whole backup or
	// restore. Collecting now, and giving the memory back, costs one
	// collection of a small heap; below 16 MiB it is not worth one.
	if 128*uint64(kp.r)<<kp.logN >= 16<<20 {
		debug.FreeOSMemory()
	}
	block, err := aes.NewCipher(dk[:32])
	if err != nil {
		return nil, fmt.Errorf("cipher: creating AES-256: %w", err)
	}
	k := &keys{block: block}
	copy(k.macKey[:], dk[32:])
	return k, nil
}

func (k *keys) newMAC() hash.Hash { return hmac.New(sha256.New, k.macKey[:]) }

// header is the parsed fixed-size header of a version 1 stream.
type header struct {
	kdf  kdfParams
	salt [saltSize]byte
	iv   [ivSize]byte
	mac  [tagSize]byte
}

// marshalUnsigned writes the header fields before the MAC into b[:headerMACStart].
func (h *header) marshalUnsigned(b []byte) {
	copy(b[0:8], magic)
	b[8] = version1
	b[9] = kdfScrypt
	b[10] = h.kdf.logN
	b[11] = 0
	binary.BigEndian.PutUint32(b[12:16], h.kdf.r)
	binary.BigEndian.PutUint32(b[16:20], h.kdf.p)
	copy(b[20:52], h.salt[:])
	copy(b[52:68], h.iv[:])
}

// seal computes the header MAC and CRC and returns the encoded header.
func (h *header) seal(k *keys) []byte {
	b := make([]byte, headerSize)
	h.marshalUnsigned(b)
	m := k.newMAC()
	m.Write(b[:headerMACStart])
	m.Sum(h.mac[:0])
	copy(b[headerMACStart:headerCRCStart], h.mac[:])
	binary.BigEndian.PutUint32(b[headerCRCStart:], crc32.ChecksumIEEE(b[:headerCRCStart]))
	return b
}

// parseHeader checks the structure of the header bytes available (b may be
// shorter than headerSize when the stream is truncated). It does not check
// the MAC, which needs the key.
func parseHeader(b []byte) (*header, error) {
	n := min(len(b), len(magic))
	if string(b[:n]) != magic[:n] || len(b) < len(magic) {
		return nil, fmt.Errorf("%w: not a keepslot cipher stream (bad magic)", ErrCorrupt)
	}
	if len(b) > 8 && b[8] != version1 {
		return nil, fmt.Errorf("%w: version %d, this package reads version %d; use a newer keepslot",
			ErrUnsupportedVersion, b[8], version1)
	}
	if len(b) < headerSize {
		return nil, fmt.Errorf("%w: truncated header (%d of %d bytes)", ErrCorrupt, len(b), headerSize)
	}
	if crc32.ChecksumIEEE(b[:headerCRCStart]) != binary.BigEndian.Uint32(b[headerCRCStart:headerSize]) {
		return nil, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	if b[9] != kdfScrypt {
		return nil, fmt.Errorf("%w: key-derivation function %d", ErrUnsupportedVersion, b[9])
	}
	if b[11] != 0 {
		return nil, fmt.Errorf("%w: reserved header byte is %d, want 0", ErrCorrupt, b[11])
	}
	h := &header{kdf: kdfParams{
		logN: b[10],
		r:    binary.BigEndian.Uint32(b[12:16]),
		p:    binary.BigEndian.Uint32(b[16:20]),
	}}
	copy(h.salt[:], b[20:52])
	copy(h.iv[:], b[52:68])
	copy(h.mac[:], b[headerMACStart:headerCRCStart])
	return h, nil
}

// verifyMAC reports whether the header MAC verifies under k.
func (h *header) verifyMAC(k *keys) bool {
	b := make([]byte, headerMACStart)
	h.marshalUnsigned(b)
	m := k.newMAC()
	m.Write(b)
	return hmac.Equal(m.Sum(nil), h.mac[:])
}

// numChunks is the number of chunks (and tags) for n bytes of plaintext with
// the given chunk size: at least one, so an empty stream has one empty chunk.
func numChunks(n, chunk int64) int64 {
	if n <= 0 {
		return 1
	}
	return (n-1)/chunk + 1
}

// Overhead returns how many bytes the format adds to a plaintext of n bytes
// (header, tag table, footer); the stream is n + Overhead(n) bytes long.
func Overhead(n int64) int64 {
	return headerSize + tagSize*numChunks(n, ChunkSize) + footerSize
}

// chunkTag computes the tag of chunk idx with ciphertext ct.
func chunkTag(m hash.Hash, hdrMAC *[tagSize]byte, idx uint64, final bool, ct []byte, out []byte) {
	var pre [1 + tagSize + 8 + 1]byte
	pre[0] = domainChunk
	copy(pre[1:], hdrMAC[:])
	binary.BigEndian.PutUint64(pre[1+tagSize:], idx)
	if final {
		pre[len(pre)-1] = 1
	}
	m.Reset()
	m.Write(pre[:])
	m.Write(ct)
	m.Sum(out[:0])
}

// footerMAC computes the footer MAC over the plaintext length and the tag table.
func footerMAC(m hash.Hash, hdrMAC *[tagSize]byte, length uint64, tags []byte) []byte {
	var pre [1 + tagSize + 8 + 8]byte
	pre[0] = domainFooter
	copy(pre[1:], hdrMAC[:])
	binary.BigEndian.PutUint64(pre[1+tagSize:], length)
	binary.BigEndian.PutUint64(pre[1+tagSize+8:], uint64(len(tags)/tagSize))
	m.Reset()
	m.Write(pre[:])
	m.Write(tags)
	return m.Sum(nil)
}

// counterAt returns the CTR counter block for byte offset off (a multiple of
// 16) of the keystream that starts at iv: iv + off/16 as a 128-bit big-endian
// integer, wrapping like openssl's aes-256-ctr.
func counterAt(iv *[ivSize]byte, off uint64) [ivSize]byte {
	hi := binary.BigEndian.Uint64(iv[0:8])
	lo := binary.BigEndian.Uint64(iv[8:16])
	add := off / aes.BlockSize
	nlo := lo + add
	if nlo < lo {
		hi++
	}
	var c [ivSize]byte
	binary.BigEndian.PutUint64(c[0:8], hi)
	binary.BigEndian.PutUint64(c[8:16], nlo)
	return c
}

// xorChunk encrypts or decrypts buf in place, buf being the chunk that starts
// at plaintext offset off.
func (k *keys) xorChunk(iv *[ivSize]byte, off uint64, buf []byte) {
	c := counterAt(iv, off)
	stdcipher.NewCTR(k.block, c[:]).XORKeyStream(buf, buf)
}
