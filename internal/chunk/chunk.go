// Package chunk is the buffer that the backup pipeline hands along: the
// archive writers buffer documents in chunks, the cipher seals its stream
// one chunk at a time, and a store hashes and writes the chunks the cipher
// gives it without copying them. One pool serves the three, so a chunk the
// archive is done with is the next one the cipher fills.
//
// A chunk is reference-counted: whoever holds a reference may read B, the
// holder of the only reference may also write it, and the last Release
// returns the chunk to the pool.
//
// The chunks' memory lies outside the Go heap where the system allows it
// (an anonymous mapping each, on Linux and the BSDs, without the race
// detector): the collector lets the heap grow to twice what it holds live
// before it collects again, and the chunks, a backup's largest live
// memory, would have their size added again as headroom. A released chunk
// is kept for the next Get, up to maxFree of them; Trim gives those back.
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

// free holds released chunks for reuse.
var free struct {
	sync.Mutex
	list []*Chunk
}

// maxFree is how many released chunks are kept for reuse: more than a
// backup holds at once (TestChunksBounded), so that a running pipeline
// never maps and unmaps.
const maxFree = 16

// inUse counts the chunks taken by Get and not yet back in the pool; peak
// is the most it has been since the last ResetPeak.
var inUse, peak atomic.Int64

// Get returns an empty chunk with one reference, the caller's.
func Get() *Chunk {
	var c *Chunk
	free.Lock()
	if n := len(free.list); n > 0 {
		c = free.list[n-1]
		free.list[n-1] = nil
		free.list = free.list[:n-1]
	}
	free.Unlock()
	if c == nil {
		c = &Chunk{B: alloc()}
	}
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
	free.Lock()
	if len(free.list) < maxFree {
		free.list = append(free.list, c)
		free.Unlock()
		return true
	}
	free.Unlock()
	dealloc(c.B)
	c.B = nil
	return true
}

// Trim gives the memory of the chunks kept for reuse back to the system,
// for when the pipeline has stopped (a Slot calls it when a backup ends).
func Trim() {
	free.Lock()
	list := free.list
	free.list = nil
	free.Unlock()
	for _, c := range list {
		dealloc(c.B)
		c.B = nil
	}
}

// Sink is implemented by writers that can take a chunk instead of copying
// bytes out of it (a store's pending write does).
type Sink interface {
	// WriteChunk writes c.B as Write would, and takes over the caller's
	// reference to c: the Sink releases it when it is done with it, also
	// when WriteChunk fails.
	WriteChunk(c *Chunk) error
}
