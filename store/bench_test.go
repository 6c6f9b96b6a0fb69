package store_test

import (
	"crypto/md5"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/storetest"
)

const benchSize = 64 << 20

// BenchmarkDir runs storetest's write and read benchmarks on a DirStore
// (Write/64MiB, Read/64MiB; MB/s and peak-heap-MiB).
func BenchmarkDir(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) store.Store {
		s, err := store.Dir(b.TempDir())
		require.NoError(b, err)
		return s
	})
}

// BenchmarkMemory runs them on a MemoryStore, whose heap holds the object.
func BenchmarkMemory(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) store.Store { return store.Memory() })
}

// BenchmarkDirWrite32K writes 64 MiB in the 32 KiB pieces io.Copy uses.
func BenchmarkDirWrite32K(b *testing.B) {
	s, err := store.Dir(b.TempDir())
	require.NoError(b, err)
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.Create(b.Context(), "bench")
		require.NoError(b, err)
		for n := 0; n < benchSize; n += len(buf) {
			if _, err := p.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		info, err := p.Commit(nil)
		require.NoError(b, err)
		require.Equal(b, int64(benchSize), info.Size)
		b.StopTimer()
		require.NoError(b, s.Delete(b.Context()))
		b.StartTimer()
	}
}

// BenchmarkHashesInline is the baseline the pipeline improves on: md5 then
// sha256 of the same 64 MiB, one after the other on the caller's goroutine.
func BenchmarkHashesInline(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	for b.Loop() {
		m, h := md5.New(), sha256.New()
		for n := 0; n < benchSize; n += len(buf) {
			m.Write(buf)
			h.Write(buf)
		}
		m.Sum(nil)
		h.Sum(nil)
	}
}

// BenchmarkSHA256 is the floor of any store here: SHA-256 alone.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	for b.Loop() {
		h := sha256.New()
		for n := 0; n < benchSize; n += len(buf) {
			h.Write(buf)
		}
		h.Sum(nil)
	}
}
