package cipher

import (
	"errors"

	"github.com/keepslot/keepslot/errcode"
)

// Errors a user can cause. Each carries its [errcode.Code].
var (
	// ErrWrongPassword means the header is intact but its MAC does not verify
	// under the key derived from the password given.
	ErrWrongPassword = errcode.New(errcode.WrongPassword, "cipher: wrong password")

	// ErrCorrupt means the stream is damaged or was tampered with: a bad
	// magic, a failed checksum or MAC, a truncation, reordered chunks or
	// trailing bytes. No plaintext from the damaged part is released.
	ErrCorrupt = errcode.New(errcode.Corrupt, "cipher: stream is corrupt")

	// ErrUnsupportedVersion means the stream was written in a format version
	// or with a key-derivation function this package does not know.
	ErrUnsupportedVersion = errcode.New(errcode.Corrupt, "cipher: unsupported format version")

	// ErrEmptyPassword means an empty password was given.
	ErrEmptyPassword = errcode.New(errcode.EmptyPassword, "cipher: empty password")

	// ErrKDFTooExpensive means the scrypt parameters (from Options or from a
	// stream's header) ask for more work N·r·p, or more memory, than the
	// cap allows: [Options].MaxWork for a reader, [DefaultMaxWork] (8 times
	// the default cost) for a writer and by default.
	ErrKDFTooExpensive = errcode.New(errcode.Invalid, "cipher: scrypt parameters above the safety cap")

	errClosed  = errors.New("cipher: write to a closed Writer")
	errAborted = errors.New("cipher: the Writer was aborted; what it wrote is not a valid stream")
)
