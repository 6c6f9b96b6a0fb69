package cipher

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/keepslot/keepslot/internal/chunk"
)

// A stream's chunk must fit in a pooled one.
const _ = uint(chunk.Size - ChunkSize)

// inflight is how many chunk buffers a Writer or Reader owns: one being filled
// or drained by the caller and the rest being encrypted, authenticated or
// written by other goroutines, so that AES-CTR and HMAC of different chunks
// run side by side.
const inflight = 4

// NewWriter returns a Writer that encrypts what is written to it under a
// key derived from password and writes the stream to dst. The header is
// written before NewWriter returns; Close must be called to write the last
// chunk, the tag table and the footer, and does not close dst. A stream
// given up on before Close is ended with Abort, which frees the Writer's
// goroutines and buffers.
//
// Deriving the key takes about half a second with the default Options.
// Options asking for more scrypt work than [DefaultMaxWork] are refused with
// [ErrKDFTooExpensive], since readers would refuse the stream by default.
// Memory use is bounded by a few chunks plus 32 bytes per MiB written.
func NewWriter(dst io.Writer, password []byte, opts *Options) (*Writer, error) {
	var salt [saltSize]byte
	var iv [ivSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("cipher: reading random salt: %w", err)
	}
	if _, err := rand.Read(iv[:]); err != nil {
		return nil, fmt.Errorf("cipher: reading random IV: %w", err)
	}
	kp, err := opts.params()
	if err != nil {
		return nil, err
	}
	return newWriter(dst, password, kp, salt, iv, ChunkSize)
}

// newWriter is NewWriter with the salt, IV and chunk size fixed; tests use it
// for known-answer vectors and small chunks.
func newWriter(dst io.Writer, password []byte, kp kdfParams, salt [saltSize]byte, iv [ivSize]byte, chunkLen int) (*Writer, error) {
	if len(password) == 0 {
		return nil, fmt.Errorf("%w: refusing to encrypt without a password", ErrEmptyPassword)
	}
	k, err := deriveKeys(password, salt[:], kp)
	if err != nil {
		return nil, err
	}
	return newWriterKeys(dst, k, kp, salt, iv, chunkLen)
}

// newWriterKeys is newWriter with the keys already derived; the header
// still records kp. Tests use it to write streams whose header asks for
// more work than they spend.
func newWriterKeys(dst io.Writer, k *keys, kp kdfParams, salt [saltSize]byte, iv [ivSize]byte, chunkLen int) (*Writer, error) {
	h := &header{kdf: kp, salt: salt, iv: iv}
	hb := h.seal(k)
	if _, err := dst.Write(hb); err != nil {
		return nil, fmt.Errorf("cipher: writing the header: %w", err)
	}
	w := &Writer{
		dst:   dst,
		k:     k,
		hdr:   h,
		chunk: chunkLen,
		free:  make(chan *chunk.Chunk, inflight),
		order: make(chan *wjob, inflight),
		done:  make(chan struct{}),
	}
	w.sink, _ = dst.(chunk.Sink)
	for range inflight - 1 {
		w.free <- nil // taken from the pool on first use
	}
	w.cur = chunk.Get()
	go w.drain()
	return w, nil
}

// Writer is an encrypting stream, made by NewWriter. It is an
// io.WriteCloser; it is not safe for concurrent use.
type Writer struct {
	dst   io.Writer
	sink  chunk.Sink // dst, if it takes the sealed chunks without copying them
	k     *keys
	hdr   *header
	chunk int

	cur    *chunk.Chunk // plaintext of the chunk being filled (pooled; see internal/chunk)
	next   uint64       // index of the chunk in cur
	total  uint64       // plaintext bytes written
	closed bool
	cerr   error // result of Close

	// free holds one token per chunk that may be in flight: an empty chunk
	// to reuse, or nil for one to take from the pool (after dst kept the
	// last one).
	free  chan *chunk.Chunk
	order chan *wjob // dispatched chunks, in order, for drain
	done  chan struct{}

	mu      sync.Mutex
	werr    error  // first error from dst, set by drain
	tags    []byte // tag table, appended by drain
	aborted bool   // set by Abort: drain writes nothing more
}

type wjob struct {
	idx   uint64
	final bool
	c     *chunk.Chunk
	tag   [tagSize]byte
	ready chan struct{}
}

func (w *Writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.werr
}

// Write encrypts p. It returns an error if an earlier write to dst failed.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errClosed
	}
	if err := w.err(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		b := w.cur.B
		if len(b) == w.chunk {
			// A full chunk is sent only once more data arrives, so the last
			// chunk is always the one Close sends with the final flag.
			w.dispatch(false)
			if err := w.err(); err != nil {
				return n, err
			}
			b = w.cur.B
		}
		c := copy(b[len(b):w.chunk], p)
		w.cur.B = b[:len(b)+c]
		p = p[c:]
		n += c
		w.total += uint64(c)
	}
	return n, nil
}

// dispatch hands the chunk in cur to a goroutine that encrypts and
// authenticates it, and takes a free buffer for the next one.
func (w *Writer) dispatch(final bool) {
	j := &wjob{idx: w.next, final: final, c: w.cur, ready: make(chan struct{})}
	off := w.next * uint64(w.chunk)
	w.next++
	go func() {
		w.k.xorChunk(&w.hdr.iv, off, j.c.B)
		chunkTag(w.k.newMAC(), &w.hdr.mac, j.idx, j.final, j.c.B, j.tag[:])
		close(j.ready)
	}()
	w.order <- j
	w.cur = nil
	if final {
		return
	}
	w.cur = <-w.free
	if w.cur == nil {
		w.cur = chunk.Get()
	}
	w.cur.B = w.cur.B[:0]
}

// drain writes sealed chunks to dst in order and collects their tags. A dst
// that takes chunks (a store's pending write) gets the chunk itself, and
// the Writer takes a new one from the pool; any other dst gets a copy
// through Write, and the chunk is reused. After an error it keeps
// receiving, so that no goroutine is left blocked.
func (w *Writer) drain() {
	defer close(w.done)
	for j := range w.order {
		<-j.ready
		w.mu.Lock()
		skip := w.werr != nil || w.aborted
		w.mu.Unlock()
		next := j.c
		var err error
		switch {
		case skip:
		case w.sink != nil:
			err = w.sink.WriteChunk(j.c) // takes j.c, also on error
			next = nil
		default:
			_, err = w.dst.Write(j.c.B)
		}
		w.mu.Lock()
		if err != nil {
			w.werr = fmt.Errorf("cipher: writing chunk %d: %w", j.idx, err)
		}
		w.tags = append(w.tags, j.tag[:]...)
		w.mu.Unlock()
		w.free <- next
	}
}

// Close writes the last chunk, the tag table and the footer. It does not
// close the underlying writer. Calling Close again returns the same result.
func (w *Writer) Close() error {
	if w.closed {
		return w.cerr
	}
	w.closed = true
	w.dispatch(true)
	close(w.order)
	<-w.done
	w.cerr = w.finish()
	w.release()
	return w.cerr
}

// Abort gives up on the stream: it writes nothing more to dst (chunks being
// sealed are dropped), waits for the Writer's goroutines to end and frees
// its buffers. What was written to dst is not a valid stream. Abort after
// Close, or twice, does nothing; Write and Close after Abort fail.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.cerr = errAborted
	w.mu.Lock()
	w.aborted = true
	w.mu.Unlock()
	close(w.order)
	<-w.done
	w.release()
}

// release returns the chunks to the pool once drain has ended, so that a
// Writer kept by its caller after Close or Abort holds none.
func (w *Writer) release() {
	if w.cur != nil {
		w.cur.Release()
		w.cur = nil
	}
	for len(w.free) > 0 {
		if c := <-w.free; c != nil {
			c.Release()
		}
	}
	w.mu.Lock()
	w.tags = nil
	w.mu.Unlock()
}

func (w *Writer) finish() error {
	if err := w.err(); err != nil {
		return err
	}
	if _, err := w.dst.Write(w.tags); err != nil {
		return fmt.Errorf("cipher: writing the tag table: %w", err)
	}
	var foot [footerSize]byte
	binary.BigEndian.PutUint64(foot[:8], w.total)
	copy(foot[8:], footerMAC(w.k.newMAC(), &w.hdr.mac, w.total, w.tags))
	if _, err := w.dst.Write(foot[:]); err != nil {
		return fmt.Errorf("cipher: writing the footer: %w", err)
	}
	return nil
}
