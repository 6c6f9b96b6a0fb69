package storetest

import (
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/keepslot/keepslot/store"
)

// DefaultBenchSize is the object size Benchmark uses when given no sizes.
const DefaultBenchSize = 64 << 20

// Benchmark runs write and read benchmarks on stores made by newStore, one
// store per sub-benchmark, for objects of each of sizes (DefaultBenchSize
// when none is given):
//
//   - Write/<size>: Create, Write in 1 MiB pieces, Commit (hashes included);
//     the object is deleted outside the timer.
//   - Read/<size>: Open and read the whole object in 1 MiB pieces.
//
// Both report MB/s and peak-heap-MiB, the most heap in use above what was in
// use before the operation, sampled every millisecond: what the store
// holds in memory for one object, which should not grow with its size.
func Benchmark(b *testing.B, newStore func(b *testing.B) store.Store, sizes ...int64) {
	if len(sizes) == 0 {
		sizes = []int64{DefaultBenchSize}
	}
	for _, size := range sizes {
		b.Run("Write/"+sizeName(size), func(b *testing.B) {
			benchWrite(b, newStore(b), size)
		})
		b.Run("Read/"+sizeName(size), func(b *testing.B) {
			benchRead(b, newStore(b), size)
		})
	}
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}

// benchPiece is what the benchmarks write: 1 MiB of varied bytes.
var benchPiece = content(99, 1<<20)

// writeObject stores size bytes under name, in 1 MiB writes.
func writeObject(b *testing.B, s store.Store, size int64) store.Info {
	p, err := s.Create(b.Context(), "bench")
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	for n := int64(0); n < size; {
		piece := benchPiece[:min(int64(len(benchPiece)), size-n)]
		k, err := p.Write(piece)
		n += int64(k)
		if err != nil {
			p.Abort()
			b.Fatalf("Write: %v", err)
		}
	}
	info, err := p.Commit(nil)
	if err != nil {
		b.Fatalf("Commit: %v", err)
	}
	if info.Size != size {
		b.Fatalf("Commit stored %d bytes, want %d", info.Size, size)
	}
	return info
}

func benchWrite(b *testing.B, s store.Store, size int64) {
	b.SetBytes(size)
	b.ReportAllocs()
	var peak int64
	for b.Loop() {
		h := startHeapWatch()
		writeObject(b, s, size)
		peak = max(peak, h.stop())
		b.StopTimer()
		if err := s.Delete(b.Context()); err != nil {
			b.Fatalf("Delete: %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

func benchRead(b *testing.B, s store.Store, size int64) {
	writeObject(b, s, size)
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ReportAllocs()
	var peak int64
	for b.Loop() {
		h := startHeapWatch()
		o, err := s.Open(b.Context())
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{o}, buf)
		o.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes of %d: %v", n, size, err)
		}
		peak = max(peak, h.stop())
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// heapWatch samples the bytes of live and not yet swept heap objects.
type heapWatch struct {
	base int64
	peak int64
	done chan struct{}
	wg   sync.WaitGroup
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

var heapMu sync.Mutex // heapSample is shared

func heapNow() int64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	return int64(heapSample[0].Value.Uint64())
}

func startHeapWatch() *heapWatch {
	runtime.GC()
	h := &heapWatch{base: heapNow(), done: make(chan struct{})}
	h.wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			h.peak = max(h.peak, heapNow())
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	})
	return h
}

// stop ends the watch and returns the peak above the base.
func (h *heapWatch) stop() int64 {
	close(h.done)
	h.wg.Wait()
	h.peak = max(h.peak, heapNow())
	return max(h.peak-h.base, 0)
}
