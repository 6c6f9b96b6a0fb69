package slot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// exportEnv is a node that exports to an in-memory remote: a slot over
// the documents of [testnode.SeedDocs], which needs no server.
func exportEnv(t *testing.T, remote store.Remote, ret *store.Retention) (*testnode.Env, *slot.Slot) {
	t.Helper()
	e := testnode.NewLocal(t)
	cfg := e.Config()
	cfg.Export = &slot.ExportConfig{Remote: remote, Prefix: "keepslot", Node: "node-1", Retention: ret}
	b := newSlot(t, testnode.SeedDocs(5), cfg.Config)
	require.NoError(t, b.Role().Set())
	return e, b
}

// newSlot returns a slot over src, closed when the test ends.
func newSlot(t *testing.T, src slot.Source, cfg slot.Config) *slot.Slot {
	t.Helper()
	b, err := slot.New(src, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestExportOnReady(t *testing.T) {
	remote := store.MemoryRemote()
	e, b := exportEnv(t, remote, nil)
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st, err := b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.StateReady, st.State)
	require.NotNil(t, st.Export, "Wait waits for the export and Status shows it")
	ex := st.Export
	assert.Equal(t, slot.ExportDone, ex.State, ex.Error)
	assert.Equal(t, "keepslot/node-1/"+st.Name, ex.Key)
	assert.Equal(t, st.Size, ex.Size)
	assert.Equal(t, st.Size, ex.Bytes)
	assert.Equal(t, st.MD5, ex.MD5)
	assert.Equal(t, st.SHA256, ex.SHA256)
	assert.False(t, ex.Finished.Before(ex.Started))

	// The copy is the slot's object, byte for byte.
	local, _ := testnode.RetrieveTo(t, b, t.TempDir(), "local.enc")
	want, err := os.ReadFile(local)
	require.NoError(t, err)
	o, err := b.OpenRemote(ctx, st.Name)
	require.NoError(t, err)
	defer o.Close()
	got, err := io.ReadAll(o)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the remote copy differs from the slot's backup")

	list, err := b.RemoteList(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, ex.Key, list[0].Key)
	assert.Equal(t, st.SHA256, list[0].Info.SHA256)
	assert.Equal(t, st.Name, list[0].Info.Name)

	_, err = b.OpenRemote(ctx, "no-such-backup")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.OpenRemote(ctx, "../escape")
	require.ErrorIs(t, err, slot.ErrInvalid)
	assert.Contains(t, e.Logs.String(), `"msg":"backup exported"`)
}

// blockingRemote holds every Put until release is closed, and can fail.
type blockingRemote struct {
	store.Remote
	started chan struct{}
	release chan struct{}
	once    sync.Once
	fail    error
}

func (r *blockingRemote) Put(ctx context.Context, key string, src io.Reader, want store.Info) (store.Info, error) {
	r.once.Do(func() { close(r.started) })
	select {
	case <-r.release:
	case <-ctx.Done():
		return store.Info{}, ctx.Err()
	}
	if r.fail != nil {
		return store.Info{}, r.fail
	}
	return r.Remote.Put(ctx, key, src, want)
}

func newBlockingRemote() *blockingRemote {
	return &blockingRemote{Remote: store.MemoryRemote(), started: make(chan struct{}), release: make(chan struct{})}
}

func TestExportInProgressAndFailure(t *testing.T) {
	remote := newBlockingRemote()
	remote.fail = errors.New("remote refused")
	_, b := exportEnv(t, remote, nil)
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	<-remote.started

	st, err := b.Status(ctx)
	require.NoError(t, err)
	require.NotNil(t, st.Export)
	assert.Equal(t, slot.ExportInProgress, st.Export.State)
	require.ErrorIs(t, b.Delete(ctx), slot.ErrInProgress, "no Delete while the backup is exported")
	require.ErrorIs(t, b.Export(ctx), slot.ErrInProgress, "one export at a time")

	close(remote.release)
	st, err = b.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateReady, st.State, "a failed export leaves the backup in the slot")
	require.NotNil(t, st.Export)
	assert.Equal(t, slot.ExportFailed, st.Export.State)
	assert.Contains(t, st.Export.Error, "remote refused")

	// Export again by hand, to a remote that now works.
	remote.fail = nil
	require.NoError(t, b.Export(ctx))
	st, err = b.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.ExportDone, st.Export.State, st.Export.Error)
	require.NoError(t, b.Delete(ctx))
	require.ErrorIs(t, b.Export(ctx), store.ErrEmpty)
}

func TestExportCancel(t *testing.T) {
	remote := newBlockingRemote()
	_, b := exportEnv(t, remote, nil)
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	<-remote.started
	require.NoError(t, b.Cancel(ctx))
	st, err := b.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateReady, st.State)
	assert.Equal(t, slot.ExportFailed, st.Export.State)
	assert.Equal(t, errcode.Cancelled, st.Export.Code)
	l, err := remote.List(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, l)
}

func TestExportNotConfigured(t *testing.T) {
	e := testnode.NewLocal(t)
	b := newSlot(t, testnode.Docs{}, e.Config().Config)
	require.ErrorIs(t, b.Export(context.Background()), slot.ErrInvalid)
	_, err := b.RemoteList(context.Background())
	require.ErrorIs(t, err, slot.ErrInvalid)
}

// Retention runs after each export and keeps the newest copy.
func TestExportThenRetention(t *testing.T) {
	remote := store.MemoryRemote()
	// An older copy of this node, one of another node, and an object in a
	// folder beneath this node's (an oplog slice), which is no copy.
	for _, k := range []string{"keepslot/node-1/backup-old.enc", "keepslot/node-2/backup-old.enc", "keepslot/node-1/oplog/slice"} {
		_, err := remote.Put(context.Background(), k, bytes.NewReader([]byte("old")), store.Info{Name: "backup-old.enc"})
		require.NoError(t, err)
	}
	_, b := exportEnv(t, remote, &store.Retention{Last: 1})
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st, err := b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.ExportDone, st.Export.State, st.Export.Error)
	require.NotNil(t, st.Export.Retention)
	assert.Equal(t, []string{st.Export.Key}, st.Export.Retention.Keep)
	assert.Equal(t, []string{"keepslot/node-1/backup-old.enc"}, st.Export.Retention.Delete)
	l, err := remote.List(ctx, "keepslot/")
	require.NoError(t, err)
	var keys []string
	for _, e := range l {
		keys = append(keys, e.Key)
	}
	assert.Equal(t, []string{"keepslot/node-1/" + st.Name, "keepslot/node-1/oplog/slice", "keepslot/node-2/backup-old.enc"}, keys, "other nodes' copies and the oplog slices are not touched")
	listed, err := b.RemoteList(ctx)
	require.NoError(t, err)
	require.Len(t, listed, 1, "RemoteList lists the copies only")
	assert.Equal(t, "keepslot/node-1/"+st.Name, listed[0].Key)
	assert.Equal(t, st.Oplog, slot.OplogOf(listed[0].Info), "the copy records the backup's oplog span, if any")
}
