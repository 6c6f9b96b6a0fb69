package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// TestAgentExportToS3 runs keepslotd with -export-bucket against a real S3
// server (versitygw) and drives the export verbs with keepslotctl: export
// on ready, verified; retention; listing, retrieving and restoring a copy.
func TestAgentExportToS3(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)

	// An older copy of this node, which retention (keep the last 1) removes,
	// and one of another node, which it leaves alone.
	cfg := srv.Config(bucket, "keepslot")
	remote, err := s3store.NewRemote(cfg)
	require.NoError(t, err)
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, k := range []string{"node-1/backup-old.tar.gz", "node-2/backup-old.tar.gz"} {
		_, err := remote.Put(context.Background(), k, bytes.NewReader([]byte("old")), store.Info{Name: "backup-old.tar.gz", Created: old})
		require.NoError(t, err)
	}

	work := t.TempDir()
	data := filepath.Join(work, "node")
	a := startAgent(t, data, false,
		"-export-bucket", bucket, "-export-endpoint", srv.Endpoint, "-export-insecure",
		"-export-prefix", "keepslot", "-export-node", "node-1", "-export-part-mib", "5", "-export-keep-last", "1")
	run := a.ctl(data)
	client := connect(t, a.mongo)
	seed(t, client)
	ok(t, run("set-as-backup"))

	// Backup: once ready, it is exported and verified, and retention runs.
	ok(t, run("backup", "--password", "pw"))
	var st struct {
		Status slot.Status `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "backup-status", "--wait"))), &st))
	require.Equal(t, slot.StateReady, st.Status.State)
	ex := st.Status.Export
	require.NotNil(t, ex, "the status shows the export")
	require.Equal(t, slot.ExportDone, ex.State, ex.Error)
	name := st.Status.Name
	assert.Equal(t, "node-1/"+name, ex.Key)
	assert.Equal(t, st.Status.MD5, ex.MD5)
	assert.Equal(t, st.Status.SHA256, ex.SHA256)
	require.NotNil(t, ex.Retention)
	assert.Equal(t, []string{"node-1/backup-old.tar.gz"}, ex.Retention.Delete)
	assert.ElementsMatch(t, []string{"keepslot/node-1/" + name, "keepslot/node-2/backup-old.tar.gz"}, srv.Keys(t, bucket))
	assert.Empty(t, srv.Uploads(t, bucket), "no upload left behind")

	// backup-list, local and remote.
	assert.Contains(t, ok(t, run("backup-list")), name)
	var list struct {
		Backups []store.Entry `json:"backups"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "backup-list", "--remote"))), &list))
	require.Len(t, list.Backups, 1)
	assert.Equal(t, name, list.Backups[0].Info.Name)
	assert.Equal(t, st.Status.SHA256, list.Backups[0].Info.SHA256)

	// backup-retrieve --from-remote gives the slot's bytes.
	file := filepath.Join(work, "remote.enc")
	assert.Contains(t, ok(t, run("backup-retrieve", "--from-remote", name, "-o", file)), "matches")
	assert.Equal(t, st.Status.MD5, md5Of(t, file))
	fails(t, run("backup-retrieve", "--from-remote", "backup-none", "-o", file), exitNoBackup, "no copy named")

	// The agent serves ranges of a copy from ranged reads of the bucket.
	token, err := os.ReadFile(filepath.Join(data, "token"))
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "http://"+a.addr+"/v1/backup/remote/"+name, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Range", "bytes=100-1099")
	req.Header.Set("If-Range", `"`+st.Status.MD5+`"`)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	part, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	whole, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, whole[100:1100], part)

	// The local backup goes; the copy stays, and restores.
	ok(t, run("backup-delete"))
	fails(t, run("backup-export"), exitNoBackup, "no backup")
	out := ok(t, run("restore", "--from-remote", name, "--uri", a.mongo, "--password", "pw",
		"--ns-from", "app.*", "--ns-to", "app_remote.*"))
	assert.Contains(t, out, "Restored 700 documents in 2 namespaces")
	assertCount(t, client, "app_remote", "users", 200)
	assertCount(t, client, "app_remote", "events", 500)

	// A new backup, exported again by hand with backup-export.
	ok(t, run("backup", "--password", "pw"))
	require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "backup-status", "--wait"))), &st))
	require.Equal(t, slot.ExportDone, st.Status.Export.State, st.Status.Export.Error)
	assert.Contains(t, ok(t, run("backup-export", "--wait")), "verified")
	require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "backup-list", "--remote"))), &list))
	require.Len(t, list.Backups, 1, "keep the last 1")
	assert.Equal(t, st.Status.Name, list.Backups[0].Info.Name)
}

// An agent without -export-bucket says how to get one.
func TestAgentExportNotConfigured(t *testing.T) {
	data := filepath.Join(t.TempDir(), "node")
	a := startAgent(t, data, false)
	run := a.ctl(data)
	fails(t, run("backup-export"), exitUsage, "-export-bucket")
	fails(t, run("backup-list", "--remote"), exitUsage, "-export-bucket")
}
