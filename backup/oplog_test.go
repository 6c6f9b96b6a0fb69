package backup_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

type (
	D = bson.D
	A = bson.A
)

// capturedOplog decrypts a retrieved backup and returns its oplog entries.
func capturedOplog(t *testing.T, data []byte) []bson.Raw {
	t.Helper()
	plain, err := cipher.NewReader(bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), nil)
	require.NoError(t, err)
	r, err := archive.Open(plain, nil)
	require.NoError(t, err)
	var entries []bson.Raw
	for {
		c, err := r.Next()
		if err == io.EOF {
			return entries
		}
		require.NoError(t, err)
		for {
			d, err := r.ReadDocument()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if c.IsOplog() {
				entries = append(entries, d)
			}
		}
	}
}

// seqOf finds the writer's sequence number in an insert or update entry,
// whatever the server's update format: FerretDB's whole-document $set,
// $v: 1 operators or a $v: 2 diff.
func seqOf(e bson.Raw) (int64, bool) {
	for _, path := range [][]string{{"o", "seq"}, {"o", "$set", "seq"}, {"o", "diff", "u", "seq"}, {"o", "diff", "i", "seq"}} {
		if v, err := e.LookupErr(path...); err == nil {
			if n, ok := v.AsInt64OK(); ok {
				return n, true
			}
		}
	}
	return 0, false
}

func tsOf(e bson.Raw) bson.Timestamp {
	t, i := e.Lookup("ts").Timestamp()
	return bson.Timestamp{T: t, I: i}
}

// TestOplogConcurrentWriter backs up collections while a writer inserts,
// updates and deletes across them, restores with replay into new
// namespaces, and checks that the restored data equals the writer's model
// as of the capture's end; without replay it does not.
func TestOplogConcurrentWriter(t *testing.T) {
	e := testnode.New(t)
	testnode.EnsureOplog(t, e.Srv, 0)
	ctx := context.Background()
	colls := []string{e.Srv.DB("app") + ".a", e.Srv.DB("app") + ".b", e.Srv.DB("shop") + ".c"}
	w := testnode.NewWriter(t, e.Srv.Client, colls)
	require.NoError(t, w.Seed(ctx))

	src := &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter}
	batch := 0
	dd := &testnode.DuringDump{Source: src, During: func(c archive.Collection) error {
		err := w.Do(batch)
		batch++
		return err
	}}
	cfg := e.Config()
	cfg.Parallel = 1 // collections in turn: a batch changes those already read
	s, st := testnode.RunSlot(t, dd, cfg.Config)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	require.Equal(t, len(colls), batch, "one batch while each collection was read")
	// Every write of the log so far happened before the capture's end:
	// the model now is the data as of the end.
	duringLog := len(w.Log)
	atEnd := w.Snapshot(t)
	// Writes after the end are not in the backup.
	require.NoError(t, w.After(ctx))
	later := w.Snapshot(t)

	require.NotNil(t, st.Oplog, "the capture's span is in the status")
	assert.False(t, st.Oplog.End.Before(st.Oplog.Start))
	assert.False(t, st.ConsistentAt().IsZero())

	var buf bytes.Buffer
	_, err := s.Retrieve(ctx, &buf)
	require.NoError(t, err)
	data := buf.Bytes()

	// Every write of the writer during the backup is in the oplog, in
	// order, and nothing of ours but the start entry itself besides.
	entries := capturedOplog(t, data)
	assert.EqualValues(t, len(entries), st.Oplog.Entries)
	var matched []int64
	for _, en := range entries {
		ts := tsOf(en)
		assert.False(t, ts.Before(st.Oplog.Start) || ts.After(st.Oplog.End), "entry %v in the span", ts)
		ns := en.Lookup("ns").StringValue()
		if !slices.Contains(colls, ns) {
			continue
		}
		switch op := en.Lookup("op").StringValue(); op {
		case "i", "u":
			seq, ok := seqOf(en)
			if ok && seq > 0 {
				matched = append(matched, seq)
				continue
			}
		case "d":
			id := en.Lookup("o", "_id").StringValue()
			if i := slices.IndexFunc(w.Log[:duringLog], func(l testnode.Logged) bool { return l.Op == "d" && l.NS == ns && l.ID == id }); i >= 0 {
				matched = append(matched, w.Log[i].Seq)
				continue
			}
		}
		assert.Equal(t, st.Oplog.Start, ts, "an entry of ours not in the writer's log is the start entry: %s", en)
	}
	want := make([]int64, duringLog)
	for i := range want {
		want[i] = int64(i + 1)
	}
	assert.Equal(t, want, matched, "the writer's log, in order")

	// Restored with replay into new namespaces: the model as of the end.
	renamed := func(to string) []namespace.Rename {
		return []namespace.Rename{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + to + "*"}}
	}
	rep, err := testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: e.Srv.Client}, Renames: renamed("r_")})
	require.NoError(t, err)
	require.NotNil(t, rep.Oplog)
	assert.Equal(t, st.Oplog.End, rep.Oplog.Captured.End)
	assert.False(t, rep.Oplog.Last.After(st.Oplog.End))
	if e.Srv.Embedded { // on a shared server the newest entry may be another's
		assert.Equal(t, st.Oplog.End, rep.Oplog.Last, "replayed to the end")
	}
	for _, ns := range colls {
		got := testnode.Contents(t, e.Srv, strings.Replace(ns, e.Srv.Prefix, e.Srv.Prefix+"r_", 1))
		assert.Equal(t, atEnd[ns], got, "%s restored with replay is as of the end", ns)
		assert.NotEqual(t, later[ns], got, "%s: the writes after the end are not restored", ns)
	}

	// Without replay the data is a mix of moments: the first collection
	// misses the writes made while the others were read.
	_, err = testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: e.Srv.Client}, Renames: renamed("n_"), OplogReplay: restore.ReplayNever})
	require.NoError(t, err)
	first := strings.Replace(colls[0], e.Srv.Prefix, e.Srv.Prefix+"n_", 1)
	assert.NotEqual(t, atEnd[colls[0]], testnode.Contents(t, e.Srv, first), "without replay the restore is not as of the end")

	// Stopped early by OplogLimit: the first collection lacks the last
	// batch's insert, made after it was read, but has the one before.
	var limit bson.Timestamp
	for _, en := range entries {
		if seq, ok := seqOf(en); ok && seq > 0 && en.Lookup("op").StringValue() == "i" && w.Log[seq-1].ID == "k2-0" {
			limit = tsOf(en)
		}
	}
	require.False(t, limit.IsZero())
	rep, err = testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: e.Srv.Client}, Renames: renamed("l_"), OplogLimit: limit})
	require.NoError(t, err)
	assert.True(t, rep.Oplog.LimitReached)
	ids := testnode.Contents(t, e.Srv, strings.Replace(colls[0], e.Srv.Prefix, e.Srv.Prefix+"l_", 1))
	assert.True(t, slices.ContainsFunc(ids, func(s string) bool { return strings.Contains(s, `"k1-0"`) }))
	assert.False(t, slices.ContainsFunc(ids, func(s string) bool { return strings.Contains(s, `"k2-0"`) }))
}

// TestOplogRollover overruns a tiny capped oplog while the backup reads a
// collection: the backup fails with ErrOplogRollover, leaving the slot
// empty and no temporary file.
func TestOplogRollover(t *testing.T) {
	e := testnode.New(t)
	ctx := context.Background()
	e.Seed(5)
	src := &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter}
	var overrun func() error
	if e.Srv.Embedded {
		testnode.EnsureOplog(t, e.Srv, 20)
		spill := e.Srv.Client.Database(e.Srv.DB("app")).Collection("spill")
		_, err := spill.InsertOne(ctx, D{{Key: "_id", Value: "before"}})
		require.NoError(t, err)
		overrun = func() error {
			for i := range 30 {
				if _, err := spill.InsertOne(ctx, D{{Key: "_id", Value: i}}); err != nil {
					return err
				}
			}
			// FerretDB enforces a capped collection's bounds on compact.
			return e.Srv.Client.Database("local").RunCommand(ctx, D{{Key: "compact", Value: "oplog.rs"}}).Err()
		}
	} else {
		// The real oplog is too large to overrun: a small capped collection
		// of the test's own stands in for it.
		db := e.Srv.Client.Database(e.Srv.DB("oplog"))
		require.NoError(t, db.CreateCollection(ctx, "rs", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(20)))
		fake := db.Collection("rs")
		i := uint32(0)
		add := func(n int) error {
			for range n {
				i++
				if _, err := fake.InsertOne(ctx, D{{Key: "ts", Value: bson.Timestamp{T: 1, I: i}}, {Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: D{}}}); err != nil {
					return err
				}
			}
			return nil
		}
		require.NoError(t, add(5))
		backup.SetOplogNamespace(src, db.Name()+".rs")
		overrun = func() error { return add(30) }
	}
	// The dump reads collections in parallel: the first of them to start
	// overruns the oplog, the others wait for it to finish.
	var once sync.Once
	dd := &testnode.DuringDump{Source: src, During: func(archive.Collection) error {
		var err error
		once.Do(func() { err = overrun() })
		return err
	}}
	cfg := e.Config()
	cfg.Spill.Threshold = 1 // every collection spills to Spill.Dir
	_, st := testnode.RunSlot(t, dd, cfg.Config)
	require.Equal(t, slot.StateFailed, st.State)
	assert.Equal(t, errcode.OplogRollover, st.Code)
	assert.Contains(t, st.Error, "too small for the dump's duration")
	_, err := e.Store.Stat(ctx)
	assert.ErrorIs(t, err, store.ErrEmpty, "the slot is left empty")
	left, err := os.ReadDir(cfg.Spill.Dir)
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file is left")
}

// TestBackupWithoutOplog checks a server without an oplog: Auto backs up
// without one and notes it, On refuses to start, and the restore of a
// backup without an oplog replays nothing (and with OplogReplay ReplayRequired fails
// once the collections are in).
func TestBackupWithoutOplog(t *testing.T) {
	e := testnode.New(t)
	ctx := context.Background()
	e.Seed(4)
	src := func(mode backup.Toggle) *backup.Source {
		s := &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter, Oplog: mode}
		backup.SetOplogNamespace(s, e.Srv.DB("none")+".oplog") // no such collection, on any server
		return s
	}

	s, err := slot.New(src(backup.ToggleOn), e.Config().Config)
	require.NoError(t, err)
	require.NoError(t, s.Role().Set())
	err = s.Start(ctx, []byte(testnode.Password))
	require.ErrorIs(t, err, backup.ErrNoOplog)
	assert.Equal(t, errcode.Invalid, errcode.Of(err))
	assert.Contains(t, err.Error(), "keeps no oplog")
	assert.Contains(t, err.Error(), "slot: plan the backup: backup: no oplog: ", "backup names itself before the sentinel it exports")

	s, err = slot.New(src(backup.ToggleAuto), e.Config().Config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Start(ctx, []byte(testnode.Password)))
	st, err := s.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	assert.Nil(t, st.Oplog)
	assert.True(t, st.ConsistentAt().IsZero())
	assert.Contains(t, strings.Join(st.Notes, "\n"), "not point-in-time consistent")

	var buf bytes.Buffer
	_, err = s.Retrieve(ctx, &buf)
	require.NoError(t, err)
	assert.Empty(t, capturedOplog(t, buf.Bytes()))
	opts := restore.Options{Conn: conn.Config{Client: e.Srv.Client}, Renames: []namespace.Rename{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "r_*"}}}
	rep, err := testnode.RestoreBytes(t, buf.Bytes(), opts)
	require.NoError(t, err)
	assert.Nil(t, rep.Oplog)
	assert.EqualValues(t, 12, rep.Documents)

	opts.OplogReplay, opts.Drop = restore.ReplayRequired, true
	_, err = testnode.RestoreBytes(t, buf.Bytes(), opts)
	assert.ErrorIs(t, err, restore.ErrNoOplog)
	assert.EqualValues(t, 4, e.Count(e.Srv.DB("r_app"), "users"), "the collections are restored before")
}
