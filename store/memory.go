package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
)

// MemoryStore is a Store that keeps the slot in memory, with the same
// semantics as DirStore. It holds the whole stored object in memory; that is
// its nature, so it suits tests and embedders with small objects.
type MemoryStore struct {
	mu      sync.Mutex
	pending *memPending // the write under way, if any
	obj     *memObject  // the stored object, if any
}

// Memory returns an empty in-memory slot.
func Memory() *MemoryStore { return &MemoryStore{} }

type memObject struct {
	info Info
	data *memData // never modified once stored
}

// memData is the bytes of an object as the pieces they were written in, so
// that storing them costs one copy and no reallocation.
type memData struct {
	pieces [][]byte
	starts []int64 // offset of each piece
	size   int64
}

func (d *memData) add(p []byte) {
	d.pieces = append(d.pieces, bytes.Clone(p))
	d.starts = append(d.starts, d.size)
	d.size += int64(len(p))
}

// ReadAt implements io.ReaderAt.
func (d *memData) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("store: negative offset")
	}
	if off >= d.size {
		return 0, io.EOF
	}
	// The first piece that ends after off.
	i, _ := slices.BinarySearch(d.starts, off+1)
	i--
	n := 0
	for ; n < len(p) && i >= 0 && i < len(d.pieces); i++ {
		n += copy(p[n:], d.pieces[i][off+int64(n)-d.starts[i]:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

var _ Store = (*MemoryStore)(nil)

// Create implements Store.
func (s *MemoryStore) Create(ctx context.Context, name string) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: create %q: %w", name, err)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != nil {
		return nil, ErrBusy
	}
	if s.obj != nil {
		return nil, ErrSlotOccupied
	}
	mp := &memPending{s: s, data: &memData{}}
	s.pending = mp
	return NewPending(ctx, name, mp), nil
}

// Stat implements Store.
func (s *MemoryStore) Stat(ctx context.Context) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("store: stat: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obj == nil {
		return Info{}, ErrEmpty
	}
	return s.obj.info.clone(), nil
}

// Open implements Store.
func (s *MemoryStore) Open(ctx context.Context) (Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obj == nil {
		return nil, ErrEmpty
	}
	d := s.obj.data
	return &memReader{r: io.NewSectionReader(d, 0, d.size), info: s.obj.info.clone()}, nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != nil {
		return ErrBusy
	}
	if s.obj == nil {
		return ErrEmpty
	}
	s.obj = nil
	return nil
}

// memPending is the Backend of a write to a MemoryStore.
type memPending struct {
	s    *MemoryStore
	data *memData
}

func (m *memPending) Append(p []byte) error {
	m.data.add(p)
	return nil
}

func (m *memPending) Commit(info Info) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	m.s.obj = &memObject{info: info, data: m.data}
	m.s.pending = nil
	m.data = nil
	return nil
}

func (m *memPending) Abort() error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.s.pending == m {
		m.s.pending = nil
	}
	m.data = nil
	return nil
}

// memReader is an Object over a MemoryStore's bytes.
type memReader struct {
	r      *io.SectionReader
	info   Info
	closed atomic.Bool
}

func (o *memReader) Read(p []byte) (int, error) {
	if o.closed.Load() {
		return 0, errObjectClosed
	}
	return o.r.Read(p)
}

func (o *memReader) ReadAt(p []byte, off int64) (int, error) {
	if o.closed.Load() {
		return 0, errObjectClosed
	}
	return o.r.ReadAt(p, off)
}

func (o *memReader) Seek(offset int64, whence int) (int64, error) {
	if o.closed.Load() {
		return 0, errObjectClosed
	}
	return o.r.Seek(offset, whence)
}

func (o *memReader) Close() error {
	if o.closed.Swap(true) {
		return errObjectClosed
	}
	return nil
}

func (o *memReader) Info() Info { return o.info.clone() }

var errObjectClosed = fmt.Errorf("store: object already closed: %w", os.ErrClosed)
