package slot_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/chunk"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
)

// TestChunksBounded: a backup holds at most a fixed number of the
// pipeline's 1 MiB chunks, whatever its size: the tar writer's default
// spill budget (4 MiB), a partly filled chunk for each of the 4
// collections read at once, the buffer that copies a spilled collection
// out, the cipher's 4 chunks and the store's 3 in flight. (Uncompressed,
// for the test's speed: the tar writer holds what it compresses the
// same way.) With the 32 MiB budget and the 6 chunks in the store of
// before, a backup of 48 MiB held 39.
func TestChunksBounded(t *testing.T) {
	const bound = 4 + 4 + 1 + 4 + 3
	for _, size := range []int64{8 << 20, 48 << 20} {
		e := testnode.NewLocal(t)
		cfg := e.Config().Config
		cfg.Compression = archive.NoCompression{}
		chunk.ResetPeak()
		base := chunk.InUse()
		_, st := testnode.RunSlot(t, testnode.NewSynthetic(4, size), cfg)
		require.Equal(t, slot.StateReady, st.State, st.Error)
		t.Logf("%d MiB: %d chunks at most", size>>20, chunk.Peak()-base)
		assert.LessOrEqual(t, chunk.Peak()-base, int64(bound), "chunks held at once by a backup of %d MiB", size>>20)
	}
}
