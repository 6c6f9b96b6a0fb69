package store_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
)

func newDir(t *testing.T) (*store.DirStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "var", "slot")
	s, err := store.Dir(dir)
	require.NoError(t, err)
	return s, dir
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var ns []string
	for _, e := range entries {
		ns = append(ns, e.Name())
	}
	return ns
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

func TestDirPermissions(t *testing.T) {
	s, dir := newDir(t)
	assert.Equal(t, fs.FileMode(0o700), mode(t, dir), "the slot directory")
	assert.Equal(t, fs.FileMode(0o700), mode(t, filepath.Dir(dir)), "a parent Dir created")
	assert.Equal(t, dir, s.Path())

	p, err := s.Create(t.Context(), "perm")
	require.NoError(t, err)
	_, err = p.Write([]byte("secret-ish"))
	require.NoError(t, err)
	for _, n := range names(t, dir) {
		assert.Equal(t, fs.FileMode(0o600), mode(t, filepath.Join(dir, n)), "%s while writing", n)
	}
	_, err = p.Commit(map[string]string{"k": "v"})
	require.NoError(t, err)
	ns := names(t, dir)
	assert.Len(t, ns, 4, "lock files, info file and data file: %v", ns)
	for _, n := range ns {
		assert.Equal(t, fs.FileMode(0o600), mode(t, filepath.Join(dir, n)), "%s once committed", n)
	}
	require.NoError(t, s.Delete(t.Context()))
	assert.ElementsMatch(t, []string{"gate.lock", "write.lock"}, names(t, dir), "after Delete only the lock files remain")
}

func TestDirNotADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	_, err := store.Dir(path)
	require.Error(t, err)
	_, err = store.Dir(filepath.Join(path, "below"))
	require.Error(t, err)
}

// Two DirStores on one directory in one process exclude each other as two
// processes would.
func TestDirSharedDirectory(t *testing.T) {
	a, dir := newDir(t)
	b, err := store.Dir(dir)
	require.NoError(t, err)

	p, err := a.Create(t.Context(), "from-a")
	require.NoError(t, err)
	_, err = p.Write([]byte("a's bytes"))
	require.NoError(t, err)

	_, err = b.Create(t.Context(), "from-b")
	require.ErrorIs(t, err, store.ErrBusy)
	require.ErrorIs(t, b.Delete(t.Context()), store.ErrBusy)
	_, err = b.Stat(t.Context())
	require.ErrorIs(t, err, store.ErrEmpty)
	_, err = b.Open(t.Context())
	require.ErrorIs(t, err, store.ErrEmpty)

	info, err := p.Commit(nil)
	require.NoError(t, err)
	got, err := b.Stat(t.Context())
	require.NoError(t, err)
	assert.Equal(t, info, got, "b sees what a committed")
	_, err = b.Create(t.Context(), "from-b")
	require.ErrorIs(t, err, store.ErrSlotOccupied)
	require.NoError(t, b.Delete(t.Context()))
	_, err = a.Stat(t.Context())
	require.ErrorIs(t, err, store.ErrEmpty, "a sees b's Delete")
}

// Files that crashed writes and deletes leave are removed by the next call,
// but not the files of a write under way.
func TestDirTidiesLeftovers(t *testing.T) {
	for _, call := range []string{"Stat", "Open", "Create", "Delete"} {
		t.Run(call, func(t *testing.T) {
			s, dir := newDir(t)
			stale := []string{
				".keepslot-pending-0123456789abcdef0123456789abcdef.data",
				".keepslot-pending-0123456789abcdef0123456789abcdef.json",
				"object-fedcba9876543210fedcba9876543210",
			}
			for _, n := range stale {
				require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte("stale"), 0o600))
			}
			ctx := t.Context()
			switch call {
			case "Stat":
				_, err := s.Stat(ctx)
				require.ErrorIs(t, err, store.ErrEmpty)
			case "Open":
				_, err := s.Open(ctx)
				require.ErrorIs(t, err, store.ErrEmpty)
			case "Create":
				p, err := s.Create(ctx, "x")
				require.NoError(t, err)
				defer p.Abort()
			case "Delete":
				require.ErrorIs(t, s.Delete(ctx), store.ErrEmpty)
			}
			for _, n := range names(t, dir) {
				assert.NotContains(t, stale, n, "left after %s", call)
			}
		})
	}

	t.Run("PendingKept", func(t *testing.T) {
		s, dir := newDir(t)
		p, err := s.Create(t.Context(), "live")
		require.NoError(t, err)
		_, err = p.Write([]byte("live bytes"))
		require.NoError(t, err)
		before := names(t, dir)
		other, err := store.Dir(dir)
		require.NoError(t, err)
		_, err = other.Stat(t.Context())
		require.ErrorIs(t, err, store.ErrEmpty)
		_, err = other.Open(t.Context())
		require.ErrorIs(t, err, store.ErrEmpty)
		assert.Equal(t, before, names(t, dir), "a reader must not touch a live write's files")
		info, err := p.Commit(nil)
		require.NoError(t, err)
		assert.Equal(t, int64(10), info.Size)
	})
}

func TestDirCorrupt(t *testing.T) {
	put := func(t *testing.T, s store.Store, data string) {
		p, err := s.Create(t.Context(), "obj")
		require.NoError(t, err)
		_, err = io.WriteString(p, data)
		require.NoError(t, err)
		_, err = p.Commit(nil)
		require.NoError(t, err)
	}
	dataFile := func(t *testing.T, dir string) string {
		for _, n := range names(t, dir) {
			if strings.HasPrefix(n, "object-") {
				return filepath.Join(dir, n)
			}
		}
		t.Fatal("no data file")
		return ""
	}
	cases := map[string]func(t *testing.T, dir string){
		"InfoGarbage": func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "info.json"), []byte("{not json"), 0o600))
		},
		"DataMissing": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(dataFile(t, dir)))
		},
		"DataTruncated": func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(dataFile(t, dir), 3))
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			s, dir := newDir(t)
			put(t, s, "some bytes")
			damage(t, dir)
			o, err := s.Open(t.Context())
			if err == nil {
				o.Close()
			}
			require.ErrorIs(t, err, store.ErrCorrupt, "Open")
			_, err = s.Create(t.Context(), "next")
			require.Error(t, err, "Create over a damaged slot")
			require.NoError(t, s.Delete(t.Context()), "Delete recovers a damaged slot")
			assert.ElementsMatch(t, []string{"gate.lock", "write.lock"}, names(t, dir))
			put(t, s, "fresh")
		})
	}
}

func TestDirFreeSpace(t *testing.T) {
	s, _ := newDir(t)
	var sr store.SpaceReporter = s
	n, err := sr.FreeSpace(t.Context())
	require.NoError(t, err)
	assert.Positive(t, n)
}

func TestDirWriteBig(t *testing.T) {
	// Enough to cross the writeback threshold several times.
	s, _ := newDir(t)
	p, err := s.Create(t.Context(), "big")
	require.NoError(t, err)
	h := md5.New()
	block := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for i := range 40 {
		block[0] = byte(i)
		_, err := p.Write(block)
		require.NoError(t, err)
		h.Write(block)
	}
	info, err := p.Commit(nil)
	require.NoError(t, err)
	assert.Equal(t, int64(40*len(block)), info.Size)
	assert.Equal(t, hex.EncodeToString(h.Sum(nil)), info.MD5)
}

// Both stores, for behaviour beyond the conformance suite.
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Run("Memory", func(t *testing.T) { fn(t, store.Memory()) })
	t.Run("Dir", func(t *testing.T) {
		s, _ := newDir(t)
		fn(t, s)
	})
}

func TestOpenAfterDelete(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		p, err := s.Create(t.Context(), "kept")
		require.NoError(t, err)
		_, err = io.WriteString(p, "still readable")
		require.NoError(t, err)
		_, err = p.Commit(nil)
		require.NoError(t, err)
		o, err := s.Open(t.Context())
		require.NoError(t, err)
		require.NoError(t, s.Delete(t.Context()))
		b, err := io.ReadAll(o)
		require.NoError(t, err)
		assert.Equal(t, "still readable", string(b))
		require.NoError(t, o.Close())
		_, err = o.Read(make([]byte, 1))
		assert.ErrorIs(t, err, os.ErrClosed, "Read after Close")
	})
}

func TestInvalidNameAndMeta(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		for _, name := range []string{"", "\xff\xfe", strings.Repeat("n", store.MaxNameLen+1)} {
			_, err := s.Create(t.Context(), name)
			require.ErrorIs(t, err, store.ErrInvalid, "name %q", name)
		}
		for _, meta := range []map[string]string{
			{"": "empty key"},
			{"k": "\xff"},
			{"big": strings.Repeat("v", store.MaxMetaSize)},
		} {
			p, err := s.Create(t.Context(), "ok")
			require.NoError(t, err)
			_, err = p.Write([]byte("data"))
			require.NoError(t, err)
			_, err = p.Commit(meta)
			require.ErrorIs(t, err, store.ErrInvalid)
			_, err = s.Stat(t.Context())
			require.ErrorIs(t, err, store.ErrEmpty, "a failed Commit leaves the slot empty")
		}
		p, err := s.Create(t.Context(), strings.Repeat("n", store.MaxNameLen))
		require.NoError(t, err, "the longest name")
		info, err := p.Commit(map[string]string{"big": strings.Repeat("v", store.MaxMetaSize-3)})
		require.NoError(t, err, "the most metadata")
		got, err := s.Stat(t.Context())
		require.NoError(t, err)
		assert.Equal(t, info, got)
	})
}

func TestPendingLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		p, err := s.Create(t.Context(), "x")
		require.NoError(t, err)
		require.NoError(t, p.Abort())
		require.NoError(t, p.Abort(), "Abort twice")
		_, err = p.Write([]byte("late"))
		require.ErrorIs(t, err, store.ErrClosed, "Write after Abort")
		_, err = p.Commit(nil)
		require.ErrorIs(t, err, store.ErrClosed, "Commit after Abort")

		p, err = s.Create(t.Context(), "y")
		require.NoError(t, err)
		info, err := p.Commit(nil)
		require.NoError(t, err)
		assert.Equal(t, int64(0), info.Size, "an empty object")
		assert.Equal(t, "d41d8cd98f00b204e9800998ecf8427e", info.MD5)
		assert.NotNil(t, info.Meta, "Meta is never nil")
		_, err = p.Write([]byte("late"))
		require.ErrorIs(t, err, store.ErrClosed, "Write after Commit")
	})
}

// A write whose context ends is aborted even if its owner never calls
// Commit or Abort.
func TestContextDoneFreesSlot(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		p, err := s.Create(ctx, "forgotten")
		require.NoError(t, err)
		_, err = p.Write([]byte("partial"))
		require.NoError(t, err)
		cancel()
		// The abort runs on its own goroutine; wait for the slot to be free.
		for {
			p2, err := s.Create(t.Context(), "next")
			if err == nil {
				require.NoError(t, p2.Abort())
				break
			}
			require.ErrorIs(t, err, store.ErrBusy)
			runtime.Gosched()
		}
		_, err = p.Write([]byte("late"))
		require.ErrorIs(t, err, context.Canceled)
	})
}

// Readers running while objects are written and deleted always see an
// object whose bytes match its Info.
func TestReadersDuringChurn(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		const rounds = 15
		var wg sync.WaitGroup
		done := make(chan struct{})
		seen := make([]int, 3)
		for r := range seen {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					o, err := s.Open(context.Background())
					if err != nil {
						if !assert.ErrorIs(t, err, store.ErrEmpty) {
							return
						}
						continue
					}
					h := md5.New()
					_, err = io.Copy(h, o)
					info := o.Info()
					o.Close()
					if !assert.NoError(t, err) ||
						!assert.Equal(t, info.MD5, hex.EncodeToString(h.Sum(nil)), "bytes of %s", info.Name) {
						return
					}
					seen[r]++
				}
			})
		}
		for i := range rounds {
			p, err := s.Create(t.Context(), fmt.Sprintf("round-%d", i))
			require.NoError(t, err)
			_, err = p.Write(bytes.Repeat([]byte{byte(i)}, 1000+i*997))
			require.NoError(t, err)
			_, err = p.Commit(nil)
			require.NoError(t, err)
			// Let the readers at the object before it goes.
			o, err := s.Open(t.Context())
			require.NoError(t, err)
			o.Close()
			require.NoError(t, s.Delete(t.Context()))
		}
		close(done)
		wg.Wait()
		t.Logf("objects read by each reader: %v", seen)
	})
}
