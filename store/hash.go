package store

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"sync/atomic"
)

// The hashing pipeline. Bytes written are copied into chunks; a full chunk is
// handed to one goroutine per hash and to the sink (the file or the memory
// buffer) at the same time, so the caller pays for the copy and the sink and
// the hashes run on other cores. At most chunksInFlight chunks exist per
// pipeline, which bounds its memory whatever the size of the stream.
const (
	chunkSize      = 1 << 20
	chunksInFlight = 6
)

type chunk struct {
	b    []byte
	refs atomic.Int32 // hashers still reading b
}

var chunkPool = sync.Pool{New: func() any { return &chunk{b: make([]byte, 0, chunkSize)} }}

type hashPipe struct {
	sink  func([]byte) error // called in the writer's goroutine with each full chunk
	cur   *chunk
	free  chan *chunk // chunks no hasher reads any more
	made  int         // chunks taken from the pool
	feeds [2]chan *chunk
	sums  [2][]byte
	wg    sync.WaitGroup
	stop  atomic.Bool // set on abort: hashers skip what is left
	n     int64       // bytes accepted
	done  bool
}

func newHashPipe(sink func([]byte) error) *hashPipe {
	h := &hashPipe{sink: sink, free: make(chan *chunk, chunksInFlight)}
	for i, f := range [2]func() hash.Hash{md5.New, sha256.New} {
		feed := make(chan *chunk, chunksInFlight)
		h.feeds[i] = feed
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			d := f()
			for c := range feed {
				if !h.stop.Load() {
					d.Write(c.b)
				}
				if c.refs.Add(-1) == 0 {
					h.free <- c
				}
			}
			h.sums[i] = d.Sum(nil)
		}()
	}
	return h
}

// get returns an empty chunk, waiting for the hashers to release one when
// chunksInFlight are in use.
func (h *hashPipe) get() *chunk {
	var c *chunk
	select {
	case c = <-h.free:
	default:
		if h.made < chunksInFlight {
			h.made++
			c = chunkPool.Get().(*chunk)
		} else {
			c = <-h.free
		}
	}
	c.b = c.b[:0]
	return c
}

// write accepts p. It fails only when the sink fails; the pipeline must then
// be aborted.
func (h *hashPipe) write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if h.cur == nil {
			h.cur = h.get()
		}
		b := h.cur.b
		k := copy(b[len(b):cap(b)], p)
		h.cur.b = b[:len(b)+k]
		p = p[k:]
		n += k
		h.n += int64(k)
		if len(h.cur.b) == cap(h.cur.b) {
			if err := h.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush hands the current chunk to the hashers and the sink.
func (h *hashPipe) flush() error {
	c := h.cur
	h.cur = nil
	if c == nil || len(c.b) == 0 {
		if c != nil {
			h.free <- c
		}
		return nil
	}
	c.refs.Store(int32(len(h.feeds)))
	for _, f := range h.feeds {
		f <- c
	}
	// The hashers only read c.b, and only this goroutine takes chunks from
	// h.free to fill them, so the sink may read c.b while they hash it.
	return h.sink(c.b)
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
		h.free <- h.cur
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
	for range h.made {
		chunkPool.Put(<-h.free)
	}
	h.made = 0
}
