package main

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/examples/internal/errstyle"
)

// TestErrorTexts holds keepslotctl's own error texts to the style its
// package documentation states: no prefix, neither a package's name nor
// its own, which main prints once before the error it ends with.
func TestErrorTexts(t *testing.T) {
	errstyle.Check(t, "usageErrorf", "unreachablef", "corruptf")
}

// TestReportsNameTheCommandOnce: what keepslotctl reports on stderr
// begins with its name once, before a text that begins with the package
// it came from, if any: a backup-status whose bucket does not answer says
// so as "keepslotctl: …", not under the name of the agent's package whose
// message follows; a failure is reported as "keepslotctl: " and the error.
func TestReportsNameTheCommandOnce(t *testing.T) {
	srv := fakeAgent(t, map[string]http.HandlerFunc{
		"GET /v1/backup": answerJSON(t, status{Message: "Backup found", Status: map[string]any{"state": "ready"}}),
		"GET /v1/pitr": func(w http.ResponseWriter, _ *http.Request) {
			answer(w, http.StatusServiceUnavailable, `{"error":"unreachable","message":"pitr: list the slices: the bucket does not answer"}`)
		},
	})
	r := runCtl(t, "-t", srv.URL, "--token", "tok", "backup-status")
	require.NoError(t, r.err)
	assert.Equal(t, "keepslotctl: the bucket's restorable windows are unknown: pitr: list the slices: the bucket does not answer\n", r.stderr)

	var stderr bytes.Buffer
	code := report(&stderr, usageErrorf("name a command"))
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "keepslotctl: name a command\n", stderr.String())
}
