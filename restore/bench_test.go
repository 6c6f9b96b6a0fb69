package restore_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// BenchmarkRestore restores a backup of 16 MiB of BSON in 4 collections
// into the embedded server and, in the same benchmark, inserts the same
// documents with the raw driver as Restore does: InsertMany, unordered, in
// batches of 1000, 4 batches at once. It reports the restore's MB/s of BSON
// and documents/s, the raw inserts' MB/s, and the restore's time over
// theirs as x-raw-insert (target: at most 1.2).
func BenchmarkRestore(b *testing.B) {
	srv := mongotest.New(b)
	ctx := context.Background()
	src := testnode.NewSynthetic(4, 16<<20)

	s, err := slot.New(src, slot.Config{Store: store.Memory(), StateDir: b.TempDir(), KDF: testnode.LowKDF,
		Spill: archive.Spill{Dir: b.TempDir()}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	require.NoError(b, s.Role().Set())
	require.NoError(b, s.Start(ctx, []byte(testnode.Password)))
	st, err := s.Wait(ctx)
	require.NoError(b, err)
	require.Equal(b, slot.StateReady, st.State, st.Error)
	var file bytes.Buffer
	_, err = s.Retrieve(ctx, &file)
	require.NoError(b, err)
	require.NoError(b, s.Close())

	// The raw inserts' batches, built once, outside the timing.
	plan, _ := src.Plan(ctx)
	type rawBatch struct {
		coll string
		docs []any
	}
	var batches []rawBatch
	var bsonBytes, docs int64
	for _, c := range plan.Collections {
		var cur []any
		require.NoError(b, src.Documents(ctx, c, func(doc []byte) error {
			cur = append(cur, bson.Raw(append([]byte(nil), doc...)))
			bsonBytes += int64(len(doc))
			docs++
			if len(cur) == 1000 {
				batches = append(batches, rawBatch{c.Name, cur})
				cur = nil
			}
			return nil
		}))
		if len(cur) > 0 {
			batches = append(batches, rawBatch{c.Name, cur})
		}
	}
	rawInsert := func() {
		work := make(chan rawBatch)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for bt := range work {
					_, err := srv.Client.Database(srv.DB("raw")).Collection(bt.coll).InsertMany(ctx, bt.docs, options.InsertMany().SetOrdered(false))
					if err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for _, bt := range batches {
			work <- bt
		}
		close(work)
		wg.Wait()
	}
	drop := func() {
		for _, db := range []string{srv.DB("raw"), srv.DB("restored")} {
			require.NoError(b, srv.Client.Database(db).Drop(ctx))
		}
	}

	var raw, restoring time.Duration
	b.SetBytes(bsonBytes)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		rawInsert()
		raw += time.Since(t0)

		t0 = time.Now()
		rep, err := restore.Run(ctx, bytes.NewReader(file.Bytes()), int64(file.Len()), []byte(testnode.Password), &restore.Options{
			Conn:    conn.Config{Client: srv.Client},
			Renames: []namespace.Rename{{From: "bench.*", To: srv.DB("restored") + ".*"}},
			Logger:  slog.New(slog.DiscardHandler),
		})
		restoring += time.Since(t0)
		require.NoError(b, err)
		require.Equal(b, docs, rep.Documents)

		b.StopTimer()
		drop()
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(bsonBytes)*n/restoring.Seconds()/1e6, "restore-MB/s")
	b.ReportMetric(float64(docs)*n/restoring.Seconds(), "restore-docs/s")
	b.ReportMetric(float64(bsonBytes)*n/raw.Seconds()/1e6, "raw-insert-MB/s")
	b.ReportMetric(restoring.Seconds()/raw.Seconds(), "x-raw-insert")
}
