//go:build (linux || darwin || freebsd || netbsd || openbsd) && !race

package chunk

import (
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestOffHeap: chunks take no memory of the Go heap, so that the
// collector's headroom, a multiple of the heap, does not grow with them.
func TestOffHeap(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	Trim()
	before := heap()
	var held []*Chunk
	for range 8 {
		c := Get()
		c.B = c.B[:Size]
		clear(c.B)
		held = append(held, c)
	}
	after := heap()
	assert.Less(t, after-min(before, after), uint64(Size), "the heap grew by %d bytes for 8 chunks of %d", after-min(before, after), Size)
	for _, c := range held {
		c.Release()
	}
	Trim()
}
