//go:build unix

package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
)

// holdEnv makes the test binary a helper that creates a restore
// --to-time's temporary directory in the directory the variable names,
// prints it and waits to be killed.
const holdEnv = "KEEPSLOTCTL_TEST_HOLD_PITR_DIR"

func TestMain(m *testing.M) {
	if parent := os.Getenv(holdEnv); parent != "" {
		dir, _, err := pitrTempDir(parent)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(dir, "object-1"), []byte("encrypted"), 0o600); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(dir)
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until killed
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStalePITRDirsRemoved checks that the temporary directory of a
// restore --to-time killed with SIGKILL is removed by the next one, and
// only it: not one whose restore runs, in this process or another, nor one
// being set up, nor a link.
func TestStalePITRDirsRemoved(t *testing.T) {
	parent := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), holdEnv+"="+parent)
	stdin, err := helper.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	out, err := helper.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, helper.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	killed := strings.TrimSpace(line)
	require.DirExists(t, killed, line)

	live, release, err := pitrTempDir(parent)
	require.NoError(t, err)
	defer release()
	settingUp := filepath.Join(parent, pitrTempPrefix+"new")
	require.NoError(t, os.Mkdir(settingUp, 0o700))
	target := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(target, lockName), nil, 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(parent, pitrTempPrefix+"link")))

	removed, err := removeStale(parent)
	require.NoError(t, err)
	assert.Empty(t, removed, "the helper runs: its directory is not stale")

	require.NoError(t, helper.Process.Kill())
	_ = helper.Wait()
	removed, err = removeStale(parent)
	require.NoError(t, err)
	assert.Equal(t, []string{killed}, removed)
	assert.NoDirExists(t, killed)
	for _, d := range []string{live, settingUp, target} {
		assert.DirExists(t, d)
	}
	_, err = os.Lstat(filepath.Join(parent, pitrTempPrefix+"link"))
	assert.NoError(t, err, "a link is not followed, nor removed")
	assert.FileExists(t, filepath.Join(target, lockName))

	release()
	assert.NoDirExists(t, live, "release removes the directory")
}

// TestToTimeRemovesStaleDirs checks that restore --to-time removes the
// directory a killed one left in $TMPDIR, and says so.
func TestToTimeRemovesStaleDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stale := filepath.Join(tmp, pitrTempPrefix+"123")
	require.NoError(t, os.Mkdir(stale, 0o700))
	for _, f := range []string{lockName, "object-1", "keepslot-slice-2"} {
		require.NoError(t, os.WriteFile(filepath.Join(stale, f), []byte("x"), 0o600))
	}
	srv := fakeAgent(t, map[string]http.HandlerFunc{
		"GET /v1/pitr/objects": answerJSON(t, map[string]any{"node": "keepslot/n1/", "entries": []store.Entry{}}),
	})
	r := runCtl(t, "-t", srv.URL, "--token", "tok", "restore", "--to-time", "1796250548:7", "--dry-run", "--password", "pw")
	assert.Equal(t, exitNoBackup, r.code, "%v", r.err)
	assert.Contains(t, r.stderr, "note: removed "+stale)
	assert.NoDirExists(t, stale)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the restore's own directory is removed too")
}

// TestSecretFilesRefused checks that --password-file and --token-file
// refuse, at once and as a usage error naming the file, a FIFO (which
// blocked keepslotctl for ever), a file over 4 KiB and one others may
// read.
func TestSecretFilesRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	huge := filepath.Join(dir, "huge")
	require.NoError(t, os.WriteFile(huge, []byte("pw\n"), 0o600))
	require.NoError(t, os.Truncate(huge, 1<<30))
	loose := filepath.Join(dir, "loose")
	require.NoError(t, os.WriteFile(loose, []byte("pw\n"), 0o600))
	require.NoError(t, os.Chmod(loose, 0o644))
	backup := encryptFile(t, dir, "backup.enc", []byte("not read"))
	t.Setenv("KEEPSLOT_TOKEN", "")
	for _, tc := range []struct {
		file, says string
	}{{fifo, "is a FIFO"}, {huge, "at most 4 KiB"}, {loose, "chmod 600"}} {
		for _, args := range [][]string{
			{"restore", "--dry-run", "--password-file", tc.file, backup},
			{"-t", "127.0.0.1:1", "--token-file", tc.file, "backup-status"},
		} {
			done := make(chan ctlRun, 1)
			go func() { done <- runCtl(t, args...) }()
			var r ctlRun
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatalf("%v: still reading the secret file after a minute", args)
			}
			assert.Equal(t, exitUsage, r.code, "%v: %v", args, r.err)
			require.Error(t, r.err, args)
			assert.Contains(t, r.err.Error(), tc.file)
			assert.Contains(t, r.err.Error(), tc.says)
		}
	}
}
