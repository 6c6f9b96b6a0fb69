package archive

import (
	"io"

	"github.com/keepslot/keepslot/internal/chunk"
)

// chunkBuf is a byte buffer made of pooled 1 MiB chunks (the pool the
// cipher and the store draw from too): it grows without copying and its
// memory is reused across collections and stages.
type chunkBuf struct {
	chunks []*chunk.Chunk
	n      int
}

func (c *chunkBuf) Len() int { return c.n }

func (c *chunkBuf) Write(p []byte) {
	c.n += len(p)
	for len(p) > 0 {
		if len(c.chunks) == 0 || len(c.chunks[len(c.chunks)-1].B) == chunk.Size {
			c.chunks = append(c.chunks, chunk.Get())
		}
		last := c.chunks[len(c.chunks)-1]
		k := min(len(p), chunk.Size-len(last.B))
		last.B = append(last.B, p[:k]...)
		p = p[k:]
	}
}

// WriteTo writes the buffered bytes to w.
func (c *chunkBuf) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, ch := range c.chunks {
		n, err := w.Write(ch.B)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Reset empties the buffer and returns its chunks to the pool.
func (c *chunkBuf) Reset() {
	for _, ch := range c.chunks {
		ch.Release()
	}
	clear(c.chunks)
	c.chunks = c.chunks[:0]
	c.n = 0
}
