package slottest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/slot/slottest"
	"github.com/keepslot/keepslot/store"
)

func TestFakeLifecycle(t *testing.T) {
	ctx := context.Background()
	f := slottest.New()

	assert.ErrorIs(t, f.Start(ctx, nil), cipher.ErrEmptyPassword)
	f.SetRole(false)
	assert.ErrorIs(t, f.Start(ctx, []byte("pw")), slot.ErrNotBackupNode)
	f.SetRole(true)

	require.NoError(t, f.Start(ctx, []byte("pw")))
	assert.Equal(t, []byte("pw"), f.Password())
	assert.ErrorIs(t, f.Start(ctx, []byte("pw")), slot.ErrInProgress)
	assert.ErrorIs(t, f.Delete(ctx), slot.ErrInProgress)
	f.SetProgress(archive.Progress{NamespacesDone: 1, NamespacesTotal: 2})
	st, err := f.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateInProgress, st.State)
	assert.Equal(t, 2, st.Progress.NamespacesTotal)

	f.Finish([]byte("ciphertext"))
	st, err = f.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateReady, st.State)
	assert.Equal(t, "cb54616748fddc2fb607b9eb4312ee3d", st.MD5) // md5("ciphertext")
	assert.ErrorIs(t, f.Start(ctx, []byte("pw")), store.ErrSlotOccupied)

	var buf bytes.Buffer
	info, err := f.Retrieve(ctx, &buf)
	require.NoError(t, err)
	assert.Equal(t, "ciphertext", buf.String())
	assert.Equal(t, st.MD5, info.MD5)

	require.NoError(t, f.Delete(ctx))
	assert.ErrorIs(t, f.Delete(ctx), store.ErrEmpty)
	_, err = f.Retrieve(ctx, &buf)
	assert.ErrorIs(t, err, store.ErrEmpty)

	require.NoError(t, f.Start(ctx, []byte("pw")))
	f.Fail(errors.New("disk full"))
	st, err = f.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "Backup failed: disk full", st.Message())
	assert.Equal(t, errcode.Internal, st.Code)

	assert.Equal(t, []string{"Start", "Start", "Start", "Start", "Delete", "Status", "Status", "Start", "Retrieve", "Delete", "Delete", "Retrieve", "Start", "Status"}, f.Calls())
}

// TestFakeWaitCancelOpen checks the verbs the agent uses beside the four:
// Wait blocks until the backup ends, Cancel ends it as cancelled, and Open
// serves ranged reads of the finished data.
func TestFakeWaitCancelOpen(t *testing.T) {
	ctx := context.Background()
	f := slottest.New()
	_, err := f.Open(ctx)
	assert.ErrorIs(t, err, store.ErrEmpty)

	require.NoError(t, f.Start(ctx, []byte("pw")))
	waited := make(chan slot.Status)
	go func() {
		st, err := f.Wait(ctx)
		assert.NoError(t, err)
		waited <- st
	}()
	short, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.Wait(short)
	assert.ErrorIs(t, err, context.Canceled, "Wait gives up when its context is done")
	require.NoError(t, f.Cancel(ctx))
	st := <-waited
	assert.Equal(t, slot.StateFailed, st.State)
	assert.Equal(t, errcode.Cancelled, st.Code)
	require.NoError(t, f.Cancel(ctx), "Cancel with no backup running is a no-op")

	require.NoError(t, f.Start(ctx, []byte("pw")))
	f.Fail(fmt.Errorf("backup: %w", backup.ErrUnreachable))
	st, err = f.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, errcode.Unreachable, st.Code)

	require.NoError(t, f.Start(ctx, []byte("pw")))
	f.Finish([]byte("0123456789"))
	obj, err := f.Open(ctx)
	require.NoError(t, err)
	defer obj.Close()
	part := make([]byte, 4)
	_, err = obj.ReadAt(part, 3)
	require.NoError(t, err)
	assert.Equal(t, "3456", string(part))
	assert.Equal(t, int64(10), obj.Info().Size)
	assert.Equal(t, "781e5e245d69b566979b86e28d23f2c7", obj.Info().MD5) // md5("0123456789")
}

func TestFakeForcedErrors(t *testing.T) {
	ctx := context.Background()
	f := slottest.New()
	boom := errors.New("boom")
	f.FailNext("Status", boom)
	_, err := f.Status(ctx)
	assert.ErrorIs(t, err, boom)
	_, err = f.Status(ctx) // only the next call fails
	assert.NoError(t, err)
}

// ExampleFake shows a unit test of code that embeds a Backupper.
func ExampleFake() {
	f := slottest.New()
	ctx := context.Background()
	_ = f.Start(ctx, []byte("secret"))
	f.Finish([]byte("encrypted bytes"))
	st, _ := f.Status(ctx)
	fmt.Println(st.Message())
	fmt.Println(string(st.ApplianceJSON())[:37])
	// Output:
	// Backup found
	// {"message":"Backup found","arguments"
}
