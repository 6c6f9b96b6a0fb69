package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/backup"
)

// TestDataDirPermissions checks that the agent's data directory, which
// holds the token and the backups, is open to its owner only: created so,
// and tightened (and logged) if it exists with looser permissions.
func TestDataDirPermissions(t *testing.T) {
	mode := func(dir string) os.FileMode {
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		return fi.Mode().Perm()
	}
	for _, tc := range []struct {
		name   string
		before os.FileMode // 0: the directory does not exist
		logged bool
	}{
		{"new", 0, false},
		{"private", 0o700, false},
		{"world-readable", 0o755, true},
		{"group-writable", 0o770, true},
		{"owner-read-only", 0o500, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tc.before != 0 {
				require.NoError(t, os.Mkdir(dir, 0o700))
				require.NoError(t, os.Chmod(dir, tc.before))
			}
			var logs bytes.Buffer
			require.NoError(t, prepareDataDir(dir, slog.New(slog.NewTextHandler(&logs, nil))))
			assert.Equal(t, os.FileMode(0o700), mode(dir))
			if tc.logged {
				assert.Contains(t, logs.String(), "level=WARN")
				assert.Contains(t, logs.String(), dir)
				assert.Contains(t, logs.String(), "from="+tc.before.String())
			} else {
				assert.Empty(t, logs.String())
			}
		})
	}

	t.Run("a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "data")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		err := prepareDataDir(file, slog.New(slog.DiscardHandler))
		require.ErrorIs(t, err, errDataDir)
		assert.Contains(t, err.Error(), file)
		assert.Contains(t, err.Error(), "not a directory")
	})
}

// TestSourceOptions: -oplog and -operation-timeout reach the backup's source.
func TestSourceOptions(t *testing.T) {
	src := options{oplog: backup.ToggleOn, opTimeout: 7 * time.Second}.source("mongodb://127.0.0.1:1")
	assert.Equal(t, "mongodb://127.0.0.1:1", src.Conn.URI)
	assert.Equal(t, backup.ToggleOn, src.Oplog)
	assert.Equal(t, 7*time.Second, src.Conn.OperationTimeout)
}
