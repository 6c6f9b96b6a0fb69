package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
)

// failingBackend records the calls NewPending makes and fails Append after
// limit bytes.
type failingBackend struct {
	limit           int
	appended        int
	commits, aborts int
}

var errSinkFull = errors.New("sink full")

func (f *failingBackend) Append(p []byte) error {
	if f.appended+len(p) > f.limit {
		return errSinkFull
	}
	f.appended += len(p)
	return nil
}
func (f *failingBackend) Commit(store.Info) error { f.commits++; return nil }
func (f *failingBackend) Abort() error            { f.aborts++; return nil }

// A Backend whose Append fails sees its write aborted at once, once; the
// error reaches the writer and Commit.
func TestNewPendingAppendFails(t *testing.T) {
	be := &failingBackend{limit: 1 << 20}
	p := store.NewPending(t.Context(), "x", be)
	_, err := p.Write(make([]byte, 3<<20))
	require.ErrorIs(t, err, errSinkFull)
	assert.Equal(t, 1, be.aborts, "aborted when Append failed")
	_, err = p.Commit(nil)
	require.ErrorIs(t, err, errSinkFull)
	require.NoError(t, p.Abort())
	assert.Equal(t, 1, be.aborts, "aborted once")
	assert.Zero(t, be.commits)
}

// A Backend sees Commit with the Info the Pending computed, and Abort never.
func TestNewPendingCommit(t *testing.T) {
	be := &failingBackend{limit: 1 << 30}
	ctx, cancel := context.WithCancel(t.Context())
	p := store.NewPending(ctx, "x", be)
	_, err := p.Write([]byte("hello"))
	require.NoError(t, err)
	info, err := p.Commit(map[string]string{"a": "b"})
	require.NoError(t, err)
	cancel() // after Commit, the end of the context changes nothing
	assert.Equal(t, int64(5), info.Size)
	assert.Equal(t, "5d41402abc4b2a76b9719d911017c592", info.MD5)
	assert.Equal(t, 1, be.commits)
	assert.Zero(t, be.aborts)
	assert.Equal(t, 5, be.appended)
}
