//go:build keepslotd_testhold

package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
)

// The test hold keeps the free-disk rule: the backup finds the Dir's free
// space through it.
func TestTestHoldUnwrapsToItsStore(t *testing.T) {
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	t.Setenv(envHold, "10")
	s, err := testHold(dir)
	require.NoError(t, err)
	require.IsType(t, &holdStore{}, s)
	sr, ok := store.As[store.SpaceReporter](s)
	require.True(t, ok, "no SpaceReporter through the hold")
	assert.Same(t, dir, sr)
	free, err := sr.FreeSpace(context.Background())
	require.NoError(t, err)
	assert.Positive(t, free)
}

func TestTestHoldBlocksAfterN(t *testing.T) {
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	t.Setenv(envHold, "10")
	s, err := testHold(dir)
	require.NoError(t, err)
	held := make(chan struct{})
	s.(*holdStore).held = func() { close(held) }
	ctx, cancel := context.WithCancel(context.Background())
	p, err := s.Create(ctx, "b")
	require.NoError(t, err)
	defer p.Abort()

	n, err := p.Write(make([]byte, 4))
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	type result struct {
		n   int
		err error
	}
	done := make(chan result)
	go func() {
		n, err := p.Write(make([]byte, 20))
		done <- result{n, err}
	}()
	<-held
	select {
	case r := <-done:
		t.Fatalf("the write past the hold returned: %d, %v", r.n, r.err)
	default:
	}
	cancel() // the write ends only with its context
	r := <-done
	assert.Equal(t, 6, r.n, "the bytes up to the hold are written")
	assert.ErrorIs(t, r.err, context.Canceled)
}

func TestTestHoldOffOrBad(t *testing.T) {
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	t.Setenv(envHold, "")
	s, err := testHold(dir)
	require.NoError(t, err)
	assert.Same(t, dir, s, "no hold unless asked for")
	t.Setenv(envHold, "ten")
	_, err = testHold(dir)
	assert.ErrorContains(t, err, envHold)
}
