package examples_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// TestAgentSchedule runs keepslotd with -schedule against a real bucket
// (versitygw) and a notifier (a local test server): a scheduled run backs
// up, exports, drills into an embedded scratch server, and is killed
// (SIGKILL) at its retention step; after a restart, keepslotctl schedule
// reports it interrupted, the notifier received it, keepslotctl drill
// proves the backup again through the agent, and /metrics has the drill's
// time to restore.
func TestAgentSchedule(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	events := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e map[string]any
		if json.NewDecoder(r.Body).Decode(&e) == nil {
			events <- e
		}
	}))
	t.Cleanup(hook.Close)

	work := t.TempDir()
	data := filepath.Join(work, "node")
	pw := filepath.Join(work, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw\n"), 0o600))
	export := []string{"-export-bucket", bucket, "-export-endpoint", srv.Endpoint, "-export-insecure", "-export-node", "node-1",
		"-export-keep-last", "2", "-schedule-password-file", pw, "-notify-url", hook.URL + "/keepslot"}

	// The node in the backup role, with data, before the schedule starts.
	a := startAgent(t, data, false)
	seed(t, connect(t, a.mongo))
	ok(t, a.ctl(data)("set-as-backup"))
	require.NoError(t, a.stop(syscall.SIGTERM))

	// A run every second, held once its retention step starts: the
	// backup is made, exported and drilled by then.
	a = startAgentEnv(t, data, []string{"KEEPSLOTD_TEST_SCHEDULE_HOLD=retention"}, append(export, "-schedule", "@every 1s")...)
	a.waitLine("keepslotd: test hold: schedule at retention")
	run := a.ctl(data)
	fails(t, run("drill"), exitBusy, "in progress")
	var sched struct {
		Running struct {
			Step   string `json:"step"`
			Backup string `json:"backup"`
			Steps  []struct {
				Step, Outcome string
			} `json:"steps"`
		} `json:"running"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "schedule"))), &sched))
	assert.Equal(t, "retention", sched.Running.Step)
	name := sched.Running.Backup
	require.NotEmpty(t, name)
	for _, s := range sched.Running.Steps[:4] {
		assert.Equal(t, "ok", s.Outcome, s.Step)
	}
	assert.Contains(t, srv.Keys(t, bucket), "keepslot/node-1/"+name)
	require.Error(t, a.stop(syscall.SIGKILL))

	// Restarted, with a schedule that is far off.
	a = startAgent(t, data, false, append(export, "-schedule", "0 3 1 1 *")...)
	run = a.ctl(data)
	out := ok(t, run("schedule"))
	assert.Contains(t, out, "Last run: interrupted")
	assert.Contains(t, out, "interrupted at retention: interrupted: the agent stopped during the run's retention step")
	assert.Contains(t, out, "Next run: ")
	select {
	case e := <-events:
		assert.Equal(t, "run_failed", e["event"])
		assert.Equal(t, "interrupted", e["code"])
		assert.Equal(t, "node-1", e["node"])
		assert.Equal(t, name, e["backup"])
	case <-time.After(lineTimeout): // a guard, not a synchronisation
		t.Fatal("the notifier received nothing")
	}

	out = ok(t, run("drill"))
	assert.Contains(t, out, "Drill of "+name+" (main backup): PASSED")
	assert.Regexp(t, `app\.users\s+200\s+200\s+equal\s+2/2`, out)
	assert.Regexp(t, `app\.events\s+500\s+500\s+equal`, out)
	assert.Contains(t, out, "Time to restore: ")
	fails(t, run("drill", "--password", "wrong"), exitBadBackup, "the drill failed")
	select {
	case e := <-events:
		assert.Equal(t, "drill_failed", e["event"])
		assert.Equal(t, "wrong_password", e["code"])
		assert.NotContains(t, e["message"], "wrong\"")
	case <-time.After(lineTimeout): // a guard, not a synchronisation
		t.Fatal("the notifier received nothing")
	}

	metrics := scrape(t, a, data)
	for _, want := range []string{
		"keepslot_drill_last_success_restore_seconds ", "keepslot_drill_last_success_bytes ", "keepslot_drill_failures_total 1",
		`keepslot_schedule_last_run_step{outcome="interrupted",step="retention"} 1`, "keepslot_schedule_next_run_timestamp_seconds ",
		"keepslot_schedule_failures_total 1", `keepslot_notify_events_total{result="failed"} 0`,
	} {
		assert.Contains(t, metrics, want)
	}
	entries, err := os.ReadDir(filepath.Join(data, "drill"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, e.IsDir() && strings.HasPrefix(e.Name(), "server-"), "a drill's scratch server is removed: %s", e.Name())
	}
}

// startAgentEnv starts the test-hold agent as startAgent does, with env
// added and without its backup's byte hold.
func startAgentEnv(t *testing.T, data string, env []string, flags ...string) *agent {
	t.Helper()
	return launchAgent(t, data, holdAgent, env, flags...)
}

// scrape returns the agent's /metrics.
func scrape(t *testing.T, a *agent, data string) string {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(data, "token"))
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "http://"+a.addr+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}
