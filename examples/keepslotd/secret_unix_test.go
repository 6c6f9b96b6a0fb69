//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
)

// TestPITRKeyUnsafeFiles checks that -pitr's password and key files are
// refused, at once and saying why, when they are a FIFO (which blocked the
// agent for ever, before it listened, logging nothing), a file over 4 KiB
// (a 1 GiB one was read whole) or a symbolic link.
func TestPITRKeyUnsafeFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	huge := filepath.Join(dir, "huge")
	require.NoError(t, os.WriteFile(huge, []byte("pw\n"), 0o600))
	require.NoError(t, os.Truncate(huge, 1<<30)) // sparse
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("pw\n"), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(key, link))
	kdf := &cipher.Options{LogN: 10}

	for _, tc := range []struct {
		f    pitrFlags
		want string
	}{
		{pitrFlags{on: true, keyFile: fifo}, "is a FIFO"},
		{pitrFlags{on: true, passwordFile: fifo}, "is a FIFO"},
		{pitrFlags{on: true, keyFile: huge}, "1073741824 bytes"},
		{pitrFlags{on: true, passwordFile: huge}, "at most 4 KiB"},
		{pitrFlags{on: true, keyFile: link}, "symbolic link"},
		{pitrFlags{on: true, passwordFile: link}, "symbolic link"},
	} {
		// Waiting here bounds the test, should the FIFO block again; the
		// refusal takes no time.
		done := make(chan error, 1)
		go func() {
			_, err := tc.f.key(true, kdf)
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Minute):
			t.Fatalf("%+v: still reading the secret file after a minute", tc.f)
		}
		require.ErrorIs(t, err, errPITR, "%+v", tc.f)
		assert.Contains(t, err.Error(), tc.want)
		assert.Equal(t, errcode.Invalid, errcode.Of(err))
	}
}
