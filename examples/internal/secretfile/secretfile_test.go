//go:build unix

package secretfile_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/examples/internal/secretfile"
)

// TestRead checks what Read accepts and refuses, each refusal with its
// sentinel, code invalid, and a message that names the file and the cause
// but not the secret. A FIFO and a 1 GiB file are refused at once, without
// blocking or reading them.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	good := write("good", "s3cret\n", 0o600)
	b, err := secretfile.Read(good)
	require.NoError(t, err)
	assert.Equal(t, "s3cret\n", string(b))
	b, err = secretfile.Read(write("readonly", "s3cret", 0o400))
	require.NoError(t, err)
	assert.Equal(t, "s3cret", string(b))
	b, err = secretfile.Read(write("max", string(make([]byte, secretfile.MaxSize)), 0o600))
	require.NoError(t, err)
	assert.Len(t, b, secretfile.MaxSize)

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	huge := write("huge", "s3cret", 0o600)
	require.NoError(t, os.Truncate(huge, 1<<30))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(good, link))

	for _, tc := range []struct {
		name string
		want error
		says string
	}{
		{fifo, secretfile.ErrNotRegular, "is a FIFO"},
		{dir, secretfile.ErrNotRegular, "is a directory"},
		{huge, secretfile.ErrTooLarge, "1073741824 bytes"},
		{write("over", string(make([]byte, secretfile.MaxSize+1)), 0o600), secretfile.ErrTooLarge, "4097 bytes"},
		{link, secretfile.ErrLink, "name the file it points to"},
		{write("loose", "s3cret", 0o640), secretfile.ErrMode, "chmod 600"},
		{write("writable", "s3cret", 0o602), secretfile.ErrMode, "chmod 600"},
	} {
		_, err := secretfile.Read(tc.name)
		require.ErrorIs(t, err, tc.want, tc.name)
		assert.ErrorIs(t, err, secretfile.ErrUnsafe)
		assert.Equal(t, errcode.Invalid, errcode.Of(err))
		assert.Contains(t, err.Error(), tc.name)
		assert.Contains(t, err.Error(), tc.says)
		assert.NotContains(t, err.Error(), "s3cret")
	}

	_, err = secretfile.Read(filepath.Join(dir, "none"))
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.NotErrorIs(t, err, secretfile.ErrUnsafe)
}
