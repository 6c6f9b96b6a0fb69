//go:build unix

package pitr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/store"
)

// cpu is the CPU time this process has used, user and system.
func cpu(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchNode is a test server whose oplog holds n entries of one
// collection (inserts and updates) after the point of a base backup that
// the remote at names; the server runs in its own process, so the
// process's CPU time is the client's.
func benchNode(b *testing.B, n int) (*mongotest.Server, namespace.Filter, func() pitr.Location, bson.Timestamp) {
	srv := mongotest.New(b)
	testnode.EnsureOplog(b, srv, 0)
	ctx := context.Background()
	coll := srv.Client.Database(srv.DB("app")).Collection("c")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: -1}})
	require.NoError(b, err)
	var first struct {
		TS bson.Timestamp `bson:"ts"`
	}
	require.NoError(b, srv.Client.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Decode(&first))
	var docs []any
	for i := range n - n/100 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprintf("user %d", i)}, {Key: "n", Value: i}, {Key: "tags", Value: bson.A{"a", "b"}}})
		if len(docs) == 1000 {
			_, err := coll.InsertMany(ctx, docs)
			require.NoError(b, err)
			docs = docs[:0]
		}
	}
	if len(docs) > 0 {
		_, err := coll.InsertMany(ctx, docs)
		require.NoError(b, err)
	}
	// FerretDB takes tens of milliseconds an update: a few of them.
	_, err = coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 0}, {Key: "$lt", Value: n / 100}}}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
	require.NoError(b, err)
	span, err := json.Marshal(archive.OplogSpan{Start: first.TS, End: first.TS})
	require.NoError(b, err)
	at := func() pitr.Location {
		r := store.MemoryRemote()
		_, err := r.Put(ctx, "keepslot/n1/backup-0.tar.gz", bytes.NewReader(nil), store.Info{Meta: map[string]string{"oplog": string(span)}})
		require.NoError(b, err)
		return pitr.Location{Remote: r, Prefix: "keepslot", Node: "n1"}
	}
	return srv, namespace.Filter{Include: []string{srv.Prefix + "*"}}, at, first.TS
}

// BenchmarkSlicerCPU slices an oplog of 10,000 entries, from a base
// backup's point to a Flush, and reports the process's CPU time per 1,000
// entries (cpu-ms/1k); beside it, in the same run, a raw driver read of
// the same entries (raw-cpu-ms/1k) and the ratio (x-raw-read).
func BenchmarkSlicerCPU(b *testing.B) {
	const n = 10_000
	srv, filter, at, from := benchNode(b, n)
	key, err := cipher.NewKey([]byte(testnode.Password), nil) // the default cost: it is paid once
	require.NoError(b, err)
	ctx := context.Background()
	var slicer, raw time.Duration
	var entries int64
	b.ResetTimer()
	for range b.N {
		c0 := cpu(b)
		s, err := pitr.New(pitr.Config{Conn: conn.Config{Client: srv.Client}, Filter: filter, Location: at(), Key: key, Interval: time.Hour,
			Logger: slog.New(slog.DiscardHandler)})
		require.NoError(b, err)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(runCtx) }()
		_, err = s.Flush(ctx)
		require.NoError(b, err)
		cancel()
		<-done
		slicer += cpu(b) - c0
		entries += s.Status().Entries

		c0 = cpu(b)
		cur, err := srv.Client.Database("local").Collection("oplog.rs").Find(ctx,
			bson.D{{Key: "ts", Value: bson.D{{Key: "$gt", Value: from}}}}, options.Find().SetSort(bson.D{{Key: "ts", Value: 1}}))
		require.NoError(b, err)
		var m int
		for cur.Next(ctx) {
			m += len(bytes.Clone(cur.Current))
		}
		require.NoError(b, cur.Err())
		raw += cpu(b) - c0
	}
	b.StopTimer()
	require.EqualValues(b, int64(n)*int64(b.N), entries, "every entry is sliced")
	per := func(d time.Duration) float64 {
		return float64(d) / float64(time.Millisecond) / float64(b.N) / (n / 1000)
	}
	b.ReportMetric(per(slicer), "cpu-ms/1k")
	b.ReportMetric(per(raw), "raw-cpu-ms/1k")
	b.ReportMetric(float64(slicer)/float64(raw), "x-raw-read")
}

// putTimes is a remote that records when each slice was stored and where
// it ends.
type putTimes struct {
	store.Remote
	mu   sync.Mutex
	puts []stored
}

type stored struct {
	at    time.Time
	until bson.Timestamp
}

func (p *putTimes) Put(ctx context.Context, key string, r io.Reader, want store.Info) (store.Info, error) {
	info, err := p.Remote.Put(ctx, key, r, want)
	if err == nil {
		if u, perr := pitr.ParseTimestamp(want.Meta["until"]); perr == nil {
			p.mu.Lock()
			p.puts = append(p.puts, stored{at: time.Now(), until: u})
			p.mu.Unlock()
		}
	}
	return info, err
}

// committed returns when the first slice that holds ts was stored, or
// false while none is.
func (p *putTimes) committed(ts bson.Timestamp) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.puts {
		if ts.Before(s.until) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// BenchmarkSlicerLag writes one document at a time, at random moments (so
// at any phase of the slices' intervals), and measures how long after
// each write the slice that holds it is stored, with the default Poll and
// Settle and a 2 s Interval: reported as the mean and the maximum
// (lag-mean-s, lag-max-s), and the maximum over the interval
// (lag-max-over-interval-s; target: at most 1).
func BenchmarkSlicerLag(b *testing.B) {
	const interval = 2 * time.Second
	srv, filter, at, _ := benchNode(b, 0)
	key, err := cipher.NewKey([]byte(testnode.Password), testnode.LowKDF)
	require.NoError(b, err)
	ctx := context.Background()
	exp := at()
	pt := &putTimes{Remote: exp.Remote}
	exp.Remote = pt
	s, err := pitr.New(pitr.Config{Conn: conn.Config{Client: srv.Client}, Filter: filter, Location: exp, Key: key, Interval: interval, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Run(runCtx)
	coll := srv.Client.Database(srv.DB("app")).Collection("c")
	oplogColl := srv.Client.Database("local").Collection("oplog.rs")
	type write struct {
		at time.Time
		ts bson.Timestamp
	}
	var writes []write
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(rand.N(interval)) // the next write comes at any moment: pacing, not synchronisation
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprint("lag", i)}})
		wrote := time.Now()
		require.NoError(b, err)
		var e struct {
			TS bson.Timestamp `bson:"ts"`
		}
		require.NoError(b, oplogColl.FindOne(ctx, bson.D{{Key: "o._id", Value: fmt.Sprint("lag", i)}}).Decode(&e))
		writes = append(writes, write{at: wrote, ts: e.TS})
	}
	var lags []time.Duration
	for _, w := range writes {
		for {
			if at, ok := pt.committed(w.ts); ok {
				lags = append(lags, at.Sub(w.at))
				break
			}
			time.Sleep(5 * time.Millisecond) // measuring, not synchronising: the slicer runs on its own
		}
	}
	b.StopTimer()
	var sum time.Duration
	for _, l := range lags {
		sum += l
	}
	worst := slices.Max(lags)
	b.ReportMetric(sum.Seconds()/float64(len(lags)), "lag-mean-s")
	b.ReportMetric(worst.Seconds(), "lag-max-s")
	b.ReportMetric((worst - interval).Seconds(), "lag-max-over-interval-s")
}
