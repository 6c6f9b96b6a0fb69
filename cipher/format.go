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

// Defaults for the scrypt cost.
const (
	DefaultLogN = 17
	DefaultR    = 8
	DefaultP    = 1
)

// Options set the scrypt cost; nil or zero fields mean the defaults (LogN 17,
// R 8, P 1). Values above the safety cap are refused with ErrKDFTooExpensive,
// since no reader would accept them.
type Options struct {
	LogN uint8 // N = 2^LogN
	R, P int
}

// kdfLimits is the safety cap on scrypt parameters read from a header.
type kdfLimits struct {
	maxLogN uint8
	maxMem  uint64 // 128 * r * N bytes
	maxP    uint32
}

var defaultLimits = kdfLimits{maxLogN: 22, maxMem: 1 << 30, maxP: 16}

type kdfParams struct {
	logN uint8
	r, p uint32
}

func (o *Options) params() (kdfParams, error) {
	kp := kdfParams{logN: DefaultLogN, r: DefaultR, p: DefaultP}
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
	return kp, kp.check(defaultLimits)
}

// check validates scrypt parameters against the limits.
func (kp kdfParams) check(l kdfLimits) error {
	if kp.logN == 0 || kp.r == 0 || kp.p == 0 {
		return fmt.Errorf("%w: scrypt parameters must be non-zero (log2 N %d, r %d, p %d)", ErrCorrupt, kp.logN, kp.r, kp.p)
	}
	if kp.logN > l.maxLogN || kp.p > l.maxP || kp.logN >= 40 || uint64(kp.r) > l.maxMem>>(7+kp.logN) {
		return fmt.Errorf("%w: log2 N %d, r %d, p %d; the cap is log2 N <= %d, 128*r*N <= %d bytes, p <= %d",
			ErrKDFTooExpensive, kp.logN, kp.r, kp.p, l.maxLogN, l.maxMem, l.maxP)
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
		return nil, fmt.Errorf("cipher: deriving the key with scrypt: %w", err)
	}
	defer clear(dk)
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
