package drill

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// BenchmarkDrill drills a backup of 10 MB of BSON in 4 collections on the
// embedded server and, in turns on the same server, restores the same
// backup plainly into renamed namespaces and drops them, as the drill's
// clean-up does. It reports both wall times per run, the drill's over the
// restore's as x-restore (target: at most 1.10), the drill's read-back and
// comparisons as check-s/op, and the drill's measured time to restore over
// the plain restore's as rto-x-restore.
//
// On the embedded FerretDB the read-back dominates the overhead, since
// FerretDB reads documents back about as slowly as it inserts them;
// docs/benchmarks.md has the figures.
func BenchmarkDrill(b *testing.B) {
	srv := mongotest.New(b)
	ctx := context.Background()
	src := testnode.NewSynthetic(4, 10<<20)
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
	data := file.Bytes()
	logger := slog.New(slog.DiscardHandler)

	var drilling, restoring, rto, check time.Duration
	var bsonBytes int64
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		rep, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &restore.Options{
			Conn:    conn.Config{Client: srv.Client},
			Renames: namespace.Renames{{From: "*", To: srv.DB("plain_") + "*"}},
			Logger:  logger,
		})
		require.NoError(b, err)
		for _, ns := range rep.Namespaces {
			db, _, _ := splitNS(ns.To)
			require.NoError(b, srv.Client.Database(db).Drop(ctx))
		}
		restoring += time.Since(t0)

		t0 = time.Now()
		drep, err := Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &Options{
			Conn:   conn.Config{Client: srv.Client},
			Prefix: srv.DB("drill_") + string(rune('a'+i%26)),
			Logger: logger,
		})
		drilling += time.Since(t0)
		require.NoError(b, err)
		require.True(b, drep.Passed)
		rto += drep.RestoreTime
		check += drep.CheckTime
		bsonBytes = drep.Bytes
	}
	n := float64(b.N)
	b.SetBytes(bsonBytes)
	b.ReportMetric(drilling.Seconds()/n, "drill-s/op")
	b.ReportMetric(restoring.Seconds()/n, "restore-s/op")
	b.ReportMetric(check.Seconds()/n, "check-s/op")
	b.ReportMetric(drilling.Seconds()/restoring.Seconds(), "x-restore")
	b.ReportMetric(rto.Seconds()/restoring.Seconds(), "rto-x-restore")
}

func splitNS(ns string) (string, string, bool) {
	for i := range len(ns) {
		if ns[i] == '.' {
			return ns[:i], ns[i+1:], true
		}
	}
	return ns, "", false
}
