package archive

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxTrailing bounds what may follow the end of a tar archive (its
// zero-block trailer and record padding) before the compressed stream ends.
const maxTrailing = 1 << 20

// HeadSize is how many leading bytes Match methods are shown: of the
// stream for a Compression, of the decompressed stream for a Format.
const HeadSize = 512

// The formats and compressions Open recognises, in the order they are
// tried. NoCompression matches anything and so comes last.
var (
	builtinFormats      = []Format{TarFormat{}, ArchiveFormat{}}
	builtinCompressions = []Compression{NewGzip(DefaultGzipLevel), NewZstd(DefaultZstdLevel), NoCompression{}}
)

// OpenOptions tune Open. A nil *OpenOptions means the defaults.
type OpenOptions struct {
	// Formats and Compressions are recognised besides the built-in ones
	// (an embedder's own, such as an s2 Compression), tried by their Match
	// methods before them. A built-in format given here with other
	// settings, such as a TarFormat with AllowMissingManifest, takes the
	// place of the default one.
	Formats      []Format
	Compressions []Compression
}

// Open detects compression (gzip, zstd, none, or one of opts) and format
// (tar, archive magic, or one of opts) from the first bytes of r and
// returns a Reader for it. Tar archives must carry the manifest.json that
// this package writes, unless read with TarFormat.AllowMissingManifest.
// When the Reader's Next returns io.EOF, the compressed stream has also
// been read to its end and its own checksum verified.
func Open(r io.Reader, opts *OpenOptions) (Reader, error) {
	var o OpenOptions
	if opts != nil {
		o = *opts
	}
	rd, _, _, err := detect(r, o.Formats, o.Compressions)
	return rd, err
}

func detect(r io.Reader, formats []Format, compressions []Compression) (Reader, Format, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(HeadSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, nil, nil, err
	}
	comp := match(head, compressions, builtinCompressions)
	if comp == nil {
		return nil, nil, nil, unknown("the input matches none of the compressions")
	}
	dr, err := comp.NewReader(br)
	if err != nil {
		return nil, nil, comp, err
	}
	inner := bufio.NewReaderSize(dr, 64<<10)
	head, peekErr := inner.Peek(HeadSize)
	f := match(head, formats, builtinFormats)
	if f == nil {
		dr.Close()
		if peekErr != nil && !errors.Is(peekErr, io.EOF) {
			return nil, nil, comp, peekErr
		}
		return nil, nil, comp, unknown("after " + comp.Name() + " decompression the input is neither a tar nor a mongodump archive")
	}
	fr, err := f.NewReader(inner)
	if err != nil {
		dr.Close()
		return nil, f, comp, err
	}
	return &openedReader{Reader: fr, tail: inner, closer: dr}, f, comp, nil
}

// match returns the first of extra, then builtin, whose Match accepts head.
func match[T interface{ Match([]byte) bool }](head []byte, extra, builtin []T) T {
	for _, list := range [][]T{extra, builtin} {
		for _, c := range list {
			if c.Match(head) {
				return c
			}
		}
	}
	var none T
	return none
}

func unknown(what string) error {
	return fmt.Errorf("%w: %s; if it was written with a format or compression of your own, pass it to Open in OpenOptions (restore.Options.Formats, .Compressions)", ErrUnknownFormat, what)
}

// openedReader reads the decompressed stream to its end (verifying the
// compression's checksum) once the format reader is done. It implements
// io.Closer, for a caller that gives up before the end: see Close.
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
			err = truncated(derr, at("end of compressed stream"))
		case n > maxTrailing:
			err = fmt.Errorf("%w: more than %d bytes follow the end of the archive", ErrCorrupt, maxTrailing)
		}
	}
	o.closer.Close()
	o.err = err
	return nil, err
}

// Close releases what the Reader holds before it has returned io.EOF or an
// error: the decompressor, and the format reader's temporary files (a tar
// read with TarFormat.AllowMissingManifest may hold its oplog.bson in one).
// It is not needed after io.EOF or an error, but harmless. Next and
// ReadDocument fail after Close.
func (o *openedReader) Close() error {
	var err error
	if c, ok := o.Reader.(io.Closer); ok {
		err = c.Close()
	}
	if o.err == nil {
		o.closer.Close()
		o.err = errReaderClosed
	}
	return err
}

func (o *openedReader) skipped() []SkippedEntry { return Skipped(o.Reader) }
