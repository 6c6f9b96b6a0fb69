// Package cipher encrypts and authenticates a byte stream under a key derived
// from a password, in a format that stock openssl can still decrypt.
//
// A stream is AES-256 in CTR mode under a key derived with scrypt, followed by
// a table of HMAC-SHA256 tags, one per 1 MiB chunk, and a footer that
// authenticates the tag table and the plaintext length. The header carries the
// scrypt parameters, a fresh random salt and IV, and a MAC, so that a wrong
// password is told apart from a damaged file before any plaintext is produced.
// FORMAT.md in this directory specifies every byte and how to recover the
// plaintext with openssl alone.
//
// NewWriter encrypts as it is written to and finishes the stream on Close.
// Its memory use is a few chunks plus 32 bytes per MiB of plaintext for the
// tag table, whatever the length of the stream.
//
// NewReader needs an io.ReaderAt and the total size, because the tag table
// and footer come after the body: a caller holding a stream that cannot seek
// (a network download, a pipe) must spool it to a file first. NewReader checks
// the password, the footer and the tag table before it returns. Read then
// releases each chunk's plaintext only after that chunk has been
// authenticated, and Verify authenticates the whole stream without releasing
// any plaintext, for callers that must know everything is intact before they
// act on any of it. Since a stream's header sets the scrypt cost, NewReader
// refuses one that asks for more than Options.MaxWork (by default 8 times
// the default cost) before deriving anything.
//
// Errors are reported with the sentinels ErrWrongPassword, ErrCorrupt,
// ErrUnsupportedVersion, ErrEmptyPassword and ErrKDFTooExpensive; test them
// with errors.Is.
package cipher
