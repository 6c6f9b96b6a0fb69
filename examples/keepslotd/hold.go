package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/keepslot/keepslot/store"
)

// holdStore is a test-only store wrapper (see envHold): its writes block
// after a number of bytes until the write's context ends, so that a test
// can catch the agent in the middle of a backup.
type holdStore struct {
	store.Store
	after int64
	once  sync.Once
}

func (h *holdStore) Create(ctx context.Context, name string) (store.Pending, error) {
	p, err := h.Store.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &holdPending{Pending: p, ctx: ctx, left: h.after, announce: func() {
		h.once.Do(func() { fmt.Println("keepslotd: test hold: the backup is blocked") })
	}}, nil
}

type holdPending struct {
	store.Pending
	ctx      context.Context
	left     int64
	announce func()
}

func (p *holdPending) Write(b []byte) (int, error) {
	if int64(len(b)) <= p.left {
		p.left -= int64(len(b))
		return p.Pending.Write(b)
	}
	n, err := p.Pending.Write(b[:p.left])
	p.left -= int64(n)
	if err != nil {
		return n, err
	}
	p.announce()
	<-p.ctx.Done()
	return n, p.ctx.Err()
}
