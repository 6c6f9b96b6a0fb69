package backup_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// BenchmarkEndToEnd backs up a dataset from the test server and, in the
// same benchmark, scans the same data with the raw driver, the two in
// turns after an untimed round: the backup's time over the scan's is
// reported as x-raw-scan (target: at most 1.05).
func BenchmarkEndToEnd(b *testing.B) {
	srv := mongotest.New(b)
	ctx := context.Background()
	src := testnode.NewSynthetic(4, 16<<20)
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
	filter := namespace.Filter{Include: []string{srv.Prefix + "*"}}

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

	dir, err := store.Dir(b.TempDir())
	require.NoError(b, err)
	m, err := backup.New(&backup.Source{Conn: conn.Config{Client: srv.Client}, Filter: filter},
		slot.Config{Store: dir, StateDir: b.TempDir(), KDF: testnode.LowKDF, Spill: archive.Spill{Dir: b.TempDir()}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	defer m.Close()
	require.NoError(b, m.Role().Set())

	backupOnce := func() {
		require.NoError(b, m.Start(ctx, []byte(testnode.Password)))
		st, err := m.Wait(ctx)
		require.NoError(b, err)
		require.Equal(b, slot.StateReady, st.State, st.Error)
	}
	// One untimed round first: the server settles what the inserts left it
	// to do (SQLite's checkpoints), which would otherwise land on whichever
	// side runs first.
	rawScan()
	backupOnce()
	require.NoError(b, m.Delete(ctx))

	var scan, full time.Duration
	var bytes int64
	b.ResetTimer()
	for i := range b.N {
		for side := range 2 { // alternate which side runs first
			t0 := time.Now()
			if (i+side)%2 == 0 {
				bytes = rawScan()
				scan += time.Since(t0)
			} else {
				backupOnce()
				full += time.Since(t0)
				b.StopTimer()
				require.NoError(b, m.Delete(ctx))
				b.StartTimer()
			}
		}
	}
	b.SetBytes(bytes)
	b.ReportMetric(float64(bytes)/scan.Seconds()*float64(b.N)/1e6, "scan-MB/s")
	b.ReportMetric(float64(bytes)/full.Seconds()*float64(b.N)/1e6, "backup-MB/s")
	b.ReportMetric(full.Seconds()/scan.Seconds(), "x-raw-scan")
}
