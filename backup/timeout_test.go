package backup_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// A short OperationTimeout for the tests that freeze the server, and the
// guard on their wait: well beyond the timeout, so that a backup that gives
// up at the timeout, even on a loaded machine, comes back long before it,
// and one that waits for the server does not.
const (
	opTimeout = 2 * time.Second
	opGuard   = 45 * time.Second
)

// insertDocs inserts n documents {_id: "d<i>", n: i} into db.coll of the
// test's server. The _id is a string: FerretDB finds a document by its _id
// with an index only when the _id is a string or an ObjectID.
func insertDocs(t *testing.T, e *testnode.Env, db, coll string, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = D{{Key: "_id", Value: fmt.Sprintf("d%d", i)}, {Key: "n", Value: int32(i)}}
	}
	_, err := e.Srv.Client.Database(e.Srv.DB(db)).Collection(coll).InsertMany(context.Background(), docs)
	require.NoError(t, err)
}

// TestBackupServerStopsAnswering freezes the server (SIGSTOP: its
// connections stay open, nothing is answered) while a backup reads a
// collection, and while it captures the oplog once every collection is
// read. The backup fails with ErrUnreachable once OperationTimeout has
// passed without an answer, instead of waiting forever, and leaves the slot
// empty.
func TestBackupServerStopsAnswering(t *testing.T) {
	for _, tc := range []struct {
		name     string
		docs     int // in each collection
		freezeAt int // the collection being read (1 or 2) when the server freezes
	}{
		// The first batch of the cursor holds 101 documents: the next one
		// gets no answer.
		{name: "reading a collection", docs: 500, freezeAt: 1},
		// Each collection fits in the first batch: the capture's reads of
		// the oplog, after the last collection, get no answer.
		{name: "capturing the oplog", docs: 5, freezeAt: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testnode.New(t)
			if !e.Srv.Embedded {
				t.Skip("needs the embedded server, which a test can freeze") // covered by the embedded default in CI
			}
			testnode.EnsureOplog(t, e.Srv, 0)
			insertDocs(t, e, "app", "a", tc.docs)
			insertDocs(t, e, "app", "b", tc.docs)
			freeze, thaw := e.Srv.Freezer(t)
			defer thaw() // before the slot's Close, which a frozen server would hold up

			src := &backup.Source{Conn: conn.Config{Client: e.Srv.Client, OperationTimeout: opTimeout}, Filter: e.Filter}
			var mu sync.Mutex
			read := 0
			dd := &testnode.DuringDump{Source: src, During: func(archive.Collection) error {
				mu.Lock()
				defer mu.Unlock()
				if read++; read == tc.freezeAt {
					freeze()
				}
				return nil
			}}
			cfg := e.Config()
			cfg.Parallel = 1
			s, err := slot.New(dd, cfg.Config)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			require.NoError(t, s.Role().Set())
			ctx := context.Background()
			require.NoError(t, s.Start(ctx, []byte(testnode.Password)))

			guard, cancel := context.WithTimeout(ctx, opGuard)
			defer cancel()
			st, err := s.Wait(guard)
			require.NoError(t, err, "the backup still waits for the frozen server")
			mu.Lock()
			assert.Equal(t, tc.freezeAt, read, "frozen while collection %d was read", tc.freezeAt)
			mu.Unlock()
			assert.Equal(t, slot.StateFailed, st.State)
			assert.Equal(t, errcode.Unreachable, st.Code, st.Error)
			assert.Contains(t, st.Error, fmt.Sprintf("did not answer within %s", opTimeout))
			assert.Contains(t, st.Error, ": backup: ", "backup names itself")

			thaw()
			_, err = e.Store.Stat(ctx)
			assert.ErrorIs(t, err, store.ErrEmpty, "the slot is left empty")
		})
	}
}

// TestCloseServerStopsAnswering closes a Source that connected to URI once
// the server is frozen: the disconnect gets OperationTimeout to be
// answered, and Close returns (with a plain disconnect it still waited at
// the guard).
func TestCloseServerStopsAnswering(t *testing.T) {
	e := testnode.New(t)
	if !e.Srv.Embedded {
		t.Skip("needs the embedded server, which a test can freeze") // covered by the embedded default in CI
	}
	e.Seed(5)
	src := &backup.Source{Conn: conn.Config{URI: e.Srv.URI, OperationTimeout: opTimeout}, Filter: e.Filter}
	_, err := src.Plan(context.Background()) // connects, and uses the connection
	require.NoError(t, err)
	freeze, thaw := e.Srv.Freezer(t)
	defer thaw()
	freeze()

	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	guard := time.NewTimer(opGuard)
	defer guard.Stop()
	select {
	case err := <-closed:
		assert.NoError(t, err, "the driver closes its connections whether or not the server answered")
	case <-guard.C:
		t.Fatal("Close still waits for the frozen server")
	}
}
