package main

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/store"
)

// objectsAgent is a fake agent whose bucket holds a base backup and a
// slice of 1000 bytes each: the slice's download breaks off after 100
// bytes (the agent dies), and the base's answer is the agent's 503 for a
// bucket that does not answer.
func objectsAgent(t *testing.T) (srvURL string, closeSrv func()) {
	t.Helper()
	objects := map[string]any{"node": "keepslot/n1/", "entries": []store.Entry{
		{Key: "keepslot/n1/backup-1.tar.gz", Info: store.Info{Name: "backup-1.tar.gz", Size: 1000}},
		{Key: "keepslot/n1/oplog/s1.bson", Info: store.Info{Name: "s1.bson", Size: 1000}},
	}}
	srv := fakeAgent(t, map[string]http.HandlerFunc{
		"GET /v1/pitr/objects": answerJSON(t, objects),
		"GET /v1/pitr/slices/s1.bson": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(make([]byte, 100))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler) // the connection is cut
		},
		"GET /v1/backup/remote/backup-1.tar.gz": func(w http.ResponseWriter, _ *http.Request) {
			answer(w, http.StatusServiceUnavailable, `{"error":"unreachable","message":"s3store: the server cannot be reached; check the endpoint"}`)
		},
	})
	return srv.URL, srv.Close
}

// TestToTimeUnreachable checks that a point-in-time restore whose agent,
// or whose bucket behind the agent, stops answering while it downloads
// ends with exit 8 (unreachable), not 1, and says which: the library
// wraps the errors of the agentRemote it reads, so they carry their code.
func TestToTimeUnreachable(t *testing.T) {
	url, closeSrv := objectsAgent(t)
	c, err := newClient(url, "tok", "", false)
	require.NoError(t, err)
	dir := t.TempDir()
	remote := &agentRemote{c: c, dir: dir, infos: map[string]store.Info{}}
	_, err = remote.node(t.Context())
	require.NoError(t, err)

	for _, tc := range []struct{ key, says string }{
		{"keepslot/n1/oplog/s1.bson", "broke off after 100 of its 1000 bytes"},
		{"keepslot/n1/backup-1.tar.gz", "s3store: the server cannot be reached"},
	} {
		_, err := remote.Open(t.Context(), tc.key)
		require.Error(t, err)
		wrapped := fmt.Errorf("pitr: open the slice %s: %w", tc.key, err) // as pitr.Restore wraps it
		assert.Equal(t, errcode.Unreachable, errcode.Of(wrapped), tc.key)
		got := restoreError(wrapped)
		assert.Equal(t, exitUnreachable, exitCode(got), "%s: %v", tc.key, got)
		assert.Contains(t, got.Error(), tc.says)
	}
	closeSrv()
	_, err = remote.Open(t.Context(), "keepslot/n1/oplog/s1.bson")
	got := restoreError(fmt.Errorf("pitr: open the slice: %w", err))
	assert.Equal(t, exitUnreachable, exitCode(got), "%v", got)
	assert.Contains(t, got.Error(), "cannot reach the agent")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left, "no partial download is left")
}

// TestAgentErrorCodes checks that the agent's answers carry keepslot's
// code through the library's wrapping, with the exit code they have
// unwrapped.
func TestAgentErrorCodes(t *testing.T) {
	for code, want := range documentedExit {
		err := fmt.Errorf("pitr: list: %w", &apiError{Status: 500, Code: code, Message: "m"})
		assert.Equal(t, want, exitCode(restoreError(err)), code)
	}
}
