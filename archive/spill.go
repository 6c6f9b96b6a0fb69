package archive

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/keepslot/keepslot/internal/chunk"
)

// Spill is where a tar holds in temporary files what it cannot hold in
// memory: a tar entry needs its size up front, so a tar Writer holds each
// collection until it is complete, and a tar Reader with
// TarFormat.AllowMissingManifest holds oplog.bson until the end. Its zero
// value is the defaults.
type Spill struct {
	// Dir is where the temporary files go (mode 0600, removed once read,
	// on an error and on Close); "" = os.TempDir().
	Dir string

	// Threshold bounds the bytes held in memory: by a Writer across all
	// the collections being written at once, a collection whose next
	// document would take the total past it moving to a temporary file;
	// by a Reader, the oplog it holds. Default DefaultSpillThreshold (4
	// MiB): what a tar holds then stays within a few MiB whatever the size
	// of the data; a spilled collection costs a write and a read of its
	// compressed bytes, which the page cache usually serves.
	Threshold int64
}

// withDefaults fills in the defaults of s.
func (s Spill) withDefaults() Spill {
	if s.Threshold <= 0 {
		s.Threshold = DefaultSpillThreshold
	}
	return s
}

func (o *WriterOptions) spill() Spill {
	if o == nil {
		return Spill{}.withDefaults()
	}
	return o.Spill.withDefaults()
}

// spillBuf holds the bytes of a tar entry in memory while its Writer's
// budget (Spill.Threshold, shared by the open collections) allows, then in a
// temporary file.
type spillBuf struct {
	w    *tarWriter
	ns   string
	mem  chunkBuf
	file *os.File
	bw   *bufio.Writer
}

func (b *spillBuf) Write(p []byte) (int, error) {
	if b.file == nil {
		if b.w.hold(len(p)) {
			b.mem.Write(p)
			return len(p), nil
		}
		if err := b.spill(); err != nil {
			return 0, err
		}
	}
	if _, err := b.bw.Write(p); err != nil {
		return 0, fmt.Errorf("archive: spilling %s to %s: %w", b.ns, b.file.Name(), err)
	}
	return len(p), nil
}

// hold reserves n bytes of the Writer's memory budget, and reports whether
// there were that many left.
func (w *tarWriter) hold(n int) bool {
	if w.inMem.Add(int64(n)) <= w.threshold {
		return true
	}
	w.inMem.Add(-int64(n))
	return false
}

// dropMem empties the in-memory buffer and gives its bytes back to the
// Writer's budget.
func (b *spillBuf) dropMem() {
	b.w.inMem.Add(-int64(b.mem.Len()))
	b.mem.Reset()
}

// spill moves the in-memory buffer to a new temporary file.
func (b *spillBuf) spill() error {
	f, err := os.CreateTemp(b.w.dir, spillPattern) // mode 0600
	if err != nil {
		return fmt.Errorf("archive: collection %s exceeds the %d-byte spill threshold and no temporary file could be created (set WriterOptions.Spill.Dir to a writable directory with free space): %w", b.ns, b.w.threshold, err)
	}
	b.file = f
	b.bw = bufio.NewWriterSize(f, 256<<10)
	if _, err := b.mem.WriteTo(b.bw); err != nil {
		return fmt.Errorf("archive: spilling %s to %s: %w", b.ns, f.Name(), err)
	}
	b.dropMem()
	return nil
}

// finish makes what was written ready to be read by writeTo.
func (b *spillBuf) finish() error {
	if b.file == nil {
		return nil
	}
	if err := b.bw.Flush(); err != nil {
		return fmt.Errorf("archive: spilling %s to %s: %w", b.ns, b.file.Name(), err)
	}
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("archive: rewinding spill file of %s: %w", b.ns, err)
	}
	return nil
}

// writeTo copies what was written to dst, the entry called name.
func (b *spillBuf) writeTo(dst io.Writer, name string) error {
	var err error
	if b.file != nil {
		buf := chunk.Get()
		_, err = io.CopyBuffer(dst, onlyReader{b.file}, buf.B[:chunk.Size])
		buf.Release()
	} else {
		_, err = b.mem.WriteTo(dst)
	}
	if err != nil {
		return fmt.Errorf("archive: writing tar entry %s: %w", name, err)
	}
	return nil
}

// discard drops the buffered data and removes the temporary file.
func (b *spillBuf) discard() {
	b.dropMem()
	if b.file != nil {
		b.file.Close()
		os.Remove(b.file.Name())
		b.file = nil
	}
}

// onlyReader hides an *os.File's WriterTo and ReaderFrom, so that
// io.CopyBuffer uses the given buffer.
type onlyReader struct{ io.Reader }
