package store_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/internal/chunk"
	"github.com/keepslot/keepslot/store"
)

// collectingBackend keeps what it is given, copying it as the Backend
// contract says.
type collectingBackend struct{ got bytes.Buffer }

func (c *collectingBackend) Append(p []byte) error   { c.got.Write(p); return nil }
func (c *collectingBackend) Commit(store.Info) error { return nil }
func (c *collectingBackend) Abort() error            { return nil }

// Chunks handed over whole and bytes written mix in order, with the hashes
// of the whole stream, however they interleave.
func TestWriteChunkMixesWithWrite(t *testing.T) {
	be := &collectingBackend{}
	p := store.NewPending(t.Context(), "x", be)
	sink, ok := p.(chunk.Sink)
	require.True(t, ok, "a pending write takes chunks")

	var want bytes.Buffer
	write := func(b []byte) {
		_, err := p.Write(b)
		require.NoError(t, err)
		want.Write(b)
	}
	give := func(n int, fill byte) {
		c := chunk.Get()
		c.B = append(c.B, bytes.Repeat([]byte{fill}, n)...)
		want.Write(c.B)
		require.NoError(t, sink.WriteChunk(c))
	}
	write([]byte("header"))
	for i := range 20 { // more chunks than the pipeline holds at once
		give(chunk.Size, byte(i))
	}
	write(bytes.Repeat([]byte("x"), 3*chunk.Size/2))
	give(0, 0)
	give(12345, 'y')
	info, err := p.Commit(nil)
	require.NoError(t, err)

	assert.Equal(t, int64(want.Len()), info.Size)
	md := md5.Sum(want.Bytes())
	sh := sha256.Sum256(want.Bytes())
	assert.Equal(t, hex.EncodeToString(md[:]), info.MD5)
	assert.Equal(t, hex.EncodeToString(sh[:]), info.SHA256)
	assert.True(t, bytes.Equal(want.Bytes(), be.got.Bytes()), "the backend got the bytes in order")
}

// A chunk given to an ended write is refused, and released, not kept.
func TestWriteChunkAfterEnd(t *testing.T) {
	p := store.NewPending(t.Context(), "x", &collectingBackend{})
	require.NoError(t, p.Abort())
	c := chunk.Get()
	c.B = append(c.B, "late"...)
	require.ErrorIs(t, p.(chunk.Sink).WriteChunk(c), store.ErrClosed)
}
