package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/examples/embedded"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// TestDrillThroughAgent: drill asks the agent, waits for the report and
// prints it as a table, or as JSON; a failed drill exits with its code.
func TestDrillThroughAgent(t *testing.T) {
	rep := drill.Report{Backup: "main", Passed: false, Namespaces: []drill.NamespaceReport{{
		Namespace: "app.things", ExpectedDocuments: 100, FoundDocuments: 99, ExpectedDigest: "aa", FoundDigest: "bb",
		ExpectedIndexes: []string{"_id_"}, FoundIndexes: []string{"_id_"}, Checked: true,
	}}, Differences: []drill.Difference{{Namespace: "app.things", Kind: drill.KindCount, Detail: "99 found, 100 expected"}}}
	raw, err := json.Marshal(rep)
	require.NoError(t, err)
	last := agentDrill{Backup: "backup-1.tar.gz", Passed: false, Code: "drill_failed", Error: "the restore drill failed", Report: raw}
	var posted map[string]string
	srv := fakeAgent(t, map[string]http.HandlerFunc{
		"POST /v1/drill": func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, json.NewDecoder(r.Body).Decode(&posted))
			answer(w, http.StatusAccepted, `{"message":"Drill in progress."}`)
		},
		"GET /v1/drill": func(w http.ResponseWriter, r *http.Request) {
			assert.True(t, r.URL.Query().Has("wait"))
			answerJSON(t, agentDrills{Last: &last, Failures: 1})(w, r)
		},
	})
	r := runCtl(t, "-t", srv.URL, "--token", "tok", "drill")
	assert.Equal(t, exitDrillFailed, r.code, r.stderr)
	assert.Empty(t, posted, "no password: the agent's own")
	assert.Contains(t, r.stdout, "Drill of backup-1.tar.gz (main backup): FAILED")
	assert.Regexp(t, `app\.things\s+100\s+99\s+DIFFERS\s+1/1`, r.stdout)
	assert.Contains(t, r.stdout, "Differs: app.things: count: 99 found, 100 expected")

	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw\n"), 0o600))
	last.Passed, last.Code, last.Error = true, "", ""
	r = runCtl(t, "-t", srv.URL, "--token", "tok", "--json", "drill", "--password-file", pw)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, map[string]string{"password": "pw"}, posted)
	var got agentDrill
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.True(t, got.Passed)

	r = runCtl(t, "-t", srv.URL, "--token", "tok", "drill", "--uri", "mongodb://x")
	assert.Equal(t, exitUsage, r.code)
	r = runCtl(t, "drill", "some.enc")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.err.Error(), "--uri")
}

// TestScheduleShow prints the agent's schedule.
func TestScheduleShow(t *testing.T) {
	body := `{"schedule":"0 2 * * *","next":"2026-03-02T02:00:00Z","failures":1,
		"last":{"started":"2026-03-01T02:00:00Z","finished":"2026-03-01T02:00:05Z","outcome":"failed","step":"export","backup":"b1",
		"error":"the bucket is down","code":"unreachable","steps":[
		{"step":"replace","outcome":"ok","started":"2026-03-01T02:00:00Z","finished":"2026-03-01T02:00:01Z","detail":"the slot is empty"},
		{"step":"backup","outcome":"ok","detail":"b1, 939 bytes"},
		{"step":"export","outcome":"failed","code":"unreachable"},{"step":"drill"},{"step":"retention"}]}}`
	srv := fakeAgent(t, map[string]http.HandlerFunc{
		"GET /v1/schedule": func(w http.ResponseWriter, r *http.Request) { answer(w, http.StatusOK, body) },
	})
	r := runCtl(t, "-t", srv.URL, "--token", "tok", "schedule")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Schedule: 0 2 * * *")
	assert.Contains(t, r.stdout, "Next run: ")
	assert.Contains(t, r.stdout, "Failed runs: 1")
	assert.Contains(t, r.stdout, "failed at export: the bucket is down")
	assert.Regexp(t, `replace\s+ok\s+1s\s+the slot is empty`, r.stdout)
	assert.Regexp(t, `export\s+failed\s+unreachable`, r.stdout)
	assert.Regexp(t, `drill\s+-`, r.stdout)
	r = runCtl(t, "-t", srv.URL, "--token", "tok", "--json", "schedule")
	require.Equal(t, 0, r.code)
	assert.JSONEq(t, body, r.stdout)
}

// thingsSource is a slot.Source of one collection of 50 documents.
type thingsSource struct{}

func (thingsSource) Plan(context.Context) (slot.Plan, error) {
	return slot.Plan{Collections: []archive.Collection{{DB: "app", Name: "things", Type: "collection"}}, DataSize: 100}, nil
}

func (thingsSource) Documents(_ context.Context, _ archive.Collection, emit func([]byte) error) error {
	for i := range 50 {
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i * i}})
		if err != nil {
			return err
		}
		if err := emit(doc); err != nil {
			return err
		}
	}
	return nil
}

// TestDrillLocal drills a retrieved file here, into an embedded scratch
// server, without an agent; a wrong password exits 6.
func TestDrillLocal(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, slot.NewRole(dir).Set())
	b, err := slot.New(thingsSource{}, slot.Config{Store: store.Memory(), StateDir: dir, KDF: &cipher.Options{LogN: 10}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte("pw")))
	_, err = b.Wait(ctx)
	require.NoError(t, err)
	file := filepath.Join(dir, "b.enc")
	f, err := os.Create(file)
	require.NoError(t, err)
	_, err = b.Retrieve(ctx, f)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	db, err := embedded.Start(ctx, embedded.Options{Dir: filepath.Join(dir, "db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw\n"), 0o600))

	r := runCtl(t, "drill", file, "--uri", db.URI(), "--password-file", pw)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "PASSED")
	assert.Regexp(t, `app\.things\s+50\s+50\s+equal\s+0/0`, r.stdout)
	assert.Contains(t, r.stdout, "Time to restore: ")

	r = runCtl(t, "--json", "drill", file, "--uri", db.URI(), "--prefix", "drill_", "--password-file", pw)
	require.Equal(t, 0, r.code, r.stderr)
	var rep drill.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.True(t, rep.Passed)
	assert.Equal(t, "drill_app.things", rep.Namespaces[0].Target)

	wrong := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrong, []byte("nope\n"), 0o600))
	r = runCtl(t, "drill", file, "--uri", db.URI(), "--password-file", wrong)
	assert.Equal(t, exitBadBackup, r.code, r.stderr)
}
