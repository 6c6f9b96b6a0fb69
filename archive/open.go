package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxTrailing bounds what may follow the end of a tar archive (its
// zero-block trailer and record padding) before the compressed stream ends.
const maxTrailing = 1 << 20

// Open detects compression (gzip, zstd, none) and format (tar, archive
// magic) from the first bytes of r and returns a Reader for it. Tar
// archives must carry the manifest.json that this package writes. When the
// Reader's Next returns io.EOF, the compressed stream has also been read to
// its end and its own checksum verified.
func Open(r io.Reader) (Reader, error) {
	rd, _, _, err := Detect(r)
	return rd, err
}

// Detect is Open but also tells what it found.
func Detect(r io.Reader) (Reader, Format, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	comp := detectCompression(br)
	dr, err := comp.NewReader(br)
	if err != nil {
		return nil, nil, comp, err
	}
	inner := bufio.NewReaderSize(dr, 64<<10)
	head, peekErr := inner.Peek(512)
	var f Format
	switch {
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == archiveMagic:
		f = MongoArchive
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		f = Tar
	default:
		dr.Close()
		if peekErr != nil && !errors.Is(peekErr, io.EOF) {
			return nil, nil, comp, peekErr
		}
		return nil, nil, comp, fmt.Errorf("%w: after %s decompression the input is neither a tar nor a mongodump archive", ErrUnknownFormat, comp.Name())
	}
	fr, err := f.NewReader(inner)
	if err != nil {
		dr.Close()
		return nil, f, comp, err
	}
	return &openedReader{Reader: fr, tail: inner, closer: dr}, f, comp, nil
}

// openedReader reads the decompressed stream to its end (verifying the
// compression's checksum) once the format reader is done.
type openedReader struct {
	Reader
	tail   io.Reader
	closer io.Closer
	err    error
}

func (o *openedReader) Next() (*Collection, error) {
	if o.err != nil {
		return nil, o.err
	}
	c, err := o.Reader.Next()
	if err == nil {
		return c, nil
	}
	if err == io.EOF {
		n, derr := io.Copy(io.Discard, io.LimitReader(o.tail, maxTrailing+1))
		switch {
		case derr != nil:
			err = truncated(derr, "end of compressed stream")
		case n > maxTrailing:
			err = fmt.Errorf("%w: more than %d bytes follow the end of the archive", ErrCorrupt, maxTrailing)
		}
	}
	o.closer.Close()
	o.err = err
	return nil, err
}
