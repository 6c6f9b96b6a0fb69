package archive

import (
	"io"
	"time"
)

// Format is a pluggable archive format. Package archivetest checks an
// implementation.
type Format interface {
	Name() string      // "tar", "archive"
	Extension() string // ".tar", ".archive"
	// Match reports whether an uncompressed archive that starts with head
	// (its first HeadSize bytes, or all of it if shorter) is of this
	// format, so that Open can recognise it.
	Match(head []byte) bool
	// NewWriter starts an archive of the given collections (all known up
	// front) on w (already compressed by the caller).
	NewWriter(w io.Writer, h Header, opts *WriterOptions) (Writer, error)
	// NewReader reads an uncompressed archive of this format.
	NewReader(r io.Reader) (Reader, error)
}

// Header describes an archive as a whole. Every collection the archive will
// hold must be listed in Collections, once.
type Header struct {
	ToolVersion   string
	ServerVersion string
	Created       time.Time // zero means time.Now()
	Collections   []Collection
	// Node names the node that writes the archive; the tar format records
	// it in the manifest (Manifest.Node). May be empty.
	Node string
}

// WriterOptions tune a Writer. A nil *WriterOptions means the defaults.
type WriterOptions struct {
	// Spill is where and past how many bytes in memory the tar format
	// holds the collections it writes in temporary files.
	Spill Spill

	// SegmentSize bounds the segments of the archive format, in bytes:
	// each collection buffers up to this much before it writes a segment.
	// Default 1 MiB, maximum 16 MiB (a single larger document still makes a
	// segment of its own).
	SegmentSize int
}

// Defaults of Spill and WriterOptions.
const (
	DefaultSpillThreshold = 4 << 20
	DefaultSegmentSize    = 1 << 20
	MaxSegmentSize        = 16 << 20
)

func (o *WriterOptions) segmentSize() int {
	switch {
	case o == nil || o.SegmentSize <= 0:
		return DefaultSegmentSize
	case o.SegmentSize > MaxSegmentSize:
		return MaxSegmentSize
	}
	return o.SegmentSize
}

// Writer writes one archive. Collection may be called concurrently for
// different collections (the parallel dump); each CollectionWriter is used
// by one goroutine.
type Writer interface {
	Collection(c Collection) (CollectionWriter, error)
	Close() error        // writes what the format ends with (tar: manifest.json; archive: remaining EOF blocks)
	Manifest() *Manifest // valid after Close
}

// CollectionWriter receives the documents of one collection.
type CollectionWriter interface {
	WriteDocument(doc []byte) error // one raw BSON document; the writer copies it
	Close() error                   // the collection is complete
}

// Reader reads an archive back. Next advances to the next run of documents
// of one namespace: for tar one .bson entry, for the archive format one
// segment, so a namespace may come more than once. Its Collection
// (metadata) is complete when returned. Next returns io.EOF after the last
// run, once the archive's own integrity checks (CRC, manifest sha256 and
// counts) have passed. Documents of a run not read before Next are read,
// checked and skipped.
type Reader interface {
	Next() (*Collection, error)
	ReadDocument() ([]byte, error) // next raw document of the current run, in a new slice; io.EOF at its end
	Collections() []Collection     // every namespace seen so far (all of them after io.EOF)
	Manifest() *Manifest           // the archive's manifest (tar) or one built from what was read (archive) after io.EOF
}
