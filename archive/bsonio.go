package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

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

// position says where in an archive a reader is, for its error messages.
// It is formatted only when there is an error to report, so that reading a
// document costs no string.
type position struct {
	what, name string // "tar entry " and "dump/db/c.bson", "segment of " and "db.c"...
	doc        int64  // index of the document in it; -1 when not about one
}

func at(what string) position { return position{what: what, doc: -1} }

func (p position) String() string {
	if p.doc < 0 {
		return p.what + p.name
	}
	return p.what + p.name + ", document " + strconv.FormatInt(p.doc, 10)
}

// readLength reads a 4-byte little-endian length into b, the reader's own
// scratch space (a local array would escape to the heap on every call).
// A clean end of input before any byte of it is io.EOF; a partial length
// is ErrCorrupt.
func readLength(r io.Reader, b *[4]byte, where position) (uint32, error) {
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
func readDocumentBody(r io.Reader, n uint32, where position) ([]byte, error) {
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
func truncated(err error, where position) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: input ends in the middle of a document", ErrCorrupt, where)
	}
	if errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%w (%s)", err, where)
	}
	return fmt.Errorf("archive: %s: %w", where, err)
}
