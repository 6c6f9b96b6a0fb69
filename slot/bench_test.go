package slot_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/testnode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// peakHeap samples the live heap while it runs and reports the highest,
// less what was live when it started (the benchmark's own data, such as
// the synthetic source's document pool): the heap the work itself took.
type peakHeap struct {
	stop chan struct{}
	done sync.WaitGroup
	base uint64
	peak atomic.Uint64
}

func startPeakHeap() *peakHeap {
	runtime.GC()
	p := &peakHeap{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	p.base = sample[0].Value.Uint64()
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > p.peak.Load() {
				p.peak.Store(v)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakHeap) Stop() uint64 {
	close(p.stop)
	p.done.Wait()
	return p.peak.Load() - min(p.base, p.peak.Load())
}

// stdlibGzip is the standard library's serial gzip at level 6, the
// baseline the pipeline is measured against.
type stdlibGzip struct{}

func (stdlibGzip) Name() string      { return "gzip" }
func (stdlibGzip) Extension() string { return ".gz" }
func (stdlibGzip) Match(head []byte) bool {
	return archive.NewGzip(archive.DefaultGzipLevel).Match(head)
}
func (stdlibGzip) NewWriter(w io.Writer) (io.WriteCloser, error) {
	return gzip.NewWriterLevel(w, gzip.DefaultCompression)
}
func (stdlibGzip) NewReader(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }

// BenchmarkPipeline runs the backup pipeline without a server: synthetic
// BSON -> archive -> cipher -> store (hashing), through a real Slot, for
// the default (tar, gzip level 1), other formats and compressions, and the
// baseline of a serial standard-library gzip at level 6. Run with
// -benchtime=3x, and -cpu 1,2 to see how it scales.
func BenchmarkPipeline(b *testing.B) {
	for _, f := range []struct {
		name string
		fmt  archive.Format
		comp archive.Compression
	}{
		{"tar+gzip", archive.TarFormat{}, nil}, // the default: gzip level 1
		{"tar+gzip6", archive.TarFormat{}, archive.NewGzip(archive.DefaultGzipLevel)},
		{"tar+zstd", archive.TarFormat{}, archive.NewZstd(archive.DefaultZstdLevel)},
		{"archive+gzip", archive.ArchiveFormat{}, nil},
		{"archive+zstd", archive.ArchiveFormat{}, archive.NewZstd(archive.DefaultZstdLevel)},
		{"tar+stdlib-gzip6", archive.TarFormat{}, stdlibGzip{}}, // the baseline
	} {
		b.Run(f.name, func(b *testing.B) {
			benchPipeline(b, testnode.NewSynthetic(8, 128<<20), f.fmt, f.comp, 0)
		})
	}
}

// BenchmarkPipelineMemory reports the peak live heap of the default
// pipeline for 64 MiB and for 10 times as much data. With the default
// settings it must stay at most 64 MiB: the tar writer's 32 MiB memory
// budget holds most of the small case's 8 compressed collections, and
// bounds the large case's, which spill. With a 1 MiB budget both sizes
// spill from the start, and the rest of the pipeline must stay flat
// (within 10%).
func BenchmarkPipelineMemory(b *testing.B) {
	for _, spill := range []int64{0, 1 << 20} {
		for _, size := range []int64{64 << 20, 640 << 20} {
			name := fmt.Sprintf("%dMiB", size>>20)
			if spill > 0 {
				name += fmt.Sprintf("/spill%dMiB", spill>>20)
			}
			b.Run(name, func(b *testing.B) {
				benchPipeline(b, testnode.NewSynthetic(8, size), nil, nil, spill)
			})
		}
	}
}

func benchPipeline(b *testing.B, src *testnode.Synthetic, format archive.Format, comp archive.Compression, spill int64) {
	dir, err := store.Dir(b.TempDir())
	require.NoError(b, err)
	s, err := slot.New(src, slot.Config{
		Store: dir, StateDir: b.TempDir(), Format: format, Compression: comp,
		KDF: testnode.LowKDF, TempDir: b.TempDir(), SpillThreshold: spill, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(b, err)
	require.NoError(b, s.Role().Set())
	ctx := context.Background()
	size := src.Size()
	b.SetBytes(size)
	var peak uint64
	var stored int64
	b.ResetTimer()
	for range b.N {
		ph := startPeakHeap()
		require.NoError(b, s.Start(ctx, []byte(testnode.Password)))
		st, err := s.Wait(ctx)
		require.NoError(b, err)
		peak = max(peak, ph.Stop())
		require.Equal(b, slot.StateReady, st.State, st.Error)
		stored = st.Size
		b.StopTimer()
		require.NoError(b, s.Delete(ctx))
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size)/float64(stored), "ratio")
}
