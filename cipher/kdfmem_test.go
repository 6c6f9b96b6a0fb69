package cipher

import (
	"bytes"
	"runtime/metrics"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKDFMemoryReturned: scrypt's buffer (128·r·N bytes, 128 MiB with the
// default cost) is garbage once the key is derived, and is collected and
// given back to the system then, not left to set the heap's goal for the
// rest of a backup: the collector, which saw it live, would let the heap
// grow to twice its size before collecting again, and a backup's resident
// memory with it (271 MiB for a backup of 100 MB, against 66 with a cheap
// scrypt).
func TestKDFMemoryReturned(t *testing.T) {
	const scryptBytes = 128 * 8 << 15 // log2 N 15, r 8: 32 MiB
	_, err := NewWriter(&bytes.Buffer{}, []byte("password"), &Options{LogN: 15})
	require.NoError(t, err)
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	assert.Less(t, goal[0].Value.Uint64(), uint64(scryptBytes/2), "the heap's goal after deriving a key")
}
