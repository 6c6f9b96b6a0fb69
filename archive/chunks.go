package archive

import (
	"io"
	"sync"
)

// chunkSize is the unit in which writers buffer documents in memory.
const chunkSize = 1 << 20

var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, chunkSize)
	return &b
}}

// chunkBuf is a byte buffer made of pooled 1 MiB chunks: it grows without
// copying and its memory is reused across collections.
type chunkBuf struct {
	chunks []*[]byte
	n      int
}

func (c *chunkBuf) Len() int { return c.n }

func (c *chunkBuf) Write(p []byte) {
	c.n += len(p)
	for len(p) > 0 {
		if len(c.chunks) == 0 || len(*c.chunks[len(c.chunks)-1]) == chunkSize {
			c.chunks = append(c.chunks, chunkPool.Get().(*[]byte))
		}
		last := c.chunks[len(c.chunks)-1]
		k := min(len(p), chunkSize-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
}

// WriteTo writes the buffered bytes to w.
func (c *chunkBuf) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, ch := range c.chunks {
		n, err := w.Write(*ch)
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
		*ch = (*ch)[:0]
		chunkPool.Put(ch)
	}
	c.chunks = c.chunks[:0]
	c.n = 0
}
