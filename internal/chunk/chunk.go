// Package chunk is the buffer that the backup pipeline hands along: the
// archive writers buffer documents in chunks, the cipher seals its stream
// one chunk at a time, and a store hashes and writes the chunks the cipher
// gives it without copying them. One pool serves the three, so a chunk the
// archive is done with is the next one the cipher fills.
//
// A chunk is reference-counted: whoever holds a reference may read B, the
// holder of the only reference may also write it, and the last Release
// returns the chunk to the pool.
package chunk

import (
	"sync"
	"sync/atomic"
)

// Size is the capacity of every chunk, 1 MiB: the cipher's chunk size.
const Size = 1 << 20

// Chunk is a pooled buffer of Size bytes.
type Chunk struct {
	// B holds the chunk's bytes: len(B) are in use, cap(B) is Size.
	B    []byte
	refs atomic.Int32
}

var pool = sync.Pool{New: func() any { return &Chunk{B: make([]byte, 0, Size)} }}

// inUse counts the chunks taken by Get and not yet back in the pool; peak
// is the most it has been since the last ResetPeak.
var inUse, peak atomic.Int64

// Get returns an empty chunk with one reference, the caller's.
func Get() *Chunk {
	c := pool.Get().(*Chunk)
	c.B = c.B[:0]
	c.refs.Store(1)
	n := inUse.Add(1)
	for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
	}
	return c
}

// InUse returns the number of chunks taken and not yet returned: the
// pipeline's memory, Size bytes each.
func InUse() int64 { return inUse.Load() }

// Peak returns the highest InUse since the last ResetPeak.
func Peak() int64 { return peak.Load() }

// ResetPeak starts Peak over from InUse.
func ResetPeak() { peak.Store(inUse.Load()) }

// Hold adds n references, for n more readers of the chunk.
func (c *Chunk) Hold(n int) { c.refs.Add(int32(n)) }

// Release drops one reference and reports whether it was the last one, in
// which case the chunk went back to the pool and must not be used again.
func (c *Chunk) Release() bool {
	switch n := c.refs.Add(-1); {
	case n > 0:
		return false
	case n < 0:
		panic("chunk: Release of a chunk with no references")
	}
	inUse.Add(-1)
	pool.Put(c)
	return true
}

// Sink is implemented by writers that can take a chunk instead of copying
// bytes out of it (a store's pending write does).
type Sink interface {
	// WriteChunk writes c.B as Write would, and takes over the caller's
	// reference to c: the Sink releases it when it is done with it, also
	// when WriteChunk fails.
	WriteChunk(c *Chunk) error
}
