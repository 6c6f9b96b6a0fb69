package pitr_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/store"
)

// target is a moment to restore to, and the writer's model as of it.
type target struct {
	opts  pitr.RestoreOptions
	model map[string][]string
}

// TestRestoreToTime takes a base backup while a writer writes, lets the
// slicer cut the writes that follow into several slices, and restores to
// six moments (the base backup's own point, then after each of five
// batches, by time and by timestamp) into new namespaces: each equals the
// writer's model as of that moment.
func TestRestoreToTime(t *testing.T) {
	e := newEnv(t, store.MemoryRemote(), 0)
	st := e.base(t)
	targets := []target{{opts: pitr.RestoreOptions{Timestamp: next(st.Oplog.End)}, model: e.w.Snapshot(t)}}

	s := start(t, e.slicerConfig())
	var slices []pitr.Slice
	for i := range 5 {
		e.write(t)
		last := e.newest(t)
		tg := target{model: e.w.Snapshot(t)}
		if i%2 == 0 {
			tg.opts.Time = tsTime(last)
			e.nextSecond(t, last) // the next batch is of a later second
		} else {
			tg.opts.Timestamp = next(last)
		}
		targets = append(targets, tg)
		slices = append(slices, s.flush(t))
	}
	e.write(t) // after every target
	slices = append(slices, s.flush(t))
	s.stop(t)
	for i := 1; i < len(slices); i++ {
		assert.Equal(t, slices[i-1].Until, slices[i].From, "slice %d continues the one before", i)
		assert.Equal(t, slices[i].From, slices[i].Prev)
	}
	assert.Equal(t, next(st.Oplog.End), slices[0].From, "the first slice starts at the base backup's point")

	cov, err := pitr.Scan(context.Background(), e.at)
	require.NoError(t, err)
	require.Len(t, cov.Windows, 1)
	assert.Equal(t, st.Oplog.End, cov.Windows[0].From)
	assert.Equal(t, slices[len(slices)-1].Until, cov.Windows[0].Until)
	assert.Empty(t, cov.Gaps)
	assert.Len(t, cov.Slices, len(slices))

	for i, tg := range targets {
		to := fmt.Sprintf("r%d_", i)
		rep, err := e.restore(t, to, tg.opts)
		require.NoError(t, err, "target %d", i)
		assert.Equal(t, tg.model, e.contents(t, to), "target %d (%+v) restores the model as of it", i, tg.opts)
		assert.Equal(t, st.Export.Key, rep.Base.Key)
		if tg.opts.Time.IsZero() {
			assert.Equal(t, i, len(rep.Slices), "target %d replays the slices up to it", i)
		} else { // the slice up to the write may end before the second does
			assert.Contains(t, []int{i, i + 1}, len(rep.Slices), "target %d replays the slices up to it", i)
		}
	}

	// A dry run says what it would use and writes nothing.
	rep, err := e.restore(t, "dry_", pitr.RestoreOptions{Timestamp: targets[4].opts.Timestamp, Restore: dryRun()})
	require.NoError(t, err)
	assert.Len(t, rep.Slices, 4)
	assert.True(t, rep.Restore.DryRun)
	assert.Positive(t, rep.Restore.Oplog.Inserts)
	assert.Empty(t, e.contents(t, "dry_")[e.colls[0]])
}

// next is the timestamp right after ts.
func next(ts bson.Timestamp) bson.Timestamp { return bson.Timestamp{T: ts.T, I: ts.I + 1} }

// TestTail slices with a tailable cursor, which FerretDB answers too (with
// one writer, its oplog is in timestamp order), and restores to a moment
// between two slices.
func TestTail(t *testing.T) {
	e := newEnv(t, store.MemoryRemote(), 0)
	e.base(t)
	cfg := e.slicerConfig()
	cfg.Read = pitr.ReadTail
	s := start(t, cfg)
	e.write(t)
	want := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}
	first := s.flush(t)
	e.writeLogged(t)
	second := s.flush(t)
	s.stop(t)
	assert.Equal(t, "tail", s.Status().Read)
	assert.Equal(t, first.Until, second.From)
	assert.Positive(t, first.Entries)
	assert.Positive(t, second.Entries)
	_, err := e.restore(t, "r_", want.opts)
	require.NoError(t, err)
	assert.Equal(t, want.model, e.contents(t, "r_"))
}

// TestNoOplog checks that a server without an oplog ends Run at once, with
// backup.ErrNoOplog, which the status shows too.
func TestNoOplog(t *testing.T) {
	e := testnode.New(t)
	key, err := cipher.NewKey([]byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	cfg := pitr.Config{Conn: conn.Config{Client: e.Srv.Client}, Location: pitr.Location{Remote: store.MemoryRemote(), Node: "n"}, Key: key, Logger: slog.New(slog.DiscardHandler)}
	pitr.SetOplogNamespace(&cfg, e.Srv.DB("none")+".oplog") // no such collection, on any server
	s, err := pitr.New(cfg)
	require.NoError(t, err)
	err = s.Run(context.Background())
	require.ErrorIs(t, err, backup.ErrNoOplog)
	assert.Contains(t, err.Error(), "keeps no oplog")
	assert.True(t, strings.HasPrefix(err.Error(), "pitr: no oplog: "), "pitr names itself before the sentinel it exports: %v", err)
	st := s.Status()
	assert.False(t, st.Running)
	assert.Equal(t, errcode.Invalid, st.Code)
}

// TestFromThePresent starts a slicer on a node with neither slices nor
// base backups, and an empty oplog: it slices from the present on, and the
// first writes to the new oplog are no gap.
func TestFromThePresent(t *testing.T) {
	e := testnode.New(t)
	testnode.EnsureOplog(t, e.Srv, 0)
	key, err := cipher.NewKey([]byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	at := pitr.Location{Remote: store.MemoryRemote(), Node: "n"}
	s := start(t, pitr.Config{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter, Location: at, Key: key, Interval: time.Hour,
		Poll: 50 * time.Millisecond, Settle: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	_, err = e.Srv.Client.Database(e.Srv.DB("app")).Collection("c").InsertOne(context.Background(), D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	sl := s.flush(t)
	assert.Empty(t, sl.Gap)
	assert.EqualValues(t, 1, sl.Entries)
	assert.True(t, sl.Prev.IsZero(), "the node's first slice")
	assert.Empty(t, s.Status().Error)
}
