package pitr_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

type D = bson.D

// env is a node with an oplog that exports to a remote, and a writer of
// three collections.
type env struct {
	*testnode.Env
	at    pitr.Location
	key   *cipher.Key
	colls []string
	w     *testnode.Writer
	batch int // the writer's next batch
}

// newEnv returns a node with an oplog (capped at maxDocs entries, on the
// embedded server, if maxDocs > 0) that exports to remote, its writer's
// collections seeded.
func newEnv(t *testing.T, remote store.Remote, maxDocs int64) *env {
	t.Helper()
	e := &env{Env: testnode.New(t), at: pitr.Location{Remote: remote, Prefix: "keepslot", Node: "n1"}}
	testnode.EnsureOplog(t, e.Srv, maxDocs)
	var err error
	e.key, err = cipher.NewKey([]byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	e.colls = []string{e.Srv.DB("app") + ".a", e.Srv.DB("app") + ".b", e.Srv.DB("shop") + ".c"}
	e.w = testnode.NewWriter(t, e.Srv.Client, e.colls)
	require.NoError(t, e.w.Seed(context.Background()))
	return e
}

// write runs the writer's next batch.
func (e *env) write(t *testing.T) {
	t.Helper()
	require.NoError(t, e.w.Do(e.batch))
	e.batch++
}

// writeLogged runs the next batch, as write does, and waits until the
// oplog holds an entry for each of its writes: FerretDB logs a write's
// entry after it acknowledges the write, so a Flush called right after it
// may close its slice before the entry is visible (under load it did).
func (e *env) writeLogged(t *testing.T) {
	t.Helper()
	before, n := e.newest(t), len(e.w.Log)
	e.write(t)
	want := int64(len(e.w.Log) - n)
	filter := D{{Key: "ts", Value: D{{Key: "$gt", Value: before}}}, {Key: "ns", Value: D{{Key: "$in", Value: e.colls}}}}
	for deadline := time.Now().Add(time.Minute); ; {
		got, err := e.Srv.Client.Database("local").Collection("oplog.rs").CountDocuments(context.Background(), filter)
		require.NoError(t, err)
		if got >= want {
			return
		}
		require.True(t, time.Now().Before(deadline), "the oplog holds %d of the batch's %d entries after a minute", got, want)
	}
}

// base takes a base backup, the writer writing while each collection is
// read, exports it, and empties the slot again. It returns the backup's
// status.
func (e *env) base(t *testing.T) slot.Status {
	t.Helper()
	cfg := e.Config()
	cfg.Export = &slot.ExportConfig{Remote: e.at.Remote, Prefix: e.at.Prefix, Node: e.at.Node}
	cfg.Parallel = 1
	dd := &testnode.DuringDump{Source: e.Source(cfg), During: func(archive.Collection) error {
		err := e.w.Do(e.batch)
		e.batch++
		return err
	}}
	s, st := testnode.RunSlot(t, dd, cfg.Config)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	require.NotNil(t, st.Oplog)
	require.NotNil(t, st.Export)
	require.Equal(t, slot.ExportDone, st.Export.State, st.Export.Error)
	require.NoError(t, s.Delete(context.Background()))
	return st
}

// slicerConfig is the test's slicer: slices close on Flush only, and the
// oplog is read often.
func (e *env) slicerConfig() pitr.Config {
	return pitr.Config{
		Conn:     conn.Config{Client: e.Srv.Client},
		Filter:   e.Filter,
		Location: e.at,
		Key:      e.key,
		Interval: time.Hour,
		Poll:     50 * time.Millisecond,
		Settle:   20 * time.Millisecond,
		Logger:   slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// running is a Slicer that runs until stop.
type running struct {
	*pitr.Slicer
	cancel context.CancelFunc
	done   chan error
}

// start runs a Slicer of cfg; it stops when the test ends.
func start(t *testing.T, cfg pitr.Config) *running {
	t.Helper()
	s, err := pitr.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Slicer: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop stops the Slicer and waits for Run to return.
func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	require.ErrorIs(t, <-r.done, context.Canceled)
}

// flush closes and stores the open slice, which holds every write so far.
func (r *running) flush(t *testing.T) pitr.Slice {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := r.Flush(ctx)
	require.NoError(t, err)
	return s
}

// newest is the timestamp of the oplog's newest entry.
func (e *env) newest(t *testing.T) bson.Timestamp {
	t.Helper()
	var en struct {
		TS bson.Timestamp `bson:"ts"`
	}
	require.NoError(t, e.Srv.Client.Database("local").Collection("oplog.rs").FindOne(context.Background(), D{},
		options.FindOne().SetSort(D{{Key: "$natural", Value: -1}})).Decode(&en))
	return en.TS
}

// nextSecond waits until the server's clock is past the second of ts, so
// that the writes that follow have timestamps of a later second: a
// restore to the time of ts holds none of them.
func (e *env) nextSecond(t *testing.T, ts bson.Timestamp) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		var hello struct {
			LocalTime time.Time `bson:"localTime"`
		}
		require.NoError(t, e.Srv.Client.Database("admin").RunCommand(context.Background(), D{{Key: "hello", Value: 1}}).Decode(&hello))
		if hello.LocalTime.Unix() > int64(ts.T) {
			return
		}
		require.True(t, time.Now().Before(deadline), "the server's clock does not move")
		time.Sleep(time.Until(time.Unix(int64(ts.T)+1, 0)) + time.Millisecond) // a wait for the clock, not for another goroutine
	}
}

// restore restores to opts' target into the namespaces prefixed to.
func (e *env) restore(t *testing.T, to string, opts pitr.RestoreOptions) (*pitr.Report, error) {
	t.Helper()
	opts.Restore.Conn.Client = e.Srv.Client
	opts.Restore.Renames = namespace.Renames{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + to + "*"}}
	opts.Restore.Logger = slog.New(slog.DiscardHandler)
	opts.TempDir = t.TempDir()
	return pitr.Restore(context.Background(), e.at, []byte(testnode.Password), &opts)
}

// contents returns the writer's collections restored under to.
func (e *env) contents(t *testing.T, to string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, ns := range e.colls {
		out[ns] = testnode.Contents(t, e.Srv, strings.Replace(ns, e.Srv.Prefix, e.Srv.Prefix+to, 1))
	}
	return out
}

// tsTime is the wall-clock second of ts.
func tsTime(ts bson.Timestamp) time.Time { return time.Unix(int64(ts.T), 0).UTC() }

// dryRun is the options of a restore that writes nothing.
func dryRun() restore.Options { return restore.Options{DryRun: true} }
