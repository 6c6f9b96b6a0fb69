//go:build keepslotd_testhold

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/keepslot/keepslot/store"
)

// This file is built only with -tags keepslotd_testhold, into a variant of
// the agent for tests (examples/e2e_test.go builds one); the agent as
// shipped has no such knob (see nohold.go).

// envHold: when set to N, the main backup's writes block after N bytes
// until the backup is cancelled, and the agent prints "keepslotd: test
// hold" once they do, so a test can stop it mid-backup.
const envHold = "KEEPSLOTD_TEST_HOLD_AFTER_BYTES"

// testHold wraps s in a holdStore if envHold is set.
func testHold(s store.Store) (store.Store, error) {
	n := os.Getenv(envHold)
	if n == "" {
		return s, nil
	}
	after, err := strconv.ParseInt(n, 10, 64)
	if err != nil || after < 0 {
		return nil, fmt.Errorf("%s=%q: want a number of bytes", envHold, n)
	}
	return &holdStore{Store: s, after: after, held: func() {
		fmt.Println("keepslotd: test hold: the backup is blocked")
	}}, nil
}

// holdStore is a store wrapper whose writes block after a number of bytes
// until the write's context ends, so that a test can catch the agent in the
// middle of a backup. It unwraps to the store it holds (store.Wrapper), so
// the backup still finds that store's free space and keeps the 2x rule.
type holdStore struct {
	store.Store
	after int64
	held  func() // called once, when a write first blocks
	once  sync.Once
}

// Unwrap implements store.Wrapper.
func (h *holdStore) Unwrap() store.Store { return h.Store }

func (h *holdStore) Create(ctx context.Context, name string) (store.Pending, error) {
	p, err := h.Store.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &holdPending{Pending: p, ctx: ctx, left: h.after, announce: func() { h.once.Do(h.held) }}, nil
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
