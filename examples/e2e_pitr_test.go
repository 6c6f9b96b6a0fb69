package examples_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// insertLater inserts the documents {_id: from} ... {_id: to-1} into
// app.later and returns the timestamp right after the newest oplog entry:
// a restore to it holds them.
func insertLater(t *testing.T, c *mongo.Client, from, to int) string {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		_, err := c.Database("app").Collection("later").InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err)
	}
	var e struct {
		TS bson.Timestamp `bson:"ts"`
	}
	require.NoError(t, c.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Decode(&e))
	return fmt.Sprintf("%d:%d", e.TS.T, e.TS.I+1)
}

// pitrState is what keepslotctl --json backup-list --remote says of the
// point-in-time windows.
type pitrState struct {
	Pitr struct {
		Status   pitr.Status   `json:"status"`
		Coverage pitr.Coverage `json:"coverage"`
	} `json:"pitr"`
}

// TestAgentPITR runs keepslotd -pitr against a real S3 server: a base
// backup, writes sliced, the agent killed (SIGKILL) while a slice is open
// and started again, then restores to two moments by timestamp, the
// refusal of a time in no window, the dry run, and the metrics.
func TestAgentPITR(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	work := t.TempDir()
	data := filepath.Join(work, "node")
	pwFile := writeFile(t, work, "password", "pw\n")
	flags := []string{"-export-bucket", bucket, "-export-endpoint", srv.Endpoint, "-export-insecure",
		"-export-node", "node-1", "-export-part-mib", "5",
		"-pitr", "-pitr-password-file", pwFile, "-pitr-interval", "1h"}

	// A secret file that others may read is refused.
	loose := writeFile(t, work, "loose", "pw\n")
	require.NoError(t, os.Chmod(loose, 0o644))
	cmd := agentCmd(filepath.Join(work, "other"), "-export-bucket", bucket, "-export-endpoint", srv.Endpoint, "-export-insecure", "-pitr", "-pitr-password-file", loose)
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "chmod 600")

	a := startAgent(t, data, false, flags...)
	run := a.ctl(data)
	client := connect(t, a.mongo)
	seed(t, client)
	ok(t, run("set-as-backup"))
	ok(t, run("backup", "--password-file", pwFile))
	var st struct {
		Status slot.Status `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "backup-status", "--wait"))), &st))
	require.Equal(t, slot.ExportDone, st.Status.Export.State, st.Status.Export.Error)

	first := insertLater(t, client, 0, 10)
	assert.Contains(t, ok(t, run("pitr-flush")), "Slice stored")

	// Writes read into the open slice, then SIGKILL: no half slice counts.
	insertLater(t, client, 10, 20)
	waitOpen(t, run, 10)
	require.NoError(t, a.cmd.Process.Kill())
	for range a.lines {
	}
	<-a.exit

	a = startAgent(t, data, false, flags...)
	run = a.ctl(data)
	client = connect(t, a.mongo)
	last := insertLater(t, client, 20, 30)
	ok(t, run("pitr-flush"))

	var ps pitrState
	require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "backup-list", "--remote"))), &ps))
	cov := ps.Pitr.Coverage
	assert.Empty(t, cov.Gaps)
	require.Len(t, cov.Windows, 1)
	assert.Equal(t, st.Status.Oplog.End, cov.Windows[0].From, "the window starts at the base backup's point")
	// Each write of app is in one slice once: the entries the slices hold
	// are those of the oplog in their span.
	var entries int64
	for _, s := range cov.Slices {
		entries += s.Entries
	}
	n, err := client.Database("local").Collection("oplog.rs").CountDocuments(context.Background(), bson.D{
		{Key: "ts", Value: bson.D{{Key: "$gte", Value: cov.Slices[0].From}, {Key: "$lt", Value: cov.Until}}},
		{Key: "ns", Value: bson.D{{Key: "$regex", Value: "^app\\."}}},
	})
	require.NoError(t, err)
	assert.Equal(t, n, entries, "no entry is lost or stored twice")
	list := ok(t, run("backup-list", "--remote"))
	assert.Contains(t, list, "Oplog slices: ")
	assert.Contains(t, list, "restorable "+cov.Windows[0].String())
	status := run("backup-status")
	assert.Contains(t, status.stderr, "pitr: restorable "+cov.Windows[0].String()+", lag ")

	// Restores, into new namespaces, to the moments after the first ten
	// writes and after all thirty.
	for _, tc := range []struct {
		to    string
		later int64
	}{{first, 10}, {last, 30}} {
		db := "app_" + strings.ReplaceAll(tc.to, ":", "_")
		out := ok(t, run("restore", "--to-time", tc.to, "--uri", a.mongo, "--password-file", pwFile,
			"--ns-from", "app.*", "--ns-to", db+".*"))
		assert.Contains(t, out, "oplog slices, up to")
		assertCount(t, client, db, "later", tc.later)
		assertCount(t, client, db, "users", 200)
		assertCount(t, client, db, "events", 500)
	}
	out2 := ok(t, run("restore", "--to-time", last, "--dry-run", "--password-file", pwFile))
	assert.Contains(t, out2, "Dry run: would restore "+st.Status.Name)
	r := run("restore", "--to-time", "2100-01-01T00:00:00Z", "--uri", a.mongo, "--password-file", pwFile, "--ns-from", "app.*", "--ns-to", "app_future.*")
	fails(t, r, exitNoBackup, "Restorable windows: "+cov.Windows[0].String())

	// The agent dies while a slice is downloaded (a proxy in front of it
	// cuts the answer): exit 8, as for an agent that does not answer (it
	// was 1), and nothing left in $TMPDIR.
	tmp := t.TempDir()
	r = ctl(t, []string{"TMPDIR=" + tmp}, "-t", cuttingProxy(t, a.addr), "--token-file", filepath.Join(data, "token"),
		"restore", "--to-time", last, "--dry-run", "--password-file", pwFile)
	fails(t, r, exitUnreachable, "broke off")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left)

	// A slice's name the bucket cannot hold is the client's mistake: 400,
	// not versitygw's error as a 500 internal; and a 200 KB name is not
	// sent back whole.
	token, err := os.ReadFile(filepath.Join(data, "token"))
	require.NoError(t, err)
	for _, name := range []string{"a%00b.bson", strings.Repeat("n", 200<<10)} {
		req, err := http.NewRequest(http.MethodGet, "http://"+a.addr+"/v1/pitr/slices/"+name, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%.200s", b)
		assert.True(t, strings.Contains(string(b), `"error":"bad_request"`), "%.200s", b)
		assert.Less(t, len(b), 2<<10, "the name is not sent back whole")
	}

	// Metrics, behind the token. The agent started again stored the ten
	// entries the killed one had read, and ten more, in one slice.
	get := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+a.addr+"/metrics", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := get("")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body := get(strings.TrimSpace(string(token)))
	require.Equal(t, http.StatusOK, code)
	for _, m := range []string{"keepslot_pitr_lag_seconds ", "keepslot_pitr_running 1", "keepslot_pitr_gaps 0",
		`keepslot_pitr_error{code=""} 0`, "keepslot_pitr_entries_stored_total 20", `keepslot_backup_state{state="ready"} 1`,
		"keepslot_backup_last_ready_age_seconds "} {
		assert.Contains(t, body, m)
	}
}

// cuttingProxy serves the agent at addr through a proxy that cuts each
// oplog slice's download after its first bytes, as an agent that dies
// would; it returns the proxy's address.
func cuttingProxy(t *testing.T, addr string) string {
	t.Helper()
	target, err := url.Parse("http://" + addr)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.HasPrefix(resp.Request.URL.Path, "/v1/pitr/slices/") {
			resp.Body = &cutBody{ReadCloser: resp.Body, left: 16}
		}
		return nil
	}
	rp.FlushInterval = -1 // the headers and the first bytes go out before the cut
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// cutBody fails once left bytes have been read.
type cutBody struct {
	io.ReadCloser
	left int
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("the agent died")
	}
	n, err := b.ReadCloser.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

// waitOpen waits until the agent's slicer has read at least n entries into
// its open slice.
func waitOpen(t *testing.T, run func(args ...string) result, n int64) {
	t.Helper()
	for deadline := time.Now().Add(lineTimeout); ; {
		var ps pitrState
		require.NoError(t, json.Unmarshal([]byte(ok(t, run("--json", "backup-status"))), &ps))
		if ps.Pitr.Status.Open >= n {
			return
		}
		require.True(t, time.Now().Before(deadline), "the slicer read %d entries, not %d", ps.Pitr.Status.Open, n)
		time.Sleep(50 * time.Millisecond) // the slicer polls the embedded server every second
	}
}

// agentCmd is keepslotd over data with flags, not started.
func agentCmd(data string, flags ...string) *exec.Cmd {
	return exec.Command(filepath.Join(bin, "keepslotd"), append([]string{"-data", data, "-listen", "127.0.0.1:0", "-kdf-log-n", "10"}, flags...)...)
}
