//go:build unix

package sensitive_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/sensitive"
)

// killedStage makes, in target, the staging directory a restore killed
// midway leaves: 0700, with a staged secret in plaintext.
func killedStage(t *testing.T, target, name string) string {
	t.Helper()
	dir := filepath.Join(target, name)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "000000"), []byte(masterKey), 0o600))
	return dir
}

// TestRestoreRemovesStaleStaging checks that a restore removes the staging
// directories killed restores left in its target, and names them in its
// report, and that it leaves alone what only looks like one.
func TestRestoreRemovesStaleStaging(t *testing.T) {
	data := crafted{files: []bson.D{file("a.key", "x")}, manifest: []bson.D{entry("a.key", "x")}}.encrypt(t)
	target := t.TempDir()
	const stale = ".keepslot-restore-0123456789abcdef"
	killedStage(t, target, stale)
	lookalikes := []string{".keepslot-restore-notmine", ".keepslot-restore-0123456789ABCDEF"}
	for _, n := range lookalikes {
		killedStage(t, target, n)
	}
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(target, ".keepslot-restore-fedcba9876543210")))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o600))
	ctx := context.Background()

	rep, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, &sensitive.RestoreOptions{DryRun: true})
	require.NoError(t, err)
	assert.Empty(t, rep.Removed, "a dry run removes nothing")
	assert.DirExists(t, filepath.Join(target, stale))

	rep, err = sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{stale}, rep.Removed)
	assert.NoDirExists(t, filepath.Join(target, stale))
	for _, n := range lookalikes {
		assert.DirExists(t, filepath.Join(target, n))
	}
	assert.FileExists(t, filepath.Join(outside, "keep"), "a link is not followed")
	assertFile(t, filepath.Join(target, "a.key"), "x")
}

// TestRestoreBusy checks that a restore into a directory another restore
// holds fails with ErrBusy, without touching that restore's staging
// directory, and succeeds once the other has ended.
func TestRestoreBusy(t *testing.T) {
	data := crafted{files: []bson.D{file("a.key", "x")}, manifest: []bson.D{entry("a.key", "x")}}.encrypt(t)
	target := t.TempDir()
	running := killedStage(t, target, ".keepslot-restore-0123456789abcdef")

	// What a running restore holds: a flock on the target directory.
	d, err := os.Open(target)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	ctx := context.Background()
	_, err = sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
	require.ErrorIs(t, err, sensitive.ErrBusy)
	assert.Equal(t, errcode.InProgress, errcode.Of(err))
	assert.Contains(t, err.Error(), target)
	assert.DirExists(t, running)
	assert.NoFileExists(t, filepath.Join(target, "a.key"))

	require.NoError(t, d.Close())
	rep, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
	require.NoError(t, err)
	assert.Len(t, rep.Removed, 1)
	assertFile(t, filepath.Join(target, "a.key"), "x")
}
