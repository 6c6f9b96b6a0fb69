package archive

import (
	"bytes"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is a pluggable compressor. Package archivetest checks an
// implementation.
type Compression interface {
	Name() string      // "gzip", "zstd", "none"
	Extension() string // ".gz", ".zst", ""
	// Match reports whether a stream that starts with head (its first
	// HeadSize bytes, or all of it if shorter) was written by this
	// compression, usually by its magic number, so that Open can
	// recognise it.
	Match(head []byte) bool
	NewWriter(w io.Writer) (io.WriteCloser, error)
	NewReader(r io.Reader) (io.ReadCloser, error)
}

// The built-in compressions are [NewGzip], [NewSerialGzip], [NewZstd] and
// [NoCompression]. Gzip compresses 1 MiB blocks on all cores
// (klauspost/pgzip) and writes a standard gzip stream that `tar xzf` and
// `mongorestore --gzip` read. Closing a writer flushes it but never closes
// the underlying io.Writer.

// Default compression levels of gzip and zstd.
const (
	// DefaultGzipLevel is the lowest level of klauspost/compress whose
	// output is within 5% of the standard library's level 6 (which
	// mongodump --gzip writes) on application data; Dump and package slot
	// default to it.
	DefaultGzipLevel = 7
	DefaultZstdLevel = 3 // zstd's "default" speed
)

// NewGzip returns a parallel gzip compression at level (1, fastest, to 9,
// smallest; -2 for Huffman only, klauspost/compress's -3 for constant
// time). Its writer spreads blocks of 1 MiB over GOMAXPROCS cores.
func NewGzip(level int) Compression { return gzipCompression{level: level} }

// NewSerialGzip returns a single-goroutine gzip compression at level, from
// klauspost/compress/gzip. It is the slower one on two cores (see the
// package benchmarks) and is kept for comparison and for single-core hosts.
func NewSerialGzip(level int) Compression { return gzipCompression{level: level, serial: true} }

// NewZstd returns a zstd compression at level (1 fastest, 3 default, 4 best
// speed/ratio trade-off, up to 11 and beyond mapped to zstd's best),
// encoding on GOMAXPROCS goroutines.
func NewZstd(level int) Compression { return zstdCompression{level: level} }

type gzipCompression struct {
	level  int
	serial bool
}

func (gzipCompression) Name() string           { return "gzip" }
func (gzipCompression) Extension() string      { return ".gz" }
func (gzipCompression) Match(head []byte) bool { return bytes.HasPrefix(head, gzipMagic) }

func (g gzipCompression) NewWriter(w io.Writer) (io.WriteCloser, error) {
	if g.serial {
		zw, err := gzip.NewWriterLevel(w, g.level)
		if err != nil {
			return nil, fmt.Errorf("archive: gzip level %d: %w", g.level, err)
		}
		return zw, nil
	}
	zw, err := pgzip.NewWriterLevel(w, g.level)
	if err != nil {
		return nil, fmt.Errorf("archive: gzip level %d: %w", g.level, err)
	}
	if err := zw.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
		return nil, fmt.Errorf("archive: gzip concurrency: %w", err)
	}
	return zw, nil
}

func (gzipCompression) NewReader(r io.Reader) (io.ReadCloser, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: gzip header: %w", ErrCorrupt, err)
	}
	return &errMapReader{r: zr, c: zr, what: "gzip"}, nil
}

type zstdCompression struct{ level int }

func (zstdCompression) Name() string           { return "zstd" }
func (zstdCompression) Extension() string      { return ".zst" }
func (zstdCompression) Match(head []byte) bool { return bytes.HasPrefix(head, zstdMagic) }

func (z zstdCompression) NewWriter(w io.Writer) (io.WriteCloser, error) {
	zw, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(z.level)),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, fmt.Errorf("archive: zstd level %d: %w", z.level, err)
	}
	return zw, nil
}

// maxZstdWindow bounds the decoder's memory on hostile input; encoders at
// every standard level use windows well below it.
const maxZstdWindow = 128 << 20

func (zstdCompression) NewReader(r io.Reader) (io.ReadCloser, error) {
	// Concurrency 1 decodes synchronously: no goroutines that a reader
	// abandoned without Close would leak.
	zr, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(1<<40))
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	return &errMapReader{r: zr, c: closerFunc(func() error { zr.Close(); return nil }), what: "zstd"}, nil
}

// NoCompression is the Compression that leaves the stream as it is.
type NoCompression struct{}

// Name returns "none".
func (NoCompression) Name() string { return "none" }

// Extension returns "".
func (NoCompression) Extension() string { return "" }

// Match is true for any input: no compression is what is left when no
// other compression matches.
func (NoCompression) Match([]byte) bool { return true }

// NewWriter returns w, with a Close that does nothing.
func (NoCompression) NewWriter(w io.Writer) (io.WriteCloser, error) {
	return nopWriteCloser{w}, nil
}

// NewReader returns r, with a Close that does nothing.
func (NoCompression) NewReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(r), nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// errMapReader marks decompression errors (bad checksums, malformed
// blocks, a stream cut short) as ErrCorrupt.
type errMapReader struct {
	r    io.Reader
	c    io.Closer
	what string
}

func (e *errMapReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %s stream: %w", ErrCorrupt, e.what, err)
	}
	return n, err
}

func (e *errMapReader) Close() error { return e.c.Close() }

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)
