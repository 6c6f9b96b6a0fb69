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
	"github.com/keepslot/keepslot/internal/testkit/testnode"
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
// the default (tar, gzip level 7), other formats and compressions, and the
// baseline of a serial standard-library gzip at level 6, on documents half
// of random bytes (testnode.NewSynthetic). Run with -benchtime=3x, and
// -cpu 1,2 to see how it scales. BenchmarkGzipLevels measures on
// application data.
func BenchmarkPipeline(b *testing.B) {
	for _, f := range []struct {
		name string
		fmt  archive.Format
		comp archive.Compression
	}{
		{"tar+gzip", archive.TarFormat{}, nil}, // the default: gzip level 7
		{"tar+gzip1", archive.TarFormat{}, archive.NewGzip(1)},
		{"tar+gzip6", archive.TarFormat{}, archive.NewGzip(6)},
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
// settings it must stay flat (within 10%): the tar writer's 4 MiB memory
// budget is full in both cases and the rest spills. With a 1 MiB budget
// the same holds. (BenchmarkBackupRSS, in package backup, measures the
// resident memory of a real process.)
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

// BenchmarkGzipLevels is the curve the default gzip level was chosen on:
// the pipeline of BenchmarkPipeline on application data (testnode.Records,
// 64 MiB in 8 collections) at each level, in turns with the baseline, the
// serial standard-library gzip at level 6 that mongodump --gzip writes
// with. Reported: the output's size over the baseline's (x-size, at most
// 1.05 for the default) and the speed over the baseline's (x-speed, at
// least 4 for the default on 2 cores).
func BenchmarkGzipLevels(b *testing.B) {
	src := testnode.NewSyntheticRecords(8, 64<<20)
	for _, level := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9} {
		b.Run(fmt.Sprint(level), func(b *testing.B) {
			base := newBenchSlot(b, src, nil, stdlibGzip{}, 0)
			s := newBenchSlot(b, src, nil, archive.NewGzip(level), 0)
			b.SetBytes(src.Size())
			var baseTime, levelTime time.Duration
			var baseSize, levelSize int64
			for i := range b.N {
				for side := range 2 { // alternate which runs first
					if (i+side)%2 == 0 {
						b.StopTimer() // ns/op and MB/s are the level's
						d, n := runBenchSlot(b, base)
						baseTime, baseSize = baseTime+d, n
						b.StartTimer()
					} else {
						d, n := runBenchSlot(b, s)
						levelTime, levelSize = levelTime+d, n
					}
				}
			}
			b.ReportMetric(float64(levelSize)/float64(baseSize), "x-size")
			b.ReportMetric(baseTime.Seconds()/levelTime.Seconds(), "x-speed")
			b.ReportMetric(float64(src.Size())/float64(levelSize), "ratio")
		})
	}
}

// newBenchSlot returns a Slot over src, in the role, writing to a store of
// the benchmark's.
func newBenchSlot(b *testing.B, src slot.Source, format archive.Format, comp archive.Compression, spill int64) *slot.Slot {
	dir, err := store.Dir(b.TempDir())
	require.NoError(b, err)
	s, err := slot.New(src, slot.Config{
		Store: dir, StateDir: b.TempDir(), Format: format, Compression: comp,
		KDF: testnode.LowKDF, Spill: archive.Spill{Dir: b.TempDir(), Threshold: spill}, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(b, err)
	require.NoError(b, s.Role().Set())
	return s
}

// runBenchSlot backs up once with s, deletes the backup, and returns the
// backup's wall time and size.
func runBenchSlot(b *testing.B, s *slot.Slot) (time.Duration, int64) {
	ctx := context.Background()
	t0 := time.Now()
	require.NoError(b, s.Start(ctx, []byte(testnode.Password)))
	st, err := s.Wait(ctx)
	require.NoError(b, err)
	d := time.Since(t0)
	require.Equal(b, slot.StateReady, st.State, st.Error)
	require.NoError(b, s.Delete(ctx))
	return d, st.Size
}

func benchPipeline(b *testing.B, src *testnode.Synthetic, format archive.Format, comp archive.Compression, spill int64) {
	s := newBenchSlot(b, src, format, comp, spill)
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
