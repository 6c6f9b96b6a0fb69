package store

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// memoryRemote is MemoryRemote's Remote.
type memoryRemote struct {
	mu   sync.Mutex
	objs map[string]*memObject
}

var _ Remote = (*memoryRemote)(nil)

// MemoryRemote returns an empty Remote that keeps its objects in memory,
// for tests and examples.
func MemoryRemote() Remote { return &memoryRemote{objs: map[string]*memObject{}} }

// Put implements Remote.
func (r *memoryRemote) Put(ctx context.Context, key string, src io.Reader, want Info) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	if err := validMeta(want.Meta); err != nil {
		return Info{}, err
	}
	d := &memData{}
	m, h := md5.New(), sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return Info{}, fmt.Errorf("store: put %q: %w", key, err)
		}
		n, err := src.Read(buf)
		d.add(buf[:n])
		m.Write(buf[:n])
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return Info{}, fmt.Errorf("store: put %q: reading: %w", key, err)
		}
	}
	got := Info{
		Name: want.Name, Size: d.size,
		MD5: hex.EncodeToString(m.Sum(nil)), SHA256: hex.EncodeToString(h.Sum(nil)),
		Created: want.Created, Meta: cloneMeta(want.Meta),
	}
	if got.Created.IsZero() {
		got.Created = now()
	}
	switch {
	case (want.Size > 0 || want.MD5 != "") && want.Size != got.Size,
		want.MD5 != "" && want.MD5 != got.MD5,
		want.SHA256 != "" && want.SHA256 != got.SHA256:
		return Info{}, fmt.Errorf("%w: %q read %d bytes, MD5 %s, SHA-256 %s; want %d bytes, MD5 %s, SHA-256 %s",
			ErrMismatch, key, got.Size, got.MD5, got.SHA256, want.Size, want.MD5, want.SHA256)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objs[key] = &memObject{info: got, data: d}
	return got.clone(), nil
}

// List implements Remote.
func (r *memoryRemote) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Entry
	for k, o := range r.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Entry{Key: k, Info: o.info.clone()})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Open implements Remote.
func (r *memoryRemote) Open(ctx context.Context, key string) (Object, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.objs[key]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return &memReader{r: io.NewSectionReader(o.data, 0, o.data.size), info: o.info.clone()}, nil
}

// Delete implements Remote.
func (r *memoryRemote) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.objs[key]; !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	delete(r.objs, key)
	return nil
}
