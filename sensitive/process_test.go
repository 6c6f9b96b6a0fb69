//go:build linux

package sensitive_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/sensitive"
)

// buildProbe builds internal/testkit/memprobe, without the race detector,
// into a temporary directory and returns its path. Its sensitive
// subcommands craft backups and restore them.
func buildProbe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memprobe")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/keepslot/keepslot/internal/testkit/memprobe").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestRestoreMemoryBounded restores, in a process of its own, an
// authenticated backup of 8.5 MB whose manifest lists three million
// entries. Holding them all peaked at 727 to 758 MiB; the restore must
// stay within 64 MiB of peak resident memory, and refuses the file as
// corrupt, holding too many secrets. The child reports its own peak (VmHWM): the ru_maxrss a parent
// reads includes the parent's own peak, since Go starts children with
// vfork.
func TestRestoreMemoryBounded(t *testing.T) {
	bin := buildProbe(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "crafted.ksl")
	out, err := exec.Command(bin, "sensitive", "craft", file, "3000000").CombinedOutput()
	require.NoError(t, err, "%s", out)
	fi, err := os.Stat(file)
	require.NoError(t, err)

	out, err = exec.Command(bin, "sensitive", "restore", file, filepath.Join(dir, "out")).Output()
	require.NoError(t, err, "%s", out)
	var peakKiB int64
	var result string
	_, err = fmt.Sscanf(string(out), "peak_rss_kib %d\n", &peakKiB)
	require.NoError(t, err, "%s", out)
	_, result, _ = strings.Cut(string(out), "\n")
	t.Logf("crafted file %d bytes; restore peak RSS %d KiB; %s", fi.Size(), peakKiB, result)
	assert.LessOrEqual(t, peakKiB, int64(64<<10), "peak RSS in KiB")
	assert.True(t, strings.HasPrefix(result, "error corrupt "), "%s", result)
	assert.Contains(t, result, "more secrets or manifest entries than a sensitive backup may")
	assert.Contains(t, result, "10000")
	assert.NoDirExists(t, filepath.Join(dir, "out", "k0000000"))
}

// TestKilledRestoreLeavesNoPlaintext kills a restore (SIGKILL, in a process
// of its own) once it has staged a secret in the target directory, and
// checks that the next restore into that directory removes the staged
// plaintext and says so.
func TestKilledRestoreLeavesNoPlaintext(t *testing.T) {
	bin := buildProbe(t)
	dir := t.TempDir()
	file, target := filepath.Join(dir, "big.ksl"), filepath.Join(dir, "out")
	out, err := exec.Command(bin, "sensitive", "craft-big", file).CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command(bin, "sensitive", "stall", file, target)
	stdin, err := cmd.StdinPipe() // kept open: the child blocks reading it
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "staged\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q (%v), want staged", line, err)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	stale, err := filepath.Glob(filepath.Join(target, ".keepslot-restore-*"))
	require.NoError(t, err)
	require.Len(t, stale, 1, "the killed restore left its staging directory")
	fi, err := os.Stat(stale[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	staged, err := os.ReadDir(stale[0])
	require.NoError(t, err)
	require.NotEmpty(t, staged, "with plaintext in it")

	data, err := os.ReadFile(file)
	require.NoError(t, err)
	rep, err := sensitive.Restore(context.Background(), bytes.NewReader(data), int64(len(data)), []byte("memprobe"), target, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Base(stale[0])}, rep.Removed)
	assertNoStage(t, target)
	assert.Equal(t, []string{"big0.key", "big1.key"}, names(rep))
}
