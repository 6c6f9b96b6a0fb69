//go:build unix

package examples_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAgentRefusesFIFOKey starts keepslotd with a FIFO for -pitr-key-file:
// it exits at once, saying so, before it listens. It used to block for ever
// reading the FIFO, logging nothing. (The key is read before the bucket is
// asked, so no S3 server is needed.)
func TestAgentRefusesFIFOKey(t *testing.T) {
	work := t.TempDir()
	fifo := filepath.Join(work, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	cmd := agentCmd(filepath.Join(work, "node"), "-export-bucket", "b", "-export-endpoint", "127.0.0.1:1", "-export-insecure",
		"-pitr", "-pitr-key-file", fifo)
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "keepslotd still reads the FIFO: %s", out)
	require.Error(t, err)
	assert.Contains(t, string(out), "is a FIFO")
	assert.Contains(t, string(out), fifo)
	assert.NotContains(t, string(out), "listening")
}
