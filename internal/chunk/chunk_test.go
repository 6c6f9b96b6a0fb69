package chunk

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReferences(t *testing.T) {
	c := Get()
	require.Empty(t, c.B)
	require.Equal(t, Size, cap(c.B))
	c.B = append(c.B, "data"...)
	c.Hold(2)
	assert.False(t, c.Release())
	assert.False(t, c.Release())
	assert.True(t, c.Release(), "the last reference returns it to the pool")
	assert.Panics(t, func() { c.Release() }, "a release too many is a bug, not a silent reuse")
}

func TestGetIsEmpty(t *testing.T) {
	for range 100 {
		c := Get()
		require.Empty(t, c.B, "a reused chunk comes back empty")
		c.B = append(c.B, 1, 2, 3)
		c.Release()
	}
}

func TestPeak(t *testing.T) {
	ResetPeak()
	base := InUse()
	a, b := Get(), Get()
	assert.Equal(t, base+2, InUse())
	a.Release()
	c := Get()
	b.Release()
	c.Release()
	assert.Equal(t, base, InUse(), "every chunk returned")
	assert.Equal(t, base+2, Peak(), "at most two were out at once")
	ResetPeak()
	assert.Equal(t, base, Peak())
}

func TestTrim(t *testing.T) {
	base := InUse()
	c := Get()
	c.B = append(c.B, "data"...)
	c.Release()
	free.Lock()
	kept := len(free.list)
	free.Unlock()
	require.Positive(t, kept, "a released chunk is kept for reuse")
	Trim()
	free.Lock()
	assert.Empty(t, free.list, "Trim gives the kept chunks back")
	free.Unlock()
	assert.Equal(t, base, InUse())
	d := Get()
	assert.Empty(t, d.B, "Get after Trim maps a new chunk")
	d.Release()
}
