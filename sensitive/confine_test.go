package sensitive_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/sensitive"
)

// TestRestoreRefusesLinkedDirectory checks that a directory of the target
// that is a link to elsewhere is not followed: the secret is refused and
// nothing lands where the link points.
func TestRestoreRefusesLinkedDirectory(t *testing.T) {
	c := crafted{files: []bson.D{file("sub/k.key", "x")}, manifest: []bson.D{entry("sub/k.key", "x")}}
	data := c.encrypt(t)
	target, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(target, "sub")))

	_, err := sensitive.Restore(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(password), target,
		&sensitive.RestoreOptions{Overwrite: true})
	require.ErrorIs(t, err, sensitive.ErrUnsafePath)
	assertEmptyDir(t, outside)
	assertNoStage(t, target)
}

// TestRestoreConfinedWhileTreeChanges restores again and again while
// another goroutine flips a link in the target between a directory inside
// it and one outside it. A restore that checks the path and then renames
// lets secrets through the link now and then; one confined to the target
// never does. Restores may fail while the tree changes; none may write
// outside.
func TestRestoreConfinedWhileTreeChanges(t *testing.T) {
	var files, manifest []bson.D
	for _, name := range []string{"sub/a.key", "sub/b.key", "sub/c.key", "sub/d.key"} {
		files, manifest = append(files, file(name, name)), append(manifest, entry(name, name))
	}
	data := crafted{files: files, manifest: manifest}.encrypt(t)
	target, outside := t.TempDir(), t.TempDir()
	inside := filepath.Join(target, "real")
	require.NoError(t, os.Mkdir(inside, 0o700))
	sub, tmp := filepath.Join(target, "sub"), filepath.Join(target, "flip")
	require.NoError(t, os.Symlink(inside, sub))

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			for _, to := range []string{outside, inside} {
				// Renaming a fresh link over sub swaps it atomically.
				_ = os.Remove(tmp)
				if os.Symlink(to, tmp) == nil {
					_ = os.Rename(tmp, sub)
				}
			}
		}
	})
	ctx := context.Background()
	var ok, failed int
	for range 60 {
		_, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target,
			&sensitive.RestoreOptions{Overwrite: true})
		if err == nil {
			ok++
		} else {
			failed++
			assert.ErrorIs(t, err, sensitive.ErrUnsafePath)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d restores succeeded, %d failed while the tree changed", ok, failed)
	assertEmptyDir(t, outside)
	assertNoStage(t, target)
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing may be written in %s", dir)
}

func assertNoStage(t *testing.T, dir string) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, ".keepslot-restore-*"))
	require.NoError(t, err)
	assert.Empty(t, matches, "the staging directory is removed")
}

// TestErrorCodes checks that errcode.Of classifies sensitive's errors, so
// that agents and CLIs need one mapping for both backups.
func TestErrorCodes(t *testing.T) {
	for err, want := range map[error]errcode.Code{
		sensitive.ErrNotRegular:       errcode.Invalid,
		sensitive.ErrTooLarge:         errcode.Invalid,
		sensitive.ErrDuplicate:        errcode.Invalid,
		sensitive.ErrUnsafePath:       errcode.Invalid,
		sensitive.ErrExists:           errcode.Exists,
		sensitive.ErrManifestMismatch: errcode.Corrupt,
		sensitive.ErrBadName:          errcode.Invalid,
		sensitive.ErrNameConflict:     errcode.Invalid,
		sensitive.ErrInTheWay:         errcode.Exists,
		sensitive.ErrTooMany:          errcode.Invalid,
		sensitive.ErrTooManyEntries:   errcode.Corrupt,
		sensitive.ErrBusy:             errcode.InProgress,
	} {
		wrapped := fmt.Errorf("%w: k.key", err)
		assert.Equal(t, want, errcode.Of(wrapped), err.Error())
		assert.ErrorIs(t, wrapped, err)
	}
}
