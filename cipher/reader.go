package cipher

import (
	"context"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// Reader decrypts a stream written by NewWriter. Each chunk's plaintext is
// released by Read only after the chunk has been authenticated.
type Reader struct {
	src   io.ReaderAt
	k     *keys
	hdr   *header
	chunk int64
	size  int64  // plaintext length
	n     int64  // number of chunks
	tags  []byte // authenticated tag table
	body  int64  // offset of the body in src

	// Read state.
	pending []*rjob // chunks being fetched, in order
	next    int64   // index of the next chunk to fetch
	cur     []byte  // plaintext of the current chunk not yet returned
	curBuf  []byte  // buffer holding cur
	free    [][]byte
	err     error // sticky
}

type rjob struct {
	idx   int64
	buf   []byte
	err   error
	ready chan struct{}
}

// NewReader derives the key, checks the header MAC (ErrWrongPassword), the
// footer and the tag table (ErrCorrupt on truncation or trailing bytes)
// before returning; then each chunk is authenticated before its plaintext is
// released by Read.
//
// size must be the exact length of the stream in src. A stream that cannot
// seek must be spooled (to a file, say) by the caller first.
//
// Of opts (nil for the defaults) only MaxWork is used: a header asking for
// more scrypt work fails with [ErrKDFTooExpensive] before any is done.
func NewReader(src io.ReaderAt, size int64, password []byte, opts *Options) (*Reader, error) {
	return newReader(src, size, password, opts.maxWork(), ChunkSize, deriveKeys)
}

// newReader is NewReader with the chunk size and the key derivation fixed;
// tests use them for small chunks and to observe the derivation.
func newReader(src io.ReaderAt, size int64, password []byte, maxWork uint64, chunk int64,
	derive func(password, salt []byte, kp kdfParams) (*keys, error)) (*Reader, error) {
	if len(password) == 0 {
		return nil, fmt.Errorf("%w: a password is needed to decrypt", ErrEmptyPassword)
	}
	if size < 0 {
		return nil, fmt.Errorf("cipher: negative stream size %d", size)
	}
	hb := make([]byte, min(size, headerSize))
	if err := readFull(src, hb, 0, "header"); err != nil {
		return nil, err
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	if err := h.kdf.check(maxWork); err != nil {
		return nil, err
	}

	// Structure of the tail, before spending time on the key.
	if size < headerSize+tagSize+footerSize {
		return nil, fmt.Errorf("%w: truncated stream (%d bytes, at least %d expected)", ErrCorrupt, size, headerSize+tagSize+footerSize)
	}
	var foot [footerSize]byte
	if err := readFull(src, foot[:], size-footerSize, "footer"); err != nil {
		return nil, err
	}
	length := binary.BigEndian.Uint64(foot[:8])
	if length > uint64(size) {
		return nil, fmt.Errorf("%w: footer claims %d bytes of plaintext in a %d-byte stream; truncated or damaged", ErrCorrupt, length, size)
	}
	n := numChunks(int64(length), chunk)
	if want := headerSize + int64(length) + tagSize*n + footerSize; want != size {
		return nil, fmt.Errorf("%w: stream is %d bytes but its footer implies %d; truncated, extended or damaged", ErrCorrupt, size, want)
	}

	k, err := derive(password, h.salt[:], h.kdf)
	if err != nil {
		return nil, err
	}
	if !h.verifyMAC(k) {
		return nil, fmt.Errorf("%w: the header does not authenticate under this password", ErrWrongPassword)
	}

	tags := make([]byte, tagSize*n)
	if err := readFull(src, tags, headerSize+int64(length), "tag table"); err != nil {
		return nil, err
	}
	if !hmac.Equal(footerMAC(k.newMAC(), &h.mac, length, tags), foot[8:]) {
		return nil, fmt.Errorf("%w: footer MAC mismatch; the tag table or length was altered", ErrCorrupt)
	}
	r := &Reader{
		src: src, k: k, hdr: h, chunk: chunk,
		size: int64(length), n: n, tags: tags, body: headerSize,
	}
	for range inflight {
		r.free = append(r.free, nil)
	}
	return r, nil
}

// readFull reads len(b) bytes at off, reporting a short read as corruption.
func readFull(src io.ReaderAt, b []byte, off int64, what string) error {
	n, err := src.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s truncated (%d of %d bytes at offset %d)", ErrCorrupt, what, n, len(b), off)
	}
	return fmt.Errorf("cipher: reading the %s: %w", what, err)
}

// Size is the plaintext length (from the authenticated footer).
func (r *Reader) Size() int64 { return r.size }

// chunkLen is the plaintext length of chunk idx.
func (r *Reader) chunkLen(idx int64) int64 {
	if idx == r.n-1 {
		return r.size - idx*r.chunk
	}
	return r.chunk
}

// load reads chunk idx into buf (resized) and authenticates it.
func (r *Reader) load(idx int64, buf []byte) ([]byte, error) {
	l := r.chunkLen(idx)
	if int64(cap(buf)) < l {
		buf = make([]byte, l, r.chunk)
	}
	buf = buf[:l]
	if err := readFull(r.src, buf, r.body+idx*r.chunk, fmt.Sprintf("chunk %d", idx)); err != nil {
		return buf, err
	}
	var tag [tagSize]byte
	chunkTag(r.k.newMAC(), &r.hdr.mac, uint64(idx), idx == r.n-1, buf, tag[:])
	if !hmac.Equal(tag[:], r.tags[idx*tagSize:(idx+1)*tagSize]) {
		return buf, fmt.Errorf("%w: chunk %d of %d failed authentication; do not use this stream", ErrCorrupt, idx, r.n)
	}
	return buf, nil
}

// Read reads decrypted plaintext. Each chunk is authenticated before any of
// it is returned; a chunk that fails yields an error wrapping ErrCorrupt,
// and so does every later call.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.curBuf != nil {
			r.free = append(r.free, r.curBuf)
			r.curBuf = nil
		}
		r.fill()
		if len(r.pending) == 0 {
			r.err = io.EOF
			return 0, io.EOF
		}
		j := r.pending[0]
		r.pending = r.pending[1:]
		<-j.ready
		r.curBuf = j.buf
		if j.err != nil {
			r.err = j.err
			r.pending = nil // in-flight jobs finish on their own
			return 0, r.err
		}
		r.cur = j.buf
		if j.idx == r.n-1 && len(r.cur) == 0 {
			r.err = io.EOF // the empty final chunk of an empty stream
			return 0, io.EOF
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// fill starts fetching chunks while buffers are free.
func (r *Reader) fill() {
	for len(r.free) > 0 && r.next < r.n {
		buf := r.free[len(r.free)-1]
		r.free = r.free[:len(r.free)-1]
		j := &rjob{idx: r.next, buf: buf, ready: make(chan struct{})}
		r.next++
		go func() {
			defer close(j.ready)
			j.buf, j.err = r.load(j.idx, j.buf)
			if j.err == nil {
				r.k.xorChunk(&r.hdr.iv, uint64(j.idx*r.chunk), j.buf)
			}
		}()
		r.pending = append(r.pending, j)
	}
}

// Verify authenticates every chunk (MAC only, no decryption) without
// releasing plaintext, so a caller can know the whole stream is intact
// before acting on any of it. It stops early when ctx is done and returns
// ctx's error. Verify does not move the Read position and may be called
// before or between Reads, but not concurrently with Read.
func (r *Reader) Verify(ctx context.Context) error {
	workers := min(int64(max(runtime.GOMAXPROCS(0), 1)), inflight, r.n)
	var (
		mu    sync.Mutex
		next  int64
		first error
		wg    sync.WaitGroup
	)
	take := func() (int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= r.n {
			return 0, false
		}
		if err := ctx.Err(); err != nil {
			first = fmt.Errorf("cipher: verification stopped at chunk %d of %d: %w", next, r.n, err)
			return 0, false
		}
		next++
		return next - 1, true
	}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	for range workers {
		wg.Go(func() {
			var buf []byte
			for {
				idx, ok := take()
				if !ok {
					return
				}
				var err error
				if buf, err = r.load(idx, buf); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
