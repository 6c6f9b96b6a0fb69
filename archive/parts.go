package archive

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// A tar entry needs its size before its bytes, so the tar writer holds each
// collection until it is complete. Compressing the archive as one stream
// would then leave all of the compression for the moments collections end,
// the last ones after every cursor is exhausted. Gzip members and zstd
// frames can instead be concatenated: the decompression of two streams
// written one after the other is the concatenation of what each holds, and
// gzip -d, tar xzf and every reader here read such a stream as one. So with
// a built-in gzip or zstd, the tar writer compresses each collection by
// itself, on the goroutine that reads it, while it is read, and writes
// every tar header as a small part of its own once the size is known. The
// decompressed stream is byte for byte the same tar.

// partCompression is implemented by compressions whose streams may be
// concatenated. newPart returns a writer of one part onto w that works on
// the calling goroutine only; Close ends the part and frees the writer, and
// must be called once.
type partCompression interface {
	newPart(w io.Writer) (io.WriteCloser, error)
}

// resetter is a compressing writer that can start over on another writer.
type resetter interface {
	io.WriteCloser
	Reset(w io.Writer)
}

// partPool keeps part writers of one kind, per compression level, for
// reuse: making one allocates its tables and windows.
type partPool[W resetter] struct {
	levels sync.Map // level -> *sync.Pool of W
	make   func(w io.Writer, level int) (W, error)
}

// get returns a writer of a part onto w, pooled again when it is closed.
func (p *partPool[W]) get(w io.Writer, level int) (io.WriteCloser, error) {
	v, _ := p.levels.LoadOrStore(level, &sync.Pool{})
	pool := v.(*sync.Pool)
	zw, ok := pool.Get().(W)
	if ok {
		zw.Reset(w)
	} else {
		var err error
		if zw, err = p.make(w, level); err != nil {
			return nil, err
		}
	}
	return &pooledPart{WriteCloser: zw, put: func() { pool.Put(zw) }}, nil
}

var gzipParts = partPool[*gzip.Writer]{make: func(w io.Writer, level int) (*gzip.Writer, error) {
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		return nil, fmt.Errorf("archive: gzip level %d: %w", level, err)
	}
	return zw, nil
}}

func (g gzipCompression) newPart(w io.Writer) (io.WriteCloser, error) {
	return gzipParts.get(w, g.level)
}

// zstdPartWindow is the window of the per-collection zstd encoders: with
// one encoder per collection being read, the default window (8 MiB at the
// default level) would take several times the memory of the rest of the
// pipeline, for a ratio within a percent of it on BSON.
const zstdPartWindow = 1 << 20

var zstdParts = partPool[*zstd.Encoder]{make: func(w io.Writer, level int) (*zstd.Encoder, error) {
	zw, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdPartWindow),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, fmt.Errorf("archive: zstd level %d: %w", level, err)
	}
	return zw, nil
}}

func (z zstdCompression) newPart(w io.Writer) (io.WriteCloser, error) {
	return zstdParts.get(w, z.level)
}

// pooledPart returns its writer to its pool when the part is closed.
type pooledPart struct {
	io.WriteCloser
	put func()
}

func (p *pooledPart) Close() error {
	err := p.WriteCloser.Close()
	p.put()
	return err
}
