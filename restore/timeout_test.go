package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

// TestRestoreServerStopsAnswering freezes the server (SIGSTOP: its
// connections stay open, nothing is answered) while a restore inserts a
// collection's documents, between two collections' index builds, and while
// it replays the oplog: the restore fails with ErrUnreachable once
// OperationTimeout has passed without an answer, instead of waiting
// forever.
func TestRestoreServerStopsAnswering(t *testing.T) {
	// A short OperationTimeout, and the guard on the restore: well beyond
	// the timeout, so that a restore that gives up at the timeout, even on
	// a loaded machine, comes back long before it, and one that waits for
	// the server does not.
	const (
		opTimeout = 2 * time.Second
		opGuard   = 45 * time.Second
	)
	for _, tc := range []struct {
		name   string
		backup func(e *testnode.Env) []byte
		at     func(archive.Progress) bool // when to freeze
		during string                      // what the error says failed
	}{
		{
			// After the first batch of 1000 documents: the next batch gets
			// no answer.
			name: "inserting",
			backup: func(e *testnode.Env) []byte {
				return testnode.CraftedBackup(t, map[string][]D{e.Srv.DB("app") + ".a": docs(0, 3000)}, nil, archive.TarFormat{})
			},
			at:     func(p archive.Progress) bool { return p.Documents > 0 },
			during: "insert into",
		},
		{
			// Once the first collection's indexes are built: the build of
			// a later one's (two of the four collections have indexes),
			// unbounded while the server answers pings, gets none.
			name: "building indexes",
			backup: func(e *testnode.Env) []byte {
				e.Seed(20)
				_, data := testnode.BackupBytes(t, e, e.Config())
				return data
			},
			at:     func(p archive.Progress) bool { return p.NamespacesDone > 0 },
			during: "create indexes on",
		},
		{
			// After the first 1000 entries of the oplog (replay reports
			// its progress as namespace "oplog"): the bulk write of the
			// next ones gets no answer.
			name: "replaying",
			backup: func(e *testnode.Env) []byte {
				db := e.Srv.DB("app")
				var oplog []D
				for i := range 1100 {
					oplog = append(oplog, ins(db+".b", D{{Key: "_id", Value: fmt.Sprintf("d%d", i)}}))
				}
				return testnode.CraftedBackup(t, map[string][]D{db + ".a": docs(0, 10)}, oplog, archive.TarFormat{})
			},
			at:     func(p archive.Progress) bool { return p.Namespace == "oplog" },
			during: "replay the oplog",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testnode.New(t)
			if !e.Srv.Embedded {
				t.Skip("needs the embedded server, which a test can freeze") // covered by the embedded default in CI
			}
			data := tc.backup(e)
			freeze, thaw := e.Srv.Freezer(t)
			defer thaw()
			var froze sync.Once
			frozen := false
			opts := restore.Options{
				Conn:     conn.Config{Client: e.Srv.Client, OperationTimeout: opTimeout},
				Renames:  namespace.Renames{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "r_*"}},
				Parallel: 1,
				Progress: func(p archive.Progress) {
					if tc.at(p) {
						froze.Do(func() { freeze(); frozen = true })
					}
				},
			}
			guard, cancel := context.WithTimeout(context.Background(), opGuard)
			defer cancel()
			_, err := restore.Run(guard, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &opts)
			require.Error(t, err)
			froze.Do(func() {}) // orders the read of frozen after its write
			assert.True(t, frozen, "the server was frozen %s", tc.name)
			assert.NoError(t, guard.Err(), "the restore came back before the guard: %v", err)
			assert.ErrorIs(t, err, restore.ErrUnreachable)
			assert.Equal(t, errcode.Unreachable, errcode.Of(err), err.Error())
			assert.ErrorContains(t, err, fmt.Sprintf("did not answer within %s", opTimeout))
			assert.ErrorContains(t, err, tc.during)
		})
	}
}

// TestRestoreCallerDeadline lets the caller's deadline pass while a
// restore inserts its last batch, the archive read whole: the restore
// reports the caller's deadline, not the documents it did not get to write
// as a count that differs from the manifest.
func TestRestoreCallerDeadline(t *testing.T) {
	e := testnode.New(t)
	if !e.Srv.Embedded {
		t.Skip("needs the embedded server, which a test can freeze") // covered by the embedded default in CI
	}
	// Two batches of 1000: the second is handed to the inserter before
	// the reader reaches the end, and the reader has nothing more to ask
	// of the server.
	data := testnode.CraftedBackup(t, map[string][]D{e.Srv.DB("app") + ".a": docs(0, 2000)}, nil, archive.TarFormat{})
	freeze, thaw := e.Srv.Freezer(t)
	defer thaw()
	// The deadline is the behaviour under test: the restore must end at
	// it, with its error.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var froze sync.Once
	opts := restore.Options{
		Conn:      conn.Config{Client: e.Srv.Client, OperationTimeout: time.Minute},
		Renames:   namespace.Renames{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "r_*"}},
		Parallel:  1,
		BatchSize: 1000,
		Progress: func(p archive.Progress) {
			// After the first batch: the second gets no answer.
			froze.Do(freeze)
		},
	}
	_, err := restore.Run(ctx, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &opts)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, restore.ErrCountMismatch)
}

// TestReplaySlow freezes the server while a restore replays the oplog and
// resumes it once a replayed write has waited OperationTimeout, before the
// restore pings the server: the server answers the ping, so the restore
// fails with ErrSlow, saying to raise the timeout, not with ErrUnreachable.
func TestReplaySlow(t *testing.T) {
	const (
		opTimeout = 2 * time.Second
		opGuard   = 45 * time.Second
	)
	e := testnode.New(t)
	if !e.Srv.Embedded {
		t.Skip("needs the embedded server, which a test can freeze") // covered by the embedded default in CI
	}
	db := e.Srv.DB("app")
	var oplog []D
	for i := range 1100 {
		oplog = append(oplog, ins(db+".b", D{{Key: "_id", Value: fmt.Sprintf("d%d", i)}}))
	}
	data := testnode.CraftedBackup(t, map[string][]D{db + ".a": docs(0, 10)}, oplog, archive.TarFormat{})
	freeze, thaw := e.Srv.Freezer(t)
	defer thaw()
	var froze, thawed sync.Once
	opts := restore.Options{
		Conn:     conn.Config{Client: e.Srv.Client, OperationTimeout: opTimeout},
		Renames:  namespace.Renames{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "r_*"}},
		Parallel: 1,
		Progress: func(p archive.Progress) {
			if p.Namespace == "oplog" {
				froze.Do(freeze)
			}
		},
	}
	timedOut := false
	restore.SetReplayTimedOut(&opts, func() { thawed.Do(func() { thaw(); timedOut = true }) })
	guard, cancel := context.WithTimeout(context.Background(), opGuard)
	defer cancel()
	_, err := restore.Run(guard, bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &opts)
	require.Error(t, err)
	thawed.Do(func() {}) // orders the read of timedOut after its write
	assert.True(t, timedOut, "a replayed write timed out")
	assert.NoError(t, guard.Err(), "the restore came back before the guard: %v", err)
	assert.ErrorIs(t, err, restore.ErrSlow)
	assert.NotErrorIs(t, err, restore.ErrUnreachable)
	assert.Equal(t, errcode.Cancelled, errcode.Of(err), err.Error())
	assert.ErrorContains(t, err, "replay the oplog")
	assert.ErrorContains(t, err, fmt.Sprintf("got no answer within %s, the operation timeout, while the server answers a ping", opTimeout))
	assert.ErrorContains(t, err, "raise the operation timeout")
}
