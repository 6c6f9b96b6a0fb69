//go:build unix

package sensitive

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/errcode"
)

// TestReadFileRefusesSwappedFile checks the window between the walk's
// check of a file and its read: the file is swapped, after the check, for
// a link to another file, a link to /dev/zero or a pipe, or a pipe. Reading
// through the link took the wrong file, and /dev/zero or a pipe would fill
// the memory or hang the backup; each must be refused with ErrNotRegular
// as it is opened, without reading.
func TestReadFileRefusesSwappedFile(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	require.NoError(t, os.WriteFile(other, []byte("not the secret that was checked"), 0o600))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))

	for _, tc := range []struct {
		name string
		swap func(p string) error
		says string
	}{
		{"link to a file", func(p string) error { return os.Symlink(other, p) }, "a symbolic link"},
		{"link to /dev/zero", func(p string) error { return os.Symlink("/dev/zero", p) }, "a symbolic link"},
		{"link to a pipe", func(p string) error { return os.Symlink(fifo, p) }, "a symbolic link"},
		{"pipe", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "p---------"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k.key")
			require.NoError(t, os.WriteFile(p, []byte("secret"), 0o600))
			checked, err := os.Lstat(p) // what the walk saw
			require.NoError(t, err)
			require.NoError(t, os.Remove(p))
			require.NoError(t, tc.swap(p))

			err = readFile(context.Background(), p, "k.key", checked, func(s Secret) error {
				t.Errorf("read %d bytes through the swapped file", len(s.Data))
				return nil
			})
			require.ErrorIs(t, err, ErrNotRegular)
			assert.Equal(t, errcode.Invalid, errcode.Of(err))
			assert.Contains(t, err.Error(), p)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
}

// TestReadFileReadsAtMostItsSize checks that a regular file is read whole
// and no further.
func TestReadFileReadsAtMostItsSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.key")
	require.NoError(t, os.WriteFile(p, []byte("secret"), 0o640))
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	var got Secret
	require.NoError(t, readFile(context.Background(), p, "k.key", fi, func(s Secret) error { got = s; return nil }))
	assert.Equal(t, "secret", string(got.Data))
	assert.Equal(t, os.FileMode(0o640), got.Mode)
	assert.Equal(t, "k.key", got.Name)
}
