package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The crash tests run this test binary again as a child process that writes
// to a DirStore and stops at a chosen point, and kill it there with SIGKILL.

const (
	crashModeEnv = "KEEPSLOT_STORE_CRASH_MODE"
	crashDirEnv  = "KEEPSLOT_STORE_CRASH_DIR"
	crashMarker  = "KEEPSLOT-CRASH-CHILD-AT"

	crashBlock     = 1 << 20
	crashMidAfter  = 16        // blocks written before a "mid-write" child reports
	crashMidBlocks = 128       // blocks a "mid-write" child writes in all
	crashHookBlock = 20        // blocks a child stopping in Commit writes
	crashName      = "crashed" // the name the child gives its object
)

// crashBlockData is block i of what a child writes.
func crashBlockData(i int) []byte {
	b := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a}, crashBlock/3+1)
	return b[:crashBlock]
}

// park reports that the child reached step and waits to be killed: its
// parent never closes its stdin.
func park(step string) {
	fmt.Printf("%s %s\n", crashMarker, step)
	io.Copy(io.Discard, os.Stdin)
	os.Exit(3) // only if the parent went away
}

// TestCrashHelper is the child process of the crash tests; on its own it
// skips.
func TestCrashHelper(t *testing.T) {
	mode := os.Getenv(crashModeEnv)
	if mode == "" {
		t.Skip("the child process of the crash tests")
	}
	s, err := Dir(os.Getenv(crashDirEnv))
	require.NoError(t, err)
	if mode != "mid-write" {
		s.setCommitHook(func(step string) {
			if step == mode {
				park(step)
			}
		})
	}
	p, err := s.Create(context.Background(), crashName)
	require.NoError(t, err)
	blocks := crashHookBlock
	if mode == "mid-write" {
		blocks = crashMidBlocks
	}
	for i := range blocks {
		_, err := p.Write(crashBlockData(i))
		require.NoError(t, err)
		if mode == "mid-write" && i+1 == crashMidAfter {
			fmt.Printf("%s %s\n", crashMarker, mode)
		}
	}
	if mode == "mid-write" {
		park("end-of-data")
	}
	_, err = p.Commit(map[string]string{"by": "child"})
	require.NoError(t, err)
	t.Fatalf("the child committed; it should have stopped at %q", mode)
}

// startCrashChild starts a child writing to dir and returns when it has
// reached mode, with the child still alive. The returned function kills it.
func startCrashChild(t *testing.T, dir, mode string) (kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashModeEnv+"="+mode, crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	kill = func() {
		if killed {
			return
		}
		killed = true
		require.NoError(t, cmd.Process.Kill())
		cmd.Wait() // the kill's exit status; the pipes are closed
		stdin.Close()
	}
	t.Cleanup(kill)

	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == crashMarker+" "+mode {
			return kill
		}
		out.WriteString(line + "\n")
	}
	cmd.Wait()
	t.Fatalf("the child ended before reaching %q:\nstdout:\n%s\nstderr:\n%s", mode, out.String(), stderr.String())
	return nil
}

// leftovers lists the directory's files other than the lock files and a
// committed object's two files.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	s := &DirStore{path: dir}
	object, _, _ := s.readInfo()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		switch n := e.Name(); n {
		case gateLockName, writeLockName, infoName, object:
		default:
			names = append(names, n)
		}
	}
	return names
}

func pendingFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, n := range leftovers(t, dir) {
		if strings.HasPrefix(n, pendingPrefix) {
			names = append(names, n)
		}
	}
	return names
}

// checkNewWriteWorks stores a small object and deletes it again.
func checkNewWriteWorks(t *testing.T, s *DirStore) {
	t.Helper()
	p, err := s.Create(t.Context(), "after-crash")
	require.NoError(t, err, "Create after the crash")
	_, err = p.Write([]byte("fresh"))
	require.NoError(t, err)
	info, err := p.Commit(nil)
	require.NoError(t, err)
	assert.Equal(t, int64(5), info.Size)
	assert.Empty(t, leftovers(t, s.path))
	require.NoError(t, s.Delete(t.Context()))
}

func TestDirCrashBeforeCommit(t *testing.T) {
	for _, mode := range []string{"mid-write", "data-synced", "data-renamed"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			kill := startCrashChild(t, dir, mode)

			// The child holds the slot: another process sees a write under
			// way and an empty slot, and its reads leave the child's files
			// alone.
			s, err := Dir(dir)
			require.NoError(t, err)
			_, err = s.Create(t.Context(), "rival")
			require.ErrorIs(t, err, ErrBusy, "Create while another process writes")
			require.ErrorIs(t, s.Delete(t.Context()), ErrBusy, "Delete while another process writes")
			_, err = s.Stat(t.Context())
			require.ErrorIs(t, err, ErrEmpty, "Stat while another process writes")
			require.NotEmpty(t, pendingFiles(t, dir), "the child's pending files, after a Stat from another process")

			kill()
			require.NotEmpty(t, leftovers(t, dir), "the killed child leaves files behind")

			s, err = Dir(dir)
			require.NoError(t, err)
			_, err = s.Stat(t.Context())
			require.ErrorIs(t, err, ErrEmpty, "Stat after the crash")
			assert.Empty(t, leftovers(t, dir), "files left after the first call following the crash")
			_, err = s.Open(t.Context())
			require.ErrorIs(t, err, ErrEmpty, "Open after the crash")
			checkNewWriteWorks(t, s)
		})
	}
}

func TestDirCrashAfterInfoRename(t *testing.T) {
	dir := t.TempDir()
	kill := startCrashChild(t, dir, "info-renamed")
	kill()

	want := md5.New()
	for i := range crashHookBlock {
		want.Write(crashBlockData(i))
	}
	s, err := Dir(dir)
	require.NoError(t, err)
	info, err := s.Stat(t.Context())
	require.NoError(t, err, "the object was visible before the crash")
	assert.Equal(t, crashName, info.Name)
	assert.Equal(t, int64(crashHookBlock*crashBlock), info.Size)
	assert.Equal(t, hex.EncodeToString(want.Sum(nil)), info.MD5)
	assert.Equal(t, map[string]string{"by": "child"}, info.Meta)
	assert.Empty(t, leftovers(t, dir))

	o, err := s.Open(t.Context())
	require.NoError(t, err)
	got := md5.New()
	_, err = io.Copy(got, o)
	require.NoError(t, err)
	require.NoError(t, o.Close())
	assert.Equal(t, info.MD5, hex.EncodeToString(got.Sum(nil)), "md5 of the bytes read back")

	_, err = s.Create(t.Context(), "second")
	require.ErrorIs(t, err, ErrSlotOccupied)
	require.NoError(t, s.Delete(t.Context()))
	checkNewWriteWorks(t, s)
}
