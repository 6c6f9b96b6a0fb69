package examples_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// devserver is a running examples/devserver.
type devserver struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	uri   string
	exit  chan error
}

// startDevserver starts devserver with args and TMPDIR set to tmp, and
// reads the URI from its first line of output. Its standard input is a pipe
// (d.stdin) if pipe is true, else /dev/null, as a shell gives a background
// job.
func startDevserver(t *testing.T, tmp string, pipe bool, args ...string) *devserver {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "devserver"), args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stderr = os.Stderr
	d := &devserver{cmd: cmd, exit: make(chan error, 1)}
	if pipe {
		var err error
		d.stdin, err = cmd.StdinPipe()
		require.NoError(t, err)
	}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-d.exit
		}
	})
	select {
	case line, ok := <-lines:
		require.True(t, ok, "devserver ended before printing its URI")
		d.uri = line
	case <-time.After(lineTimeout):
		t.Fatalf("devserver printed no URI within %s", lineTimeout)
	}
	require.True(t, strings.HasPrefix(d.uri, "mongodb://127.0.0.1:"), "first line %q", d.uri)
	go func() { // nothing else is printed, but never block the server on it
		for range lines {
		}
	}()
	return d
}

// wait returns how devserver ended, failing the test if it does not.
func (d *devserver) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.exit:
		return err
	case <-time.After(lineTimeout):
		t.Fatalf("devserver did not exit within %s", lineTimeout)
		return nil
	}
}

// TestDevserver starts the development server as README says and as the
// tests' harness does: its URI on the first line, data kept in -data across
// restarts, a clean exit on SIGTERM or (with -exit-on-eof) when its parent
// closes its standard input, and no temporary directory left behind.
func TestDevserver(t *testing.T) {
	ctx := context.Background()
	tmp, data := t.TempDir(), filepath.Join(t.TempDir(), "db")

	d := startDevserver(t, tmp, true, "-data", data, "-exit-on-eof")
	_, err := connect(t, d.uri).Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "kept"}})
	require.NoError(t, err)
	require.NoError(t, d.stdin.Close())
	require.NoError(t, d.wait(t), "exit at EOF on stdin")

	// Without -exit-on-eof, stdin at EOF from the start does not stop it.
	d = startDevserver(t, tmp, false, "-data", data)
	n, err := connect(t, d.uri).Database("app").Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: "kept"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the data survives a restart on the same -data")
	select {
	case err := <-d.exit:
		t.Fatalf("devserver exited without a signal: %v", err)
	default:
	}
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, d.wait(t), "exit on SIGTERM")

	d = startDevserver(t, tmp, false) // data in a temporary directory under TMPDIR
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, entries, 1, "its temporary data directory")
	require.NoError(t, d.cmd.Process.Signal(os.Interrupt))
	require.NoError(t, d.wait(t), "exit on SIGINT")
	entries, err = os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the temporary data directory is removed at exit")
}
