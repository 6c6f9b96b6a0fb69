package backup_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/internal/mongotest"
	"github.com/keepslot/keepslot/store"
)

// synthetic is a Source of generated documents: collections of docs of
// about 1 KiB, half text and half incompressible bytes, cycling through a
// precomputed pool so the benchmark measures the pipeline, not the
// generator.
type synthetic struct {
	collections int
	perColl     int64 // bytes per collection
	pool        [][]byte
}

func newSynthetic(collections int, total int64) *synthetic {
	s := &synthetic{collections: collections, perColl: total / int64(collections)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 16384 { // 18 MiB: more than zstd's window, so ratios stay honest
		noise := make([]byte, 400)
		for j := range noise {
			noise[j] = byte(rng.Uint32())
		}
		doc, _ := bson.Marshal(bson.D{
			{Key: "_id", Value: bson.NewObjectID()},
			{Key: "name", Value: fmt.Sprintf("customer-%06d", i)},
			{Key: "email", Value: fmt.Sprintf("customer%06d@example.com", i)},
			{Key: "balance", Value: rng.Float64() * 1e6},
			{Key: "created", Value: bson.NewDateTimeFromTime(time.Unix(int64(rng.Uint32()), 0))},
			{Key: "tags", Value: bson.A{"retail", "eu", fmt.Sprint(i % 17)}},
			{Key: "notes", Value: fmt.Sprintf("order history for customer %d: %s", i, "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ut enim ad minim veniam, quis nostrud exercitation ullamco laboris")},
			{Key: "blob", Value: bson.Binary{Data: noise}},
		})
		s.pool = append(s.pool, doc)
	}
	return s
}

func (s *synthetic) Plan(context.Context) (backup.Plan, error) {
	p := backup.Plan{DataSize: s.perColl * int64(s.collections)}
	for i := range s.collections {
		p.Collections = append(p.Collections, archive.Collection{DB: "bench", Name: fmt.Sprintf("c%d", i), Type: "collection"})
	}
	return p, nil
}

func (s *synthetic) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	var n int64
	for i := 0; n < s.perColl; i++ {
		doc := s.pool[i%len(s.pool)]
		if err := emit(doc); err != nil {
			return err
		}
		n += int64(len(doc))
	}
	return nil
}

// peakHeap samples the live heap while it runs and reports the highest.
type peakHeap struct {
	stop chan struct{}
	done sync.WaitGroup
	peak atomic.Uint64
}

func startPeakHeap() *peakHeap {
	runtime.GC()
	p := &peakHeap{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
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
	return p.peak.Load()
}

// BenchmarkPipeline runs the backup pipeline without a server: synthetic
// BSON -> archive -> cipher -> store (hashing), through a real Slot, for
// the default (tar, gzip level 1) and other formats. Run with -benchtime=3x.
func BenchmarkPipeline(b *testing.B) {
	for _, f := range []struct {
		name string
		fmt  archive.Format
		comp archive.Compression
	}{
		{"tar+gzip", archive.Tar, nil}, // the default: gzip level 1
		{"tar+gzip6", archive.Tar, archive.Gzip},
		{"tar+zstd", archive.Tar, archive.Zstd},
		{"archive+gzip", archive.MongoArchive, nil},
		{"archive+zstd", archive.MongoArchive, archive.Zstd},
	} {
		b.Run(f.name, func(b *testing.B) {
			benchPipeline(b, newSynthetic(8, 128<<20), f.fmt, f.comp, 0)
		})
	}
}

// BenchmarkPipelineMemory reports the peak live heap of the default
// pipeline for 64 MiB and for 10 times as much data: it must stay flat
// (within 10%). Collections spill past 1 MiB so that both sizes spill; the
// default 32 MiB threshold would hold all of the small case in memory.
func BenchmarkPipelineMemory(b *testing.B) {
	for _, size := range []int64{64 << 20, 640 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			benchPipeline(b, newSynthetic(8, size), nil, nil, 1<<20)
		})
	}
}

func benchPipeline(b *testing.B, src *synthetic, format archive.Format, comp archive.Compression, spill int64) {
	slot, err := store.Dir(b.TempDir())
	require.NoError(b, err)
	s, err := backup.NewSlot(src, backup.SlotConfig{
		Store: slot, StateDir: b.TempDir(), Format: format, Compression: comp,
		KDF: lowKDF, TempDir: b.TempDir(), SpillThreshold: spill, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(b, err)
	require.NoError(b, s.Role().Set())
	ctx := context.Background()
	size := src.perColl * int64(src.collections)
	b.SetBytes(size)
	var peak uint64
	var stored int64
	b.ResetTimer()
	for range b.N {
		ph := startPeakHeap()
		require.NoError(b, s.Start(ctx, []byte(password)))
		st, err := s.Wait(ctx)
		require.NoError(b, err)
		peak = max(peak, ph.Stop())
		require.Equal(b, backup.StateReady, st.State, st.Error)
		stored = st.Size
		b.StopTimer()
		require.NoError(b, s.Delete(ctx))
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size)/float64(stored), "ratio")
}

// BenchmarkEndToEnd backs up a dataset from the test server and, in the
// same benchmark, scans the same data with the raw driver: the backup's
// time over the scan's is reported as x-raw-scan (target: at most 1.15).
func BenchmarkEndToEnd(b *testing.B) {
	srv := mongotest.New(b)
	ctx := context.Background()
	src := newSynthetic(4, 16<<20)
	cols, _ := src.Plan(ctx)
	for _, c := range cols.Collections {
		coll := srv.Client.Database(srv.DB(c.DB)).Collection(c.Name)
		var batch []any
		require.NoError(b, src.Documents(ctx, c, func(doc []byte) error {
			batch = append(batch, bson.Raw(append([]byte(nil), doc...)))
			if len(batch) == 1000 {
				_, err := coll.InsertMany(ctx, batch)
				batch = batch[:0]
				return err
			}
			return nil
		}))
		if len(batch) > 0 {
			_, err := coll.InsertMany(ctx, batch)
			require.NoError(b, err)
		}
	}
	filter := backup.Filter{Include: []string{srv.Prefix + "*"}}

	rawScan := func() int64 {
		var n int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, c := range cols.Collections {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cur, err := srv.Client.Database(srv.DB(c.DB)).Collection(c.Name).Find(ctx, bson.D{})
				if err != nil {
					b.Error(err)
					return
				}
				var m int64
				for cur.Next(ctx) {
					m += int64(len(cur.Current))
				}
				mu.Lock()
				n += m
				mu.Unlock()
			}()
		}
		wg.Wait()
		return n
	}

	slot, err := store.Dir(b.TempDir())
	require.NoError(b, err)
	m, err := backup.New(backup.Config{Client: srv.Client, Filter: filter,
		SlotConfig: backup.SlotConfig{Store: slot, StateDir: b.TempDir(), KDF: lowKDF, TempDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)}})
	require.NoError(b, err)
	defer m.Close()
	require.NoError(b, m.Role().Set())

	var scan, full time.Duration
	var bytes int64
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		bytes = rawScan()
		scan += time.Since(t0)

		t0 = time.Now()
		require.NoError(b, m.Start(ctx, []byte(password)))
		st, err := m.Wait(ctx)
		require.NoError(b, err)
		require.Equal(b, backup.StateReady, st.State, st.Error)
		full += time.Since(t0)
		b.StopTimer()
		require.NoError(b, m.Delete(ctx))
		b.StartTimer()
	}
	b.SetBytes(bytes)
	b.ReportMetric(float64(bytes)/scan.Seconds()*float64(b.N)/1e6, "scan-MB/s")
	b.ReportMetric(float64(bytes)/full.Seconds()*float64(b.N)/1e6, "backup-MB/s")
	b.ReportMetric(full.Seconds()/scan.Seconds(), "x-raw-scan")
}
