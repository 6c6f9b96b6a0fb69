package cipher

import (
	"bytes"
	"runtime/metrics"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKDFMemoryReturned: scrypt's buffer (128·r·N bytes, 32 MiB with the
// default cost, 128 MiB with that of before 0.2.0) is garbage once the key
// is derived, and is collected and given back to the system then, not left
// to set the heap's goal for the rest of a backup: the collector, which saw
// it live, would let the heap grow to twice its size before collecting
// again, and a backup's resident memory with it (271 MiB for a backup of
// 100 MB with the cost of before 0.2.0, against 66 with a cheap scrypt).
func TestKDFMemoryReturned(t *testing.T) {
	const scryptBytes = 128 * 8 << 15 // log2 N 15, r 8: 32 MiB
	w, err := NewWriter(&bytes.Buffer{}, []byte("password"), &Options{LogN: 15, P: 1})
	require.NoError(t, err)
	defer w.Abort()
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	assert.Less(t, goal[0].Value.Uint64(), uint64(scryptBytes/2), "the heap's goal after deriving a key")
}

// TestDefaultKDFCost: a stream written with the default Options asks for
// log2 N 15, r 8, p 4 in its header: the work N·r·p of the cost of before
// 0.2.0 (log2 N 17, r 8, p 1), which DefaultMaxWork is 8 times, with a
// quarter of its memory. Deriving its key allocates scrypt's 32 MiB, not
// 128, so that a backup with the default settings can stay under 64 MiB.
func TestDefaultKDFCost(t *testing.T) {
	const oldWork = 1 << 17 * 8 * 1
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(allocs)
	before := allocs[0].Value.Uint64()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []byte("password"), nil)
	require.NoError(t, err)
	metrics.Read(allocs)
	allocated := allocs[0].Value.Uint64() - before
	require.NoError(t, w.Close())

	h, err := parseHeader(buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, kdfParams{logN: 15, r: 8, p: 4}, h.kdf)
	work, ok := h.kdf.work()
	require.True(t, ok)
	assert.EqualValues(t, oldWork, work, "N·r·p, the same as before 0.2.0")
	assert.EqualValues(t, 8*oldWork, DefaultMaxWork)
	mem, ok := h.kdf.memory()
	require.True(t, ok)
	assert.Equal(t, uint64(32<<20+128*8*(4+2)), mem, "128·r·(N+p+2)")
	// NewWriter allocates scrypt's buffers and a chunk or two of its own
	// (1 MiB each; on the heap under the race detector).
	assert.GreaterOrEqual(t, allocated, uint64(32<<20), "bytes allocated by NewWriter")
	assert.Less(t, allocated, uint64(40<<20), "bytes allocated by NewWriter")

	// A stream written with the old default still opens with the default
	// cap.
	kp, err := (&Options{LogN: 17, P: 1}).params()
	require.NoError(t, err)
	assert.NoError(t, kp.check(DefaultMaxWork))
}
