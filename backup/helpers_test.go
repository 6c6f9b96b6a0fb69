package backup_test

import (
	"context"
	"errors"
	"sync"

	"github.com/keepslot/keepslot/store"
)

// faultStore wraps a store so a test can fail or hold its writes.
type faultStore struct {
	store.Store
	failAt  int64         // fail writes past this many bytes; 0 = never
	hold    chan struct{} // if set, closed when the first write arrives, which then waits for its ctx
	holdOne sync.Once
}

func (f *faultStore) Create(ctx context.Context, name string) (store.Pending, error) {
	p, err := f.Store.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &faultPending{Pending: p, f: f, ctx: ctx}, nil
}

type faultPending struct {
	store.Pending
	f       *faultStore
	ctx     context.Context
	written int64
}

var errDiskFull = errors.New("no space left on device (injected)")

func (p *faultPending) Write(b []byte) (int, error) {
	if p.f.hold != nil {
		p.f.holdOne.Do(func() { close(p.f.hold) })
		<-p.ctx.Done()
		return 0, p.ctx.Err()
	}
	if p.f.failAt > 0 && p.written+int64(len(b)) > p.f.failAt {
		return 0, errDiskFull
	}
	p.written += int64(len(b))
	return p.Pending.Write(b)
}

// spaceStore reports a fixed free space.
type spaceStore struct {
	store.Store
	free int64
}

func (s spaceStore) FreeSpace(context.Context) (int64, error) { return s.free, nil }

// wrapStore decorates a Store, as an embedder's wrapper would, implementing
// nothing but Store and Unwrap.
type wrapStore struct{ store.Store }

func (w wrapStore) Unwrap() store.Store { return w.Store }
