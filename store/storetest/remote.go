package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
)

// RunRemote runs the conformance suite of store.Remote against fresh,
// empty remotes made by newRemote.
func RunRemote(t *testing.T, newRemote func(t *testing.T) store.Remote) {
	tests := []struct {
		name string
		fn   func(t *testing.T, r store.Remote)
	}{
		{"RoundTrip", testRemoteRoundTrip},
		{"Mismatch", testRemoteMismatch},
		{"ListDelete", testRemoteListDelete},
		{"NotFound", testRemoteNotFound},
		{"Cancel", testRemoteCancel},
		{"Keys", testRemoteKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRemote(t)
			require.NotNil(t, r, "newRemote returned nil")
			tt.fn(t, r)
		})
	}
}

func infoOf(name string, data []byte) store.Info {
	m, h := sums(data)
	return store.Info{
		Name: name, Size: int64(len(data)), MD5: m, SHA256: h,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Meta:    map[string]string{"node": "rs0/host-1:27017", "state": "ready"},
	}
}

func testRemoteRoundTrip(t *testing.T, r store.Remote) {
	for i, size := range []int{0, 1000, 6<<20 + 123, 13 << 20} {
		data := content(uint64(40+i), size)
		want := infoOf("backup-1.enc", data)
		got, err := r.Put(t.Context(), "node-1/backup-1.enc", bytes.NewReader(data), want)
		require.NoError(t, err, "Put of %d bytes", size)
		requireSameInfo(t, want, got)

		o, err := r.Open(t.Context(), "node-1/backup-1.enc")
		require.NoError(t, err)
		requireSameInfo(t, want, o.Info())
		b, err := io.ReadAll(o)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, b), "Open returned other bytes, size %d", size)
		if size > 100 {
			p := make([]byte, 50)
			_, err := o.ReadAt(p, int64(size/2))
			require.NoError(t, err)
			require.Equal(t, data[size/2:size/2+50], p, "ReadAt")
		}
		require.NoError(t, o.Close())
	}
	// Put without hashes computes them.
	data := content(50, 777)
	got, err := r.Put(t.Context(), "node-1/plain", bytes.NewReader(data), store.Info{Name: "plain"})
	require.NoError(t, err)
	m, h := sums(data)
	assert.Equal(t, m, got.MD5)
	assert.Equal(t, h, got.SHA256)
	assert.Equal(t, int64(777), got.Size)
}

func testRemoteMismatch(t *testing.T, r store.Remote) {
	data := content(60, 6<<20)
	want := infoOf("b.enc", data)
	bad := want
	bad.SHA256 = want.SHA256[:60] + "0000"
	_, err := r.Put(t.Context(), "n/b.enc", bytes.NewReader(data), bad)
	require.ErrorIs(t, err, store.ErrMismatch)
	bad = want
	bad.Size++
	_, err = r.Put(t.Context(), "n/b.enc", bytes.NewReader(data), bad)
	require.ErrorIs(t, err, store.ErrMismatch)
	l, err := r.List(t.Context(), "")
	require.NoError(t, err)
	assert.Empty(t, l, "a failed Put leaves nothing")
}

func testRemoteListDelete(t *testing.T, r store.Remote) {
	for _, k := range []string{"b/2.enc", "a/1.enc", "a/3.enc", "ab/4.enc"} {
		data := []byte(k)
		_, err := r.Put(t.Context(), k, bytes.NewReader(data), infoOf(k, data))
		require.NoError(t, err)
	}
	keys := func(prefix string) []string {
		l, err := r.List(t.Context(), prefix)
		require.NoError(t, err)
		var ks []string
		for _, e := range l {
			ks = append(ks, e.Key)
			assert.Equal(t, e.Key, e.Info.Name)
			assert.NotEmpty(t, e.Info.SHA256)
		}
		return ks
	}
	assert.Equal(t, []string{"a/1.enc", "a/3.enc", "ab/4.enc", "b/2.enc"}, keys(""))
	assert.Equal(t, []string{"a/1.enc", "a/3.enc"}, keys("a/"))
	require.NoError(t, r.Delete(t.Context(), "a/1.enc"))
	assert.Equal(t, []string{"a/3.enc"}, keys("a/"))
	require.ErrorIs(t, r.Delete(t.Context(), "a/1.enc"), store.ErrNotFound)
}

func testRemoteNotFound(t *testing.T, r store.Remote) {
	_, err := r.Open(t.Context(), "missing/x")
	require.ErrorIs(t, err, store.ErrNotFound)
	l, err := r.List(t.Context(), "missing/")
	require.NoError(t, err)
	assert.Empty(t, l)
}

// errReader fails after giving some bytes.
type errReader struct {
	n   int
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	k := min(len(p), e.n)
	e.n -= k
	return k, nil
}

func testRemoteCancel(t *testing.T, r store.Remote) {
	boom := errors.New("source failed")
	data := content(1, 12<<20)
	_, err := r.Put(t.Context(), "n/x", &errReader{n: 12 << 20, err: boom}, infoOf("x", data))
	require.ErrorIs(t, err, boom)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = r.Put(ctx, "n/y", bytes.NewReader(data), infoOf("y", data))
	require.ErrorIs(t, err, context.Canceled)
	l, err := r.List(t.Context(), "")
	require.NoError(t, err)
	assert.Empty(t, l, "a failed Put leaves nothing")
}

// testRemoteKeys checks that the remote takes the keys store.CheckKey
// accepts, and refuses the others with store.ErrInvalid on every method.
func testRemoteKeys(t *testing.T, r store.Remote) {
	data := []byte("key check")
	for _, key := range []string{"k", "node-1/backup.tar.gz", "a/b/c/d", "ünïcode/ключ", "with space/x"} {
		require.NoError(t, store.CheckKey(key))
		_, err := r.Put(t.Context(), key, bytes.NewReader(data), infoOf("x", data))
		require.NoError(t, err, "Put %q", key)
		o, err := r.Open(t.Context(), key)
		require.NoError(t, err, "Open %q", key)
		require.NoError(t, o.Close())
		require.NoError(t, r.Delete(t.Context(), key), "Delete %q", key)
	}
	for _, key := range []string{"", "/abs", "a//b", "a/", "./a", "a/../b", "..", "\xff\xfe"} {
		require.ErrorIs(t, store.CheckKey(key), store.ErrInvalid, "CheckKey(%q)", key)
		_, err := r.Put(t.Context(), key, bytes.NewReader(data), infoOf("x", data))
		assert.ErrorIs(t, err, store.ErrInvalid, "Put %q", key)
		_, err = r.Open(t.Context(), key)
		assert.ErrorIs(t, err, store.ErrInvalid, "Open %q", key)
		assert.ErrorIs(t, r.Delete(t.Context(), key), store.ErrInvalid, "Delete %q", key)
	}
}
