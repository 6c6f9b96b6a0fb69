package cipher

import (
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"

	"golang.org/x/crypto/scrypt"
)

// Key is what scrypt derives from a password with one salt and cost. Where
// NewWriter derives a key for each stream, a Key pays scrypt once and then
// encrypts any number of streams ([Key.NewWriter]), each under a fresh
// random IV: for a process that writes often, such as package pitr's
// oplog slices. The streams are in the same format as NewWriter's and
// NewReader opens them with the password. A [Keyring] opens them all with
// one derivation.
//
// A Key is as secret as the password for the streams written under it,
// but no more: it reveals neither the password nor the key of any stream
// with another salt (a backup, say). [Key.MarshalBinary] gives its bytes
// for a file that stands in for a password file; keep it 0600.
type Key struct {
	kp   kdfParams
	salt [saltSize]byte
	dk   [64]byte
	k    *keys
}

// NewKey derives a Key from password with a fresh random salt and the
// scrypt cost of opts (nil for the defaults), as NewWriter would for one
// stream.
func NewKey(password []byte, opts *Options) (*Key, error) {
	if len(password) == 0 {
		return nil, fmt.Errorf("%w: refusing to derive a key without a password", ErrEmptyPassword)
	}
	kp, err := opts.params()
	if err != nil {
		return nil, err
	}
	k := &Key{kp: kp}
	if _, err := rand.Read(k.salt[:]); err != nil {
		return nil, fmt.Errorf("cipher: reading random salt: %w", err)
	}
	dk, err := scrypt.Key(password, k.salt[:], 1<<kp.logN, int(kp.r), int(kp.p), len(k.dk))
	if err != nil {
		return nil, fmt.Errorf("%w: scrypt cannot derive a key with log2 N %d, r %d, p %d: %v", ErrKDFTooExpensive, kp.logN, kp.r, kp.p, err)
	}
	copy(k.dk[:], dk)
	clear(dk)
	if k.k, err = keysOf(k.dk[:]); err != nil {
		return nil, err
	}
	return k, nil
}

// keysOf splits a derived key into the AES and MAC keys.
func keysOf(dk []byte) (*keys, error) {
	block, err := aes.NewCipher(dk[:32])
	if err != nil {
		return nil, fmt.Errorf("cipher: creating AES-256: %w", err)
	}
	k := &keys{block: block}
	copy(k.macKey[:], dk[32:64])
	return k, nil
}

// NewWriter is [NewWriter] under k: the stream gets k's salt and cost and
// a fresh random IV, and no key is derived.
func (k *Key) NewWriter(dst io.Writer) (*Writer, error) {
	var iv [ivSize]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return nil, fmt.Errorf("cipher: reading random IV: %w", err)
	}
	return newWriterKeys(dst, k.k, k.kp, k.salt, iv, ChunkSize)
}

// The encoding of a Key: keyMagic, log2 N, r, p, the salt, the derived
// key, and a CRC-32 (IEEE) of what precedes it.
const (
	keyMagic = "KEEPSLOT-KEY1"
	keyLen   = len(keyMagic) + 1 + 4 + 4 + saltSize + 64 + 4
)

// MarshalBinary encodes k, secret as it is: store it as a password is
// stored (a 0600 file).
func (k *Key) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, keyLen)
	b = append(b, keyMagic...)
	b = append(b, k.kp.logN)
	b = binary.BigEndian.AppendUint32(b, k.kp.r)
	b = binary.BigEndian.AppendUint32(b, k.kp.p)
	b = append(b, k.salt[:]...)
	b = append(b, k.dk[:]...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// UnmarshalBinary decodes what MarshalBinary encodes; anything else fails
// with ErrCorrupt.
func (k *Key) UnmarshalBinary(b []byte) error {
	if len(b) != keyLen || string(b[:len(keyMagic)]) != keyMagic {
		return fmt.Errorf("%w: not a keepslot key (%d bytes; a key is %d bytes starting %q)", ErrCorrupt, len(b), keyLen, keyMagic)
	}
	if crc32.ChecksumIEEE(b[:keyLen-4]) != binary.BigEndian.Uint32(b[keyLen-4:]) {
		return fmt.Errorf("%w: the key's checksum does not match: it was damaged", ErrCorrupt)
	}
	p := b[len(keyMagic):]
	kp := kdfParams{logN: p[0], r: binary.BigEndian.Uint32(p[1:5]), p: binary.BigEndian.Uint32(p[5:9])}
	if why := kp.overCap(DefaultMaxWork); why != "" || kp.logN == 0 || kp.r == 0 || kp.p == 0 {
		return fmt.Errorf("%w: the key records log2 N %d, r %d, p %d, which no writer uses", ErrCorrupt, kp.logN, kp.r, kp.p)
	}
	var nk Key
	nk.kp = kp
	copy(nk.salt[:], p[9:9+saltSize])
	copy(nk.dk[:], p[9+saltSize:9+saltSize+64])
	var err error
	if nk.k, err = keysOf(nk.dk[:]); err != nil {
		return err
	}
	*k = nk
	return nil
}

// Keyring opens the streams of one password, deriving the key of each salt
// and cost once: the streams of a [Key] cost one derivation in all. It is
// safe for concurrent use.
type Keyring struct {
	password []byte
	maxWork  uint64

	mu   sync.Mutex
	keys map[keyID]*keys
}

// keyID names a salt and cost.
type keyID struct {
	kp   kdfParams
	salt [saltSize]byte
}

// NewKeyring returns a Keyring for password; of opts only MaxWork is used,
// as by NewReader.
func NewKeyring(password []byte, opts *Options) *Keyring {
	return &Keyring{password: append([]byte(nil), password...), maxWork: opts.maxWork(), keys: map[keyID]*keys{}}
}

// NewReader is [NewReader] with the keyring's password, deriving the key
// only for a salt and cost it has not met.
func (r *Keyring) NewReader(src io.ReaderAt, size int64) (*Reader, error) {
	return newReader(src, size, r.password, r.maxWork, ChunkSize, r.derive)
}

func (r *Keyring) derive(password, salt []byte, kp kdfParams) (*keys, error) {
	id := keyID{kp: kp}
	copy(id.salt[:], salt)
	r.mu.Lock()
	defer r.mu.Unlock() // one derivation at a time: concurrent readers of one salt wait for it
	if k, ok := r.keys[id]; ok {
		return k, nil
	}
	k, err := deriveKeys(password, salt, kp)
	if err != nil {
		return nil, err
	}
	r.keys[id] = k
	return k, nil
}

// NewReader opens a stream written under k ([Key.NewWriter]) without the
// password: for a process that holds only the Key, such as package pitr's
// slicer checking the slices it wrote. A stream with another salt or cost
// fails with ErrWrongPassword; one that fails authentication with
// ErrCorrupt.
func (k *Key) NewReader(src io.ReaderAt, size int64) (*Reader, error) {
	return newReader(src, size, []byte("key"), math.MaxUint64, ChunkSize, func(_, salt []byte, kp kdfParams) (*keys, error) {
		if kp != k.kp || string(salt) != string(k.salt[:]) {
			return nil, fmt.Errorf("%w: the stream was not written under this key", ErrWrongPassword)
		}
		return k.k, nil
	})
}
