package store

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/keepslot/keepslot/internal/chunk"
)

// The hashing pipeline. Bytes written are copied into pooled chunks (package
// internal/chunk), and chunks handed over whole (by the cipher, through
// WriteChunk) are used as they are; each chunk goes to one goroutine per
// hash and to the sink (the file or the memory buffer) at the same time, so
// the caller pays for the sink only and the hashes run on other cores. At
// most chunksInFlight chunks are in the pipeline at once, which bounds its
// memory whatever the size of the stream: three let the sink and the two
// hashes work on different chunks; more only hold memory while MD5, the
// slowest, catches up.
const (
	chunkSize      = chunk.Size
	chunksInFlight = 3
)

type hashPipe struct {
	sink   func([]byte) error // called in the writer's goroutine with each chunk
	cur    *chunk.Chunk       // being filled by write
	tokens chan struct{}      // one per chunk in the pipeline
	feeds  [2]chan *chunk.Chunk
	sums   [2][]byte
	wg     sync.WaitGroup
	stop   atomic.Bool // set on abort: hashers skip what is left
	n      int64       // bytes accepted
	done   bool
}

func newHashPipe(sink func([]byte) error) *hashPipe {
	h := &hashPipe{sink: sink, tokens: make(chan struct{}, chunksInFlight)}
	for i, f := range [2]func() hash.Hash{md5.New, sha256.New} {
		feed := make(chan *chunk.Chunk, chunksInFlight)
		h.feeds[i] = feed
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			d := f()
			for c := range feed {
				if !h.stop.Load() {
					d.Write(c.B)
				}
				h.put(c)
			}
			h.sums[i] = d.Sum(nil)
		}()
	}
	return h
}

// take reserves a place in the pipeline for one chunk, waiting for the
// hashers to finish an older one when chunksInFlight are in it.
func (h *hashPipe) take() { h.tokens <- struct{}{} }

// put drops a reference to c; the last one frees c's place.
func (h *hashPipe) put(c *chunk.Chunk) {
	if c.Release() {
		<-h.tokens
	}
}

// write accepts p. It fails only when the sink fails; the pipeline must then
// be aborted.
func (h *hashPipe) write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if h.cur == nil {
			h.take()
			h.cur = chunk.Get()
		}
		b := h.cur.B
		k := copy(b[len(b):cap(b)], p)
		h.cur.B = b[:len(b)+k]
		p = p[k:]
		n += k
		h.n += int64(k)
		if len(h.cur.B) == cap(h.cur.B) {
			if err := h.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// writeChunk accepts c whole, taking over the caller's reference to it,
// after what write has buffered.
func (h *hashPipe) writeChunk(c *chunk.Chunk) error {
	if err := h.flush(); err != nil {
		c.Release()
		return err
	}
	if len(c.B) == 0 {
		c.Release()
		return nil
	}
	h.take()
	h.n += int64(len(c.B))
	return h.send(c)
}

// flush hands the chunk being filled to the hashers and the sink.
func (h *hashPipe) flush() error {
	c := h.cur
	h.cur = nil
	if c == nil {
		return nil
	}
	if len(c.B) == 0 {
		h.put(c)
		return nil
	}
	return h.send(c)
}

// send gives c, whose place is taken and whose one reference is the
// pipeline's, to the hashers and the sink.
func (h *hashPipe) send(c *chunk.Chunk) error {
	// One reference per hasher, and this goroutine's own until the sink
	// returns: the sink reads c.B while the hashers do, and c must not go
	// back to the pool before all of them are done.
	c.Hold(len(h.feeds))
	for _, f := range h.feeds {
		f <- c
	}
	err := h.sink(c.B)
	h.put(c)
	return err
}

// finish flushes what is buffered, waits for the hashers and returns the
// lowercase hex MD5 and SHA-256 of everything written.
func (h *hashPipe) finish() (md5hex, sha256hex string, err error) {
	err = h.flush()
	h.close()
	return hex.EncodeToString(h.sums[0]), hex.EncodeToString(h.sums[1]), err
}

// abort stops the hashers and releases the chunks.
func (h *hashPipe) abort() {
	h.stop.Store(true)
	if h.cur != nil {
		h.put(h.cur)
		h.cur = nil
	}
	h.close()
}

func (h *hashPipe) close() {
	if h.done {
		return
	}
	h.done = true
	for _, f := range h.feeds {
		close(f)
	}
	h.wg.Wait()
}
