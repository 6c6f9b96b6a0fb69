// Package storetest is a conformance suite for implementations of
// store.Store, in the spirit of testing/fstest.
//
// A test of an implementation calls Run with a function that makes a fresh,
// empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return mystore.New(t.TempDir()) })
//	}
package storetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
)

// Run runs the conformance suite against fresh stores made by newStore. Each
// subtest calls newStore once and expects an empty slot. The FreeSpace
// subtest runs for stores that report their free space (store.As finds a
// store.SpaceReporter in them) and skips for the others.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Empty", testEmpty},
		{"RoundTrip", testRoundTrip},
		{"Occupied", testOccupied},
		{"Busy", testBusy},
		{"AbortLeavesEmpty", testAbort},
		{"CommitAtomic", testCommitAtomic},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentCreateCommit", testConcurrentCreateCommit},
		{"Metadata", testMetadata},
		{"Hashes", testHashes},
		{"OpenReadSeek", testOpenReadSeek},
		{"ContextCancel", testContextCancel},
		{"ContextDoneBeforeCreate", testContextDoneBeforeCreate},
		{"Delete", testDelete},
		{"PendingClosed", testPendingClosed},
		{"FreeSpace", testFreeSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			require.NotNil(t, s, "newStore returned nil")
			tt.fn(t, s)
		})
	}
}

// content returns n deterministic pseudo-random bytes.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// put stores data under name in one Create, Write, Commit.
func put(t *testing.T, s store.Store, name string, data []byte, meta map[string]string) store.Info {
	t.Helper()
	p, err := s.Create(t.Context(), name)
	require.NoError(t, err, "Create")
	n, err := p.Write(data)
	require.NoError(t, err, "Write")
	require.Equal(t, len(data), n, "Write count")
	info, err := p.Commit(meta)
	require.NoError(t, err, "Commit")
	return info
}

func requireEmpty(t *testing.T, s store.Store) {
	t.Helper()
	_, err := s.Stat(t.Context())
	require.ErrorIs(t, err, store.ErrEmpty, "Stat of an empty slot")
	o, err := s.Open(t.Context())
	if err == nil {
		o.Close()
	}
	require.ErrorIs(t, err, store.ErrEmpty, "Open of an empty slot")
}

func sums(b []byte) (string, string) {
	m := md5.Sum(b)
	h := sha256.Sum256(b)
	return hex.EncodeToString(m[:]), hex.EncodeToString(h[:])
}

func requireSameInfo(t *testing.T, want, got store.Info) {
	t.Helper()
	assert.Equal(t, want.Name, got.Name, "Name")
	assert.Equal(t, want.Size, got.Size, "Size")
	assert.Equal(t, want.MD5, got.MD5, "MD5")
	assert.Equal(t, want.SHA256, got.SHA256, "SHA256")
	assert.True(t, want.Created.Equal(got.Created), "Created: want %v, got %v", want.Created, got.Created)
	assert.Equal(t, len(want.Meta), len(got.Meta), "len(Meta)")
	for k, v := range want.Meta {
		assert.Equal(t, v, got.Meta[k], "Meta[%q]", k)
	}
	require.False(t, t.Failed())
}

func testEmpty(t *testing.T, s store.Store) {
	requireEmpty(t, s)
	require.ErrorIs(t, s.Delete(t.Context()), store.ErrEmpty, "Delete of an empty slot")
}

func testRoundTrip(t *testing.T, s store.Store) {
	data := content(1, 100_000)
	before := time.Now()
	info := put(t, s, "backup-1.enc", data, map[string]string{"node": "a"})
	md5hex, sha256hex := sums(data)
	assert.Equal(t, "backup-1.enc", info.Name)
	assert.Equal(t, int64(len(data)), info.Size)
	assert.Equal(t, md5hex, info.MD5)
	assert.Equal(t, sha256hex, info.SHA256)
	assert.Equal(t, map[string]string{"node": "a"}, info.Meta)
	assert.False(t, info.Created.Before(before.Add(-2*time.Second)), "Created %v is before the write began at %v", info.Created, before)

	got, err := s.Stat(t.Context())
	require.NoError(t, err)
	requireSameInfo(t, info, got)

	o, err := s.Open(t.Context())
	require.NoError(t, err)
	defer o.Close()
	requireSameInfo(t, info, o.Info())
	b, err := io.ReadAll(o)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, b), "Open returned other bytes than were written")
}

func testOccupied(t *testing.T, s store.Store) {
	info := put(t, s, "first", []byte("one"), nil)
	p, err := s.Create(t.Context(), "second")
	require.ErrorIs(t, err, store.ErrSlotOccupied, "Create over a stored object")
	require.Nil(t, p)
	got, err := s.Stat(t.Context())
	require.NoError(t, err)
	requireSameInfo(t, info, got)
}

func testBusy(t *testing.T, s store.Store) {
	p, err := s.Create(t.Context(), "first")
	require.NoError(t, err)
	_, err = p.Write([]byte("partial"))
	require.NoError(t, err)

	p2, err := s.Create(t.Context(), "second")
	require.ErrorIs(t, err, store.ErrBusy, "Create while a write is pending")
	require.Nil(t, p2)
	require.ErrorIs(t, s.Delete(t.Context()), store.ErrBusy, "Delete while a write is pending")
	requireEmpty(t, s)

	require.NoError(t, p.Abort())
	p, err = s.Create(t.Context(), "third")
	require.NoError(t, err, "Create after Abort")
	require.NoError(t, p.Abort())
}

func testAbort(t *testing.T, s store.Store) {
	p, err := s.Create(t.Context(), "aborted")
	require.NoError(t, err)
	_, err = p.Write(content(2, 3<<20))
	require.NoError(t, err)
	require.NoError(t, p.Abort())
	requireEmpty(t, s)

	info := put(t, s, "next", []byte("next"), nil)
	assert.Equal(t, "next", info.Name)
	assert.Equal(t, int64(4), info.Size)
}

func testCommitAtomic(t *testing.T, s store.Store) {
	data := content(3, 2<<20+5)
	p, err := s.Create(t.Context(), "atomic")
	require.NoError(t, err)
	requireEmpty(t, s)
	for part := range slices.Chunk(data, 300_001) {
		_, err := p.Write(part)
		require.NoError(t, err)
		requireEmpty(t, s)
	}
	info, err := p.Commit(map[string]string{"k": "v"})
	require.NoError(t, err)

	got, err := s.Stat(t.Context())
	require.NoError(t, err)
	requireSameInfo(t, info, got)
	o, err := s.Open(t.Context())
	require.NoError(t, err)
	defer o.Close()
	b, err := io.ReadAll(o)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, b), "the committed object differs from what was written")
}

const racers = 50

// race calls Create from racers goroutines at once and returns the winners.
// Every loser must fail with ErrBusy or ErrSlotOccupied.
func race(t *testing.T, s store.Store, then func(p store.Pending)) int {
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners int
		others  []error
	)
	for range racers {
		wg.Go(func() {
			<-start
			p, err := s.Create(context.Background(), "racer")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !errors.Is(err, store.ErrBusy) && !errors.Is(err, store.ErrSlotOccupied) {
					others = append(others, err)
				}
				return
			}
			winners++
			then(p)
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, others, "losers of the race must fail with ErrBusy or ErrSlotOccupied")
	return winners
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	var won []store.Pending
	winners := race(t, s, func(p store.Pending) { won = append(won, p) })
	require.Equal(t, 1, winners, "exactly one of %d concurrent Create calls must win", racers)
	_, err := won[0].Write([]byte("winner"))
	require.NoError(t, err)
	_, err = won[0].Commit(nil)
	require.NoError(t, err)
	got, err := s.Stat(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(6), got.Size)
}

func testConcurrentCreateCommit(t *testing.T, s store.Store) {
	// The winner commits at once, so that later racers meet a stored object.
	winners := race(t, s, func(p store.Pending) {
		_, err := p.Write([]byte("winner"))
		assert.NoError(t, err)
		_, err = p.Commit(nil)
		assert.NoError(t, err)
	})
	require.Equal(t, 1, winners, "exactly one of %d concurrent Create calls must win", racers)
	got, err := s.Stat(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(6), got.Size)
}

func testMetadata(t *testing.T, s store.Store) {
	meta := map[string]string{
		"node":     "rs0/host-1:27017",
		"unicode":  "Grüße, 世界",
		"empty":    "",
		"with\"\n": "quotes\tand\\escapes",
	}
	want := map[string]string{}
	for k, v := range meta {
		want[k] = v
	}
	info := put(t, s, "meta", []byte("x"), meta)
	assert.Equal(t, want, info.Meta)

	// The store keeps its own copy of what it was given...
	meta["node"] = "changed"
	meta["added"] = "later"
	got, err := s.Stat(t.Context())
	require.NoError(t, err)
	assert.Equal(t, want, got.Meta, "Stat after changing the map given to Commit")

	// ...and hands out copies.
	got.Meta["node"] = "changed"
	info.Meta["node"] = "changed"
	got, err = s.Stat(t.Context())
	require.NoError(t, err)
	assert.Equal(t, want, got.Meta, "Stat after changing maps it returned")
	o, err := s.Open(t.Context())
	require.NoError(t, err)
	defer o.Close()
	assert.Equal(t, want, o.Info().Meta, "Object.Info")
}

func testHashes(t *testing.T, s store.Store) {
	for i, size := range []int{0, 1, 1000, 1 << 20, 1<<20 + 1, 3<<20 + 12345} {
		data := content(uint64(10+i), size)
		p, err := s.Create(t.Context(), "hashed")
		require.NoError(t, err)
		// Write in uneven pieces, some empty, to cross any internal buffer
		// boundaries at odd places.
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for rest := data; ; {
			k := min(len(rest), r.IntN(200_000))
			n, err := p.Write(rest[:k])
			require.NoError(t, err)
			require.Equal(t, k, n)
			rest = rest[k:]
			if len(rest) == 0 {
				break
			}
		}
		info, err := p.Commit(nil)
		require.NoError(t, err)
		md5hex, sha256hex := sums(data)
		assert.Equal(t, int64(size), info.Size, "size %d", size)
		assert.Equal(t, md5hex, info.MD5, "md5 of %d bytes", size)
		assert.Equal(t, sha256hex, info.SHA256, "sha256 of %d bytes", size)
		got, err := s.Stat(t.Context())
		require.NoError(t, err)
		assert.Equal(t, md5hex, got.MD5, "md5 from Stat, %d bytes", size)
		assert.Equal(t, sha256hex, got.SHA256, "sha256 from Stat, %d bytes", size)
		require.NoError(t, s.Delete(t.Context()))
	}
}

func testOpenReadSeek(t *testing.T, s store.Store) {
	data := content(4, 1<<20+777)
	size := int64(len(data))
	put(t, s, "random-access", data, nil)
	o, err := s.Open(t.Context())
	require.NoError(t, err)
	defer func() { require.NoError(t, o.Close()) }()
	assert.Equal(t, size, o.Info().Size)

	end, err := o.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	assert.Equal(t, size, end, "Seek to the end gives the size")
	n, err := o.Read(make([]byte, 10))
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.EOF, "Read at the end")

	pos, err := o.Seek(1000, io.SeekStart)
	require.NoError(t, err)
	assert.Equal(t, int64(1000), pos)
	b := make([]byte, 5000)
	_, err = io.ReadFull(o, b)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data[1000:6000], b), "Read after Seek")
	pos, err = o.Seek(-500, io.SeekCurrent)
	require.NoError(t, err)
	assert.Equal(t, int64(5500), pos)
	_, err = io.ReadFull(o, b[:10])
	require.NoError(t, err)
	assert.Equal(t, data[5500:5510], b[:10], "Read after a relative Seek")

	// ReaderAt, from several goroutines at once, leaves the stream alone.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			off := int64(i) * size / 8
			buf := make([]byte, 4096)
			n, err := o.ReadAt(buf, off)
			if assert.NoError(t, err) {
				assert.True(t, bytes.Equal(data[off:off+int64(n)], buf[:n]), "ReadAt %d", off)
			}
		})
	}
	wg.Wait()
	tail := make([]byte, 100)
	n, err = o.ReadAt(tail, size-40)
	assert.Equal(t, 40, n, "ReadAt across the end")
	assert.ErrorIs(t, err, io.EOF, "ReadAt across the end")
	assert.True(t, bytes.Equal(data[size-40:], tail[:n]))

	pos, err = o.Seek(0, io.SeekCurrent)
	require.NoError(t, err)
	assert.Equal(t, int64(5510), pos, "ReadAt must not move the stream")
	rest, err := io.ReadAll(o)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data[5510:], rest), "Read to the end")
}

func testContextCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p, err := s.Create(ctx, "cancelled")
	require.NoError(t, err)
	_, err = p.Write(content(5, 2<<20))
	require.NoError(t, err)
	cancel()
	_, err = p.Write([]byte("more"))
	require.ErrorIs(t, err, context.Canceled, "Write after the context is done")
	_, err = p.Commit(nil)
	require.ErrorIs(t, err, context.Canceled, "Commit after the context is done")
	requireEmpty(t, s)
	assert.NoError(t, p.Abort(), "Abort after a failed Commit")

	info := put(t, s, "after", []byte("after"), nil)
	assert.Equal(t, "after", info.Name)

	// Cancelled before any write, and Commit straight away.
	require.NoError(t, s.Delete(t.Context()))
	ctx, cancel = context.WithCancel(t.Context())
	p, err = s.Create(ctx, "cancelled")
	require.NoError(t, err)
	cancel()
	_, err = p.Commit(nil)
	require.ErrorIs(t, err, context.Canceled, "Commit after the context is done")
	requireEmpty(t, s)
	p, err = s.Create(t.Context(), "again")
	require.NoError(t, err)
	require.NoError(t, p.Abort())
}

func testContextDoneBeforeCreate(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p, err := s.Create(ctx, "never")
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, p)
	requireEmpty(t, s)
	put(t, s, "next", []byte("x"), nil)
}

func testDelete(t *testing.T, s store.Store) {
	require.ErrorIs(t, s.Delete(t.Context()), store.ErrEmpty)
	put(t, s, "first", []byte("first"), nil)
	require.NoError(t, s.Delete(t.Context()))
	requireEmpty(t, s)
	require.ErrorIs(t, s.Delete(t.Context()), store.ErrEmpty, "second Delete")

	info := put(t, s, "second", []byte("second!"), nil)
	assert.Equal(t, "second", info.Name)
	o, err := s.Open(t.Context())
	require.NoError(t, err)
	defer o.Close()
	b, err := io.ReadAll(o)
	require.NoError(t, err)
	assert.Equal(t, "second!", string(b), "the object stored after a Delete")
}

func testPendingClosed(t *testing.T, s store.Store) {
	p, err := s.Create(t.Context(), "closed")
	require.NoError(t, err)
	_, err = p.Write([]byte("abc"))
	require.NoError(t, err)
	info, err := p.Commit(nil)
	require.NoError(t, err)
	assert.NoError(t, p.Abort(), "Abort after Commit is a no-op")
	_, err = p.Write([]byte("more"))
	assert.Error(t, err, "Write after Commit")
	_, err = p.Commit(nil)
	assert.Error(t, err, "Commit after Commit")
	got, err := s.Stat(t.Context())
	require.NoError(t, err)
	requireSameInfo(t, info, got)
}

func testFreeSpace(t *testing.T, s store.Store) {
	sr, ok := store.As[store.SpaceReporter](s)
	if !ok {
		t.Skip("the store does not report its free space")
	}
	free, err := sr.FreeSpace(t.Context())
	require.NoError(t, err, "FreeSpace")
	assert.GreaterOrEqual(t, free, int64(0), "FreeSpace")

	// It still answers while a write is pending and once an object is stored.
	p, err := s.Create(t.Context(), "space")
	require.NoError(t, err)
	_, err = p.Write(content(6, 1<<20))
	require.NoError(t, err)
	_, err = sr.FreeSpace(t.Context())
	require.NoError(t, err, "FreeSpace while a write is pending")
	_, err = p.Commit(nil)
	require.NoError(t, err)
	free, err = sr.FreeSpace(t.Context())
	require.NoError(t, err, "FreeSpace with an object stored")
	assert.GreaterOrEqual(t, free, int64(0), "FreeSpace")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = sr.FreeSpace(ctx)
	require.ErrorIs(t, err, context.Canceled, "FreeSpace with a done context")
}
