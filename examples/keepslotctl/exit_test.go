package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// documentedExit is the package documentation's table of exit codes for
// the agent's error codes, written out here rather than computed, so that
// a change of the mapping shows as a test failure.
var documentedExit = map[string]int{
	"empty_password":     exitUsage,
	"invalid":            exitUsage,
	"bad_request":        exitUsage,
	"not_backup_node":    exitNotBackup,
	"in_progress":        exitBusy,
	"slot_occupied":      exitBusy,
	"exists":             exitBusy,
	"no_backup":          exitNoBackup,
	"wrong_password":     exitBadBackup,
	"corrupt":            exitBadBackup,
	"count_mismatch":     exitBadBackup,
	"unauthorized":       exitUnauthorized,
	"unreachable":        exitUnreachable,
	"request_timeout":    exitUnreachable,
	"insufficient_space": exitNoSpace,
	"oplog_rollover":     exitOplogRolled,
	"source_changed":     exitChanged,
	"sharded":            exitSharded,
	"cancelled":          exitError,
	"interrupted":        exitError,
	"internal":           exitError,
	"not_found":          exitError,
	"something_new":      exitError,
}

// fakeAgent serves routes, keyed "METHOD /path" (the query left out); any
// other request is answered 404 not_found, as keepslotd does.
func fakeAgent(t *testing.T, routes map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := routes[r.Method+" "+r.URL.Path]; ok {
			h(w, r)
			return
		}
		answer(w, http.StatusNotFound, `{"error":"not_found","message":"no endpoint `+r.Method+" "+r.URL.Path+`"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func answerJSON(t *testing.T, v any) http.HandlerFunc {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, string(b)) }
}

// ctlRun is how a run of keepslotctl ended.
type ctlRun struct {
	stdout, stderr string
	code           int
	err            error
}

// runCtl runs keepslotctl with args, as main does, and returns its output
// and exit code.
func runCtl(t *testing.T, args ...string) ctlRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRoot()
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	err := root.Execute()
	r := ctlRun{stdout: stdout.String(), stderr: stderr.String(), err: err}
	if err != nil {
		r.code = exitCode(err)
	}
	return r
}

// agentCommands are keepslotctl's commands that ask the agent, each with
// what it needs to get as far as the agent.
func agentCommands(t *testing.T) [][]string {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw\n"), 0o600))
	out := filepath.Join(dir, "out.enc")
	var cmds [][]string
	for _, k := range []string{"backup", "backup-sensitive"} {
		cmds = append(cmds,
			[]string{k, "--password-file", pw},
			[]string{k + "-status"},
			[]string{k + "-status", "--wait"},
			[]string{k + "-retrieve", "-o", out},
			[]string{k + "-delete"},
			[]string{k + "-cancel"},
		)
	}
	return append(cmds,
		[]string{"set-as-backup"},
		[]string{"set-as-backup", "--unset"},
		[]string{"set-as-backup", "--show"},
		[]string{"backup-export"},
		[]string{"backup-export", "--wait"},
		[]string{"backup-list"},
		[]string{"backup-list", "--remote"},
		[]string{"backup-retrieve", "--from-remote", "b.enc", "-o", out},
		[]string{"restore", "--from-remote", "b.enc", "--dry-run", "--password-file", pw},
		[]string{"restore", "--to-time", "2026-12-02T17:59:00Z", "--dry-run", "--password-file", pw},
		[]string{"pitr-flush"},
		[]string{"drill"},
		[]string{"schedule"},
	)
}

// TestEveryCommandsExitCodes runs each command that asks the agent against
// an agent that answers every request with one error code, for each code:
// the command ends with the documented exit code and the agent's message,
// and prints nothing on stdout.
func TestEveryCommandsExitCodes(t *testing.T) {
	cmds := agentCommands(t)
	for code, want := range documentedExit {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusConflict, `{"error":"`+code+`","message":"the agent's message"}`)
		}))
		for _, args := range cmds {
			r := runCtl(t, append([]string{"-t", srv.URL, "--token", "tok"}, args...)...)
			if assert.Error(t, r.err, "%s: %v", code, args) {
				assert.Equal(t, want, r.code, "%s: %v: %v", code, args, r.err)
				assert.Contains(t, r.err.Error(), "the agent's message", "%s: %v", code, args)
			}
			assert.Empty(t, r.stdout, "%s: %v", code, args)
		}
		srv.Close()
	}
}

// status is the agent's status answer for a test.
type status struct {
	Message string         `json:"message"`
	Status  map[string]any `json:"status"`
}

// exitFixture is what the fake agents of the exit code tests answer with.
type exitFixture struct {
	dir, out   string // a temporary directory, and the file a retrieve writes in it
	data       []byte // the backup
	ready      status // the status of a slot that holds data
	remoteList map[string]any
}

func newExitFixture(t *testing.T) exitFixture {
	dir := t.TempDir()
	data := []byte("the encrypted backup")
	sum := md5.Sum(data)
	md5hex := hex.EncodeToString(sum[:])
	return exitFixture{
		dir: dir, out: filepath.Join(dir, "out.enc"), data: data,
		ready:      status{Message: "Backup found", Status: map[string]any{"state": "ready", "name": "b.enc", "size": len(data), "md5": md5hex}},
		remoteList: map[string]any{"backups": []any{map[string]any{"key": "n/b.enc", "info": map[string]any{"name": "b.enc", "size": len(data), "md5": md5hex}}}},
	}
}

// failedStatus is the status of a backup that failed with code.
func failedStatus(code string) status {
	return status{Message: "Backup failed: it broke", Status: map[string]any{"state": "failed", "error": "it broke", "code": code}}
}

// exportFailedStatus is the status of a ready backup whose export failed
// with code.
func exportFailedStatus(code string) status {
	return status{Message: "Backup found", Status: map[string]any{"state": "ready", "export": map[string]any{"state": "failed", "error": "the copy broke", "code": code}}}
}

// serveBody answers with body.
func serveBody(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }
}

// exportAccepted answers an export's start.
func exportAccepted(w http.ResponseWriter, _ *http.Request) {
	answer(w, http.StatusAccepted, `{"message":"Export in progress."}`)
}

// exitCase is a command run against a fake agent that serves routes, with
// the exit code it ends with and what its error says.
type exitCase struct {
	name   string
	routes map[string]http.HandlerFunc
	args   []string
	code   int
	says   string
}

// runExitCases runs each case; out, the file a retrieve writes, is removed
// before each.
func runExitCases(t *testing.T, out string, cases []exitCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.RemoveAll(out))
			srv := fakeAgent(t, tc.routes)
			r := runCtl(t, append([]string{"-t", srv.URL, "--token", "tok"}, tc.args...)...)
			assert.Equal(t, tc.code, r.code, "%v", r.err)
			if tc.code != exitOK {
				require.Error(t, r.err)
				assert.Contains(t, r.err.Error(), tc.says)
			}
		})
	}
}

// TestCommandExitCodes checks the exit code and message of each command's
// own failures, the ones that are not an error code the agent answered;
// TestRetrieveExitCodes and TestClientExitCodes check the rest.
func TestCommandExitCodes(t *testing.T) {
	fx := newExitFixture(t)
	runExitCases(t, fx.out, []exitCase{
		{"status --wait: failed, oplog rolled over",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, failedStatus("oplog_rollover"))},
			[]string{"backup-status", "--wait"}, exitOplogRolled, "it broke"},
		{"status --wait: failed, space",
			map[string]http.HandlerFunc{"GET /v1/sensitive": answerJSON(t, failedStatus("insufficient_space"))},
			[]string{"backup-sensitive-status", "--wait"}, exitNoSpace, "it broke"},
		{"status --wait: cancelled",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, failedStatus("cancelled"))},
			[]string{"backup-status", "--wait"}, exitError, "it broke"},
		{"status --wait: failed without a code",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, failedStatus(""))},
			[]string{"backup-status", "--wait"}, exitError, "it broke"},
		{"status: a failed backup is a status, not an error",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, failedStatus("unreachable"))},
			[]string{"backup-status"}, exitOK, ""},
		{"export --wait: failed, unreachable",
			map[string]http.HandlerFunc{"POST /v1/backup/export": exportAccepted, "GET /v1/backup": answerJSON(t, exportFailedStatus("unreachable"))},
			[]string{"backup-export", "--wait"}, exitUnreachable, "the copy broke"},
		{"export --wait: failed without a code",
			map[string]http.HandlerFunc{"POST /v1/backup/export": exportAccepted, "GET /v1/backup": answerJSON(t, exportFailedStatus(""))},
			[]string{"backup-export", "--wait"}, exitError, "the copy broke"},
		{"export --wait: no export",
			map[string]http.HandlerFunc{"POST /v1/backup/export": exportAccepted, "GET /v1/backup": answerJSON(t, fx.ready)},
			[]string{"backup-export", "--wait"}, exitError, "no export"},
		{"status: an answer that is not JSON",
			map[string]http.HandlerFunc{"GET /v1/backup": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }},
			[]string{"backup-status"}, exitError, "not the JSON expected"},
		{"start: in progress names the verbs that end it",
			map[string]http.HandlerFunc{"POST /v1/backup": func(w http.ResponseWriter, _ *http.Request) {
				answer(w, http.StatusConflict, `{"error":"in_progress","message":"slot: a backup or its export is in progress; wait for it to finish or cancel it"}`)
			}},
			[]string{"backup", "--password-file", writePassword(t, fx.dir)}, exitBusy, "backup-cancel"},
		{"delete: in progress names the verbs that end it",
			map[string]http.HandlerFunc{"DELETE /v1/sensitive": func(w http.ResponseWriter, _ *http.Request) {
				answer(w, http.StatusConflict, `{"error":"in_progress","message":"slot: a backup or its export is in progress; wait for it to finish or cancel it"}`)
			}},
			[]string{"backup-sensitive-delete"}, exitBusy, "backup-sensitive-cancel"},
		{"export: in progress names the verbs that end it",
			map[string]http.HandlerFunc{"POST /v1/backup/export": func(w http.ResponseWriter, _ *http.Request) {
				answer(w, http.StatusConflict, `{"error":"in_progress","message":"an export is in progress"}`)
			}},
			[]string{"backup-export"}, exitBusy, "backup-cancel"},
		{"cancel",
			map[string]http.HandlerFunc{"POST /v1/backup/cancel": answerJSON(t, map[string]string{"message": "Backup cancelled."})},
			[]string{"backup-cancel"}, exitOK, ""},
		{"restore: no such file",
			nil, []string{"restore", "--dry-run", "--password-file", writePassword(t, fx.dir), filepath.Join(fx.dir, "missing.enc")}, exitUsage, "missing.enc"},
	})
}

// TestRetrieveExitCodes checks the exit code and message of a retrieve's
// own failures.
func TestRetrieveExitCodes(t *testing.T) {
	fx := newExitFixture(t)
	runExitCases(t, fx.out, []exitCase{
		{"retrieve: in progress",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, status{Status: map[string]any{"state": "in_progress"}})},
			[]string{"backup-retrieve", "-o", fx.out}, exitBusy, "backup-cancel"},
		{"retrieve: in progress, sensitive",
			map[string]http.HandlerFunc{"GET /v1/sensitive": answerJSON(t, status{Status: map[string]any{"state": "in_progress"}})},
			[]string{"backup-sensitive-retrieve", "-o", fx.out}, exitBusy, "backup-sensitive-cancel"},
		{"retrieve: none",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, status{Status: map[string]any{"state": "none"}})},
			[]string{"backup-retrieve", "-o", fx.out}, exitNoBackup, "no backup"},
		{"retrieve: failed",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, failedStatus("unreachable"))},
			[]string{"backup-retrieve", "-o", fx.out}, exitNoBackup, "it broke"},
		{"retrieve: md5 mismatch",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, fx.ready), "GET /v1/backup/file": serveBody([]byte("THE ENCRYPTED BACKUP"))},
			[]string{"backup-retrieve", "-o", fx.out}, exitBadBackup, "md5 mismatch"},
		{"retrieve: the download breaks off",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, fx.ready), "GET /v1/backup/file": func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(fx.data)))
				_, _ = w.Write(fx.data[:5])
			}},
			[]string{"backup-retrieve", "-o", fx.out}, exitUnreachable, "broke off"},
		{"retrieve: the stream ends early",
			map[string]http.HandlerFunc{"GET /v1/backup": answerJSON(t, fx.ready), "GET /v1/backup/file": func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(fx.data[:5])
				http.NewResponseController(w).Flush() // chunked: no length announced
			}},
			[]string{"backup-retrieve", "-o", fx.out}, exitUnreachable, fmt.Sprintf("ended at byte 5 of %d", len(fx.data))},
		{"retrieve: an agent that answers 500 without JSON",
			map[string]http.HandlerFunc{"GET /v1/backup": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }},
			[]string{"backup-retrieve", "-o", fx.out}, exitError, "500"},
		{"retrieve --from-remote: no such copy",
			map[string]http.HandlerFunc{"GET /v1/backup/remote": answerJSON(t, fx.remoteList)},
			[]string{"backup-retrieve", "--from-remote", "other.enc", "-o", fx.out}, exitNoBackup, "other.enc"},
		{"retrieve --from-remote: md5 mismatch",
			map[string]http.HandlerFunc{"GET /v1/backup/remote": answerJSON(t, fx.remoteList), "GET /v1/backup/remote/b.enc": serveBody([]byte("THE ENCRYPTED BACKUP"))},
			[]string{"backup-retrieve", "--from-remote", "b.enc", "-o", fx.out}, exitBadBackup, "damaged"},
	})
}

// TestClientExitCodes checks the exit code and message of failures to
// reach the agent or to be let in.
func TestClientExitCodes(t *testing.T) {
	dir := t.TempDir()
	t.Run("unreachable agent", func(t *testing.T) {
		srv := fakeAgent(t, nil)
		srv.Close()
		r := runCtl(t, "-t", srv.URL, "--token", "tok", "backup-status")
		assert.Equal(t, exitUnreachable, r.code, "%v", r.err)
		assert.ErrorContains(t, r.err, "cannot reach the agent")
	})
	t.Run("token file missing", func(t *testing.T) {
		r := runCtl(t, "-t", "127.0.0.1:1", "--token-file", filepath.Join(dir, "no-token"), "backup-status")
		assert.Equal(t, exitUnauthorized, r.code, "%v", r.err)
		assert.ErrorContains(t, r.err, "no-token")
	})
	t.Run("CA file missing", func(t *testing.T) {
		r := runCtl(t, "-t", "127.0.0.1:1", "--tls", "--ca-file", filepath.Join(dir, "no-ca.pem"), "backup-status")
		assert.Equal(t, exitUsage, r.code, "%v", r.err)
		assert.ErrorContains(t, r.err, "no-ca.pem")
	})
	t.Run("the agent says unauthorized, no token given", func(t *testing.T) {
		srv := fakeAgent(t, map[string]http.HandlerFunc{"GET /v1/backup": func(w http.ResponseWriter, _ *http.Request) {
			answer(w, http.StatusUnauthorized, `{"error":"unauthorized","message":"a valid bearer token is required"}`)
		}})
		t.Setenv("KEEPSLOT_TOKEN", "")
		r := runCtl(t, "-t", srv.URL, "backup-status")
		assert.Equal(t, exitUnauthorized, r.code, "%v", r.err)
		assert.ErrorContains(t, r.err, "--token-file")
	})
}

func writePassword(t *testing.T, dir string) string {
	t.Helper()
	f := filepath.Join(dir, fmt.Sprintf("pw-%d", len(t.Name())))
	require.NoError(t, os.WriteFile(f, []byte("pw\n"), 0o600))
	return f
}

// TestPasswordFlagWarns checks that --password, which puts the password in
// the process list, still works but warns on stderr, and that the other
// ways of giving it do not warn.
func TestPasswordFlagWarns(t *testing.T) {
	dir := t.TempDir()
	var (
		mu  sync.Mutex
		got []string
	)
	srv := fakeAgent(t, map[string]http.HandlerFunc{"POST /v1/backup": func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Password string }
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		mu.Lock()
		got = append(got, body.Password)
		mu.Unlock()
		answer(w, http.StatusAccepted, `{"message":"Backup in progress."}`)
	}})
	const warning = "--password shows the password to other users"
	base := []string{"-t", srv.URL, "--token", "tok", "backup"}

	r := runCtl(t, append(base, "--password", "from-flag")...)
	require.NoError(t, r.err)
	assert.Contains(t, r.stderr, warning)
	assert.Contains(t, r.stderr, "--password-file")
	assert.Contains(t, r.stderr, "$KEEPSLOT_PASSWORD")
	assert.NotContains(t, r.stderr, "from-flag")
	assert.Equal(t, "Backup in progress.\n", r.stdout)

	r = runCtl(t, append(base, "--password-file", writePassword(t, dir))...)
	require.NoError(t, r.err)
	assert.NotContains(t, r.stderr, warning)
	t.Setenv("KEEPSLOT_PASSWORD", "from-env")
	r = runCtl(t, base...)
	require.NoError(t, r.err)
	assert.NotContains(t, r.stderr, warning)
	mu.Lock()
	assert.Equal(t, []string{"from-flag", "pw", "from-env"}, got)
	mu.Unlock()

	// restore reads its password the same way.
	garbage := filepath.Join(dir, "garbage.enc")
	require.NoError(t, os.WriteFile(garbage, []byte("not a backup"), 0o600))
	r = runCtl(t, "restore", "--dry-run", "--password", "x", garbage)
	assert.Equal(t, exitBadBackup, r.code, "%v", r.err)
	assert.Contains(t, r.stderr, warning)
}
