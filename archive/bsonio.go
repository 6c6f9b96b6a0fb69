package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// terminator ends a block of the archive format; it is no valid BSON length.
const terminator = 0xffffffff

// checkDocument checks the framing of a document handed to a writer: its
// length prefix must match len(doc), lie in range and the last byte be 0.
func checkDocument(doc []byte) error {
	if len(doc) < 5 {
		return fmt.Errorf("%w: document of %d bytes is shorter than the 5-byte minimum", ErrTooLarge, len(doc))
	}
	if len(doc) > MaxDocumentSize {
		return fmt.Errorf("%w: document of %d bytes is above the %d-byte limit", ErrTooLarge, len(doc), MaxDocumentSize)
	}
	if n := binary.LittleEndian.Uint32(doc); int64(n) != int64(len(doc)) || doc[len(doc)-1] != 0 {
		return fmt.Errorf("archive: document is not one BSON document (length prefix %d, %d bytes given)", n, len(doc))
	}
	return nil
}

// readLength reads a 4-byte little-endian length. atStart reports a clean
// end of input before any byte of it (io.EOF); a partial length is
// ErrCorrupt.
func readLength(r io.Reader, where string) (uint32, error) {
	var b [4]byte
	n, err := io.ReadFull(r, b[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, truncated(err, where)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// readDocumentBody reads the rest of a document whose length prefix n has
// been read, checks it and returns it in a new slice.
func readDocumentBody(r io.Reader, n uint32, where string) ([]byte, error) {
	if n < 5 || n > MaxDocumentSize {
		return nil, fmt.Errorf("%w: %w: %s: BSON length %d is outside 5..%d", ErrCorrupt, ErrTooLarge, where, n, MaxDocumentSize)
	}
	doc := make([]byte, n)
	binary.LittleEndian.PutUint32(doc, n)
	if _, err := io.ReadFull(r, doc[4:]); err != nil {
		return nil, truncated(err, where)
	}
	if err := bson.Raw(doc).Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: invalid BSON document: %w", ErrCorrupt, where, err)
	}
	return doc, nil
}

// truncated wraps a read error: an early end of input is ErrCorrupt, other
// errors (already typed by the decompressor, or I/O errors) keep their type.
func truncated(err error, where string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: input ends in the middle of a document", ErrCorrupt, where)
	}
	return fmt.Errorf("archive: %s: %w", where, err)
}
