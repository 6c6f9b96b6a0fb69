package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
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
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// bin holds the examples, built once (without -race, to keep them quick)
// by TestMain.
var bin string

// holdAgent, in bin, is keepslotd built with -tags keepslotd_testhold: a
// variant for tests whose main backup blocks after holdEnv's number of
// bytes, until it is cancelled, and says so on stdout. The agent as shipped
// has no such knob (TestShippedAgentHasNoTestHold).
const (
	holdAgent = "keepslotd-testhold"
	holdEnv   = "KEEPSLOTD_TEST_HOLD_AFTER_BYTES"
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "keepslot-examples-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		for _, args := range [][]string{
			{"-o", dir + string(filepath.Separator), "./keepslotd", "./keepslotctl", "./quickstart", "./devserver"},
			{"-tags", "keepslotd_testhold", "-o", filepath.Join(dir, holdAgent), "./keepslotd"},
		} {
			build := exec.Command("go", append([]string{"build"}, args...)...)
			if out, err := build.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build the examples: %v\n%s", err, out)
				return 1
			}
		}
		bin = dir
		return m.Run()
	}())
}

// Exit codes of keepslotctl, as its documentation promises them.
const (
	exitError        = 1
	exitUsage        = 2
	exitNotBackup    = 3
	exitBusy         = 4
	exitNoBackup     = 5
	exitBadBackup    = 6
	exitUnauthorized = 7
	exitUnreachable  = 8
)

// lineTimeout bounds the wait for a line from the agent; it is a guard
// against a hung agent, not a synchronisation.
const lineTimeout = 2 * time.Minute

// agent is a running keepslotd.
type agent struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	addr  string // host:port
	mongo string // the embedded server's URI
	log   string // its stderr
	exit  chan error
}

// startAgent starts keepslotd over data with a low KDF cost and flags
// added to its command line, and waits until it listens. With hold, it is
// the holdAgent, whose main backup blocks after 100 bytes.
func startAgent(t *testing.T, data string, hold bool, flags ...string) *agent {
	t.Helper()
	if hold {
		return launchAgent(t, data, holdAgent, []string{holdEnv + "=100"}, flags...)
	}
	return launchAgent(t, data, "keepslotd", nil, flags...)
}

// launchAgent starts the agent binary name over data, with env added to
// its environment and flags to its command line, and waits until it
// listens; it is killed when the test ends, its log shown if it failed.
func launchAgent(t *testing.T, data, name string, env []string, flags ...string) *agent {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), "keepslotd-*.log")
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(bin, name), append([]string{"-data", data, "-listen", "127.0.0.1:0", "-kdf-log-n", "10"}, flags...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	a := &agent{t: t, cmd: cmd, lines: make(chan string, 100), log: logFile.Name(), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
		a.exit <- cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			_ = a.cmd.Process.Kill()
			<-a.exit
		}
		if t.Failed() {
			b, _ := os.ReadFile(a.log)
			t.Logf("keepslotd's log:\n%s", b)
		}
	})
	a.mongo = a.waitLine("keepslotd: embedded MongoDB at ")
	url := a.waitLine("keepslotd: listening on ")
	a.addr = url[strings.Index(url, "://")+3:]
	return a
}

// waitLine returns the rest of the agent's next output line that starts
// with prefix, skipping others.
func (a *agent) waitLine(prefix string) string {
	a.t.Helper()
	timeout := time.After(lineTimeout)
	for {
		select {
		case line, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("keepslotd ended before printing %q", prefix)
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest
			}
		case <-timeout:
			a.t.Fatalf("keepslotd did not print %q within %s", prefix, lineTimeout)
		}
	}
}

// stop sends sig and returns how the agent ended.
func (a *agent) stop(sig os.Signal) error {
	a.t.Helper()
	require.NoError(a.t, a.cmd.Process.Signal(sig))
	for range a.lines { // drain, so the reader can finish
	}
	return <-a.exit
}

// result is how a keepslotctl run ended.
type result struct {
	stdout, stderr string
	code           int
}

// ctl runs keepslotctl with args, in an environment free of KEEPSLOT_*
// variables unless env adds them, and with stdin not a terminal.
func ctl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "keepslotctl"), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEEPSLOT_") && !strings.HasPrefix(kv, "MONGODB_URI=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// node returns a function running keepslotctl against a, with the token.
func (a *agent) ctl(data string) func(args ...string) result {
	return func(args ...string) result {
		a.t.Helper()
		return ctl(a.t, nil, append([]string{"-t", a.addr, "--token-file", filepath.Join(data, "token")}, args...)...)
	}
}

func ok(t *testing.T, r result) string {
	t.Helper()
	require.Equal(t, 0, r.code, "keepslotctl failed: %s", r.stderr)
	return strings.TrimSpace(r.stdout)
}

func fails(t *testing.T, r result, code int, stderr string) {
	t.Helper()
	assert.Equal(t, code, r.code, "exit code; stderr: %s", r.stderr)
	assert.Contains(t, r.stderr, stderr)
	assert.Contains(t, r.stderr, "keepslotctl: ", "the message goes to stderr")
}

type appliance struct {
	Message   string            `json:"message"`
	Arguments map[string]string `json:"arguments"`
	Status    struct {
		State string `json:"state"`
		Size  int64  `json:"size"`
		MD5   string `json:"md5"`
		Error string `json:"error"`
	} `json:"status"`
}

func parse(t *testing.T, out string) appliance {
	t.Helper()
	var a appliance
	require.NoError(t, json.Unmarshal([]byte(out), &a), "not JSON: %q", out)
	return a
}

func md5Of(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// TestAgentAndCLI drives every verb of keepslotctl against keepslotd as a
// user would, through a whole cycle.
func TestAgentAndCLI(t *testing.T) {
	work := t.TempDir()
	data := filepath.Join(work, "node")
	a := startAgent(t, data, false)
	run := a.ctl(data)
	client := connect(t, a.mongo)
	seed(t, client)

	// Requests without the token, or with a wrong one, are refused.
	fails(t, ctl(t, nil, "-t", a.addr, "backup-status"), exitUnauthorized, "no token given")
	fails(t, ctl(t, nil, "-t", a.addr, "--token", "wrong", "backup-status"), exitUnauthorized, "token is wrong")
	// The token from the environment works.
	token, err := os.ReadFile(filepath.Join(data, "token"))
	require.NoError(t, err)
	st := parse(t, ok(t, ctl(t, []string{"KEEPSLOT_TOKEN=" + strings.TrimSpace(string(token))}, "-t", a.addr, "backup-status")))
	assert.Equal(t, "No backup found", st.Message)

	// Usage errors and an unreachable agent.
	fails(t, run("backup-statu"), exitUsage, "unknown command")
	fails(t, run("backup", "--pasword", "x"), exitUsage, "unknown flag")
	fails(t, run("backup"), exitUsage, "no password")
	fails(t, ctl(t, nil, "-t", "127.0.0.1:1", "--token", "x", "backup-status"), exitUnreachable, "cannot reach the agent")

	// A node not in the backup role refuses a backup, then takes the role.
	fails(t, run("backup", "--password", "pw"), exitNotBackup, "not in the backup role")
	assert.Equal(t, "This node is in the backup role.", ok(t, run("set-as-backup")))
	assert.Contains(t, ok(t, run("--json", "set-as-backup", "--show")), `"backup":true`)

	// Backup, wait for it, and a second one is refused while it is stored.
	assert.Equal(t, "Backup in progress.", ok(t, run("backup", "--password", "pw")))
	st = parse(t, ok(t, run("backup-status", "--wait")))
	require.Equal(t, "Backup found", st.Message)
	require.NotEmpty(t, st.Arguments["md5"])
	require.True(t, strings.HasPrefix(st.Arguments["name"], "backup-"), st.Arguments["name"])
	full := parse(t, ok(t, run("--json", "backup-status")))
	assert.Equal(t, "ready", full.Status.State)
	assert.Equal(t, st.Arguments["md5"], full.Status.MD5)
	fails(t, run("backup", "--password", "pw"), exitBusy, "delete it first")

	// Retrieve; then truncate the file and resume; then damage it.
	file := filepath.Join(work, "backup-retrieve.tar.gz.enc")
	assert.Contains(t, ok(t, run("backup-retrieve", "-o", file)), "matches")
	require.Equal(t, st.Arguments["md5"], md5Of(t, file))
	require.Equal(t, full.Status.Size, fileSize(t, file))
	require.NoError(t, os.Truncate(file, full.Status.Size/2))
	r := run("--json", "backup-retrieve", "-o", file)
	ok(t, r)
	assert.Contains(t, r.stderr, fmt.Sprintf("Resuming the download at byte %d", full.Status.Size/2))
	assert.Contains(t, r.stdout, fmt.Sprintf(`"resumed_from":%d`, full.Status.Size/2))
	require.Equal(t, st.Arguments["md5"], md5Of(t, file))
	damaged := filepath.Join(work, "damaged.enc")
	good, err := os.ReadFile(file)
	require.NoError(t, err)
	bad := append([]byte(nil), good[:len(good)/2]...)
	bad[len(bad)/3] ^= 1
	require.NoError(t, os.WriteFile(damaged, bad, 0o600))
	fails(t, run("backup-retrieve", "-o", damaged), exitBadBackup, "md5 mismatch")

	// Restore: a wrong password writes nothing; the right one restores into
	// renamed namespaces with the same counts and indexes.
	fails(t, run("restore", file, "--uri", a.mongo, "--password", "nope", "--ns-from", "app.*", "--ns-to", "app_restored.*"),
		exitBadBackup, "wrong password")
	dbs, err := client.ListDatabaseNames(context.Background(), bson.D{{Key: "name", Value: "app_restored"}})
	require.NoError(t, err)
	assert.Empty(t, dbs, "a wrong password restored something")
	fails(t, run("restore", file, "--uri", a.mongo, "--password", "pw", "--ns-from", "app.*"), exitUsage, "pairs")
	dry := ok(t, run("--json", "restore", file, "--dry-run", "--password", "pw"))
	assert.Contains(t, dry, `"Documents":700`)
	out := ok(t, run("restore", file, "--uri", a.mongo, "--password-file", writeFile(t, work, "pw.txt", "pw\n"),
		"--ns-from", "app.*", "--ns-to", "app_restored.*", "--parallel", "2", "--batch-size", "50"))
	assert.Contains(t, out, "Restored 700 documents in 2 namespaces")
	assertCount(t, client, "app_restored", "users", 200)
	assertCount(t, client, "app_restored", "events", 500)
	assertIndex(t, client, "app_restored", "users", "email_1")

	// The sensitive backup: its own slot, password and verbs.
	writeFile(t, filepath.Join(data, "secrets"), "app.key", "0123456789abcdef")
	fails(t, run("backup-sensitive-retrieve", "-o", filepath.Join(work, "s.enc")), exitNoBackup, "no sensitive backup")
	assert.Equal(t, "Backup in progress.", ok(t, ctl(t, []string{"KEEPSLOT_PASSWORD=spw"},
		"-t", a.addr, "--token-file", filepath.Join(data, "token"), "backup-sensitive")))
	sst := parse(t, ok(t, run("backup-sensitive-status", "--wait")))
	require.Equal(t, "Backup found", sst.Message)
	assert.True(t, strings.HasPrefix(sst.Arguments["name"], "backup-sensitive-"), sst.Arguments["name"])
	sfile := filepath.Join(work, "s.enc")
	ok(t, run("backup-sensitive-retrieve", "-o", sfile))
	assert.Equal(t, sst.Arguments["md5"], md5Of(t, sfile))
	fails(t, run("restore", "--sensitive", sfile, "--dir", filepath.Join(work, "keys"), "--password", "pw"), exitBadBackup, "wrong password")
	ok(t, run("restore", "--sensitive", sfile, "--dir", filepath.Join(work, "keys"), "--password", "spw"))
	key, err := os.ReadFile(filepath.Join(work, "keys", "secrets", "app.key"))
	require.NoError(t, err)
	assert.Equal(t, "0123456789abcdef", string(key))
	assert.Equal(t, "Backup deleted.", ok(t, run("backup-sensitive-delete")))
	assert.Equal(t, "No backup found", parse(t, ok(t, run("backup-sensitive-status"))).Message)
	// The main backup is untouched by the sensitive one.
	assert.Equal(t, "Backup found", parse(t, ok(t, run("backup-status"))).Message)

	// Delete; then there is nothing to retrieve or delete.
	assert.Equal(t, "Backup deleted.", ok(t, run("backup-delete")))
	assert.Equal(t, "No backup found", parse(t, ok(t, run("backup-status"))).Message)
	fails(t, run("backup-delete"), exitNoBackup, "empty")
	fails(t, run("backup-retrieve", "-o", filepath.Join(work, "none.enc")), exitNoBackup, "no backup")

	// Out of the role, a backup is refused again.
	assert.Equal(t, "This node is not in the backup role.", ok(t, run("set-as-backup", "--unset")))
	fails(t, run("backup", "--password", "pw"), exitNotBackup, "set-as-backup")

	// SIGTERM stops the agent cleanly.
	require.NoError(t, a.stop(syscall.SIGTERM))
}

// TestAgentStoppedDuringBackup stops the agent in the middle of a backup,
// cleanly (SIGTERM) and not (SIGKILL): the status says so after a restart
// and a new backup works.
func TestAgentStoppedDuringBackup(t *testing.T) {
	data := filepath.Join(t.TempDir(), "node")
	a := startAgent(t, data, true)
	seed(t, connect(t, a.mongo))
	run := a.ctl(data)
	ok(t, run("set-as-backup"))
	ok(t, run("backup", "--password", "pw"))
	a.waitLine("keepslotd: test hold")
	assert.Equal(t, "Backup in progress", parse(t, ok(t, run("backup-status"))).Message)
	fails(t, run("backup-delete"), exitBusy, "in progress")
	fails(t, run("backup-retrieve"), exitBusy, "in progress")
	require.NoError(t, a.stop(syscall.SIGTERM), "a clean shutdown during a backup")

	a = startAgent(t, data, true)
	run = a.ctl(data)
	st := parse(t, ok(t, run("--json", "backup-status")))
	assert.Equal(t, "failed", st.Status.State)
	assert.Contains(t, st.Message, "Backup failed: slot: cancelled")
	ok(t, run("backup", "--password", "pw"))
	a.waitLine("keepslotd: test hold")
	require.Error(t, a.stop(syscall.SIGKILL))

	a = startAgent(t, data, false)
	run = a.ctl(data)
	st = parse(t, ok(t, run("--json", "backup-status")))
	assert.Equal(t, "failed", st.Status.State)
	assert.Contains(t, st.Message, "Backup failed: slot: interrupted")
	ok(t, run("backup", "--password", "pw"))
	assert.Equal(t, "Backup found", parse(t, ok(t, run("backup-status", "--wait"))).Message)
	ok(t, run("backup-retrieve", "-o", filepath.Join(t.TempDir(), "b.enc")))
}

// TestAgentTLS serves HTTPS with a self-signed certificate, which the CLI
// trusts with --ca-file, refuses without, and skips checking with --insecure.
func TestAgentTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	data := filepath.Join(dir, "node")
	a := startAgent(t, data, false, "-tls-cert", cert, "-tls-key", key)
	base := []string{"-t", a.addr, "--token-file", filepath.Join(data, "token"), "--tls"}
	assert.Equal(t, "No backup found", parse(t, ok(t, ctl(t, nil, append(base, "--ca-file", cert, "backup-status")...))).Message)
	ok(t, ctl(t, nil, append(base, "--insecure", "backup-status")...))
	fails(t, ctl(t, nil, append(base, "backup-status")...), exitUnreachable, "certificate")
	fails(t, ctl(t, nil, "-t", a.addr, "--token-file", filepath.Join(data, "token"), "backup-status"), exitError, "")
}

// selfSigned writes a certificate for 127.0.0.1 and its key, in PEM.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "keepslotd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

// TestQuickstart runs the quickstart as the README says, at the real KDF
// cost, and checks that it succeeds and prints the status JSON.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "quickstart"))
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "quickstart:\n%s", out)
	assert.Contains(t, string(out), `backup-status: {"message":"Backup found","arguments":{"md5":"`)
	assert.Contains(t, string(out), "every count matches")
	assert.Contains(t, string(out), "drill passed")
	assert.Contains(t, string(out), "the restored key matches the original")
	assert.Contains(t, string(out), "quickstart OK")
}

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// seed writes app.users (200 documents, an index on email) and app.events
// (500 documents).
func seed(t *testing.T, c *mongo.Client) {
	t.Helper()
	ctx := context.Background()
	var users, events []any
	for i := range 200 {
		users = append(users, bson.D{{Key: "_id", Value: i}, {Key: "email", Value: fmt.Sprintf("u%d@example.com", i)}})
	}
	for i := range 500 {
		events = append(events, bson.D{{Key: "n", Value: i}, {Key: "tags", Value: bson.A{"a", "b"}}})
	}
	db := c.Database("app")
	_, err := db.Collection("users").InsertMany(ctx, users)
	require.NoError(t, err)
	_, err = db.Collection("users").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}})
	require.NoError(t, err)
	_, err = db.Collection("events").InsertMany(ctx, events)
	require.NoError(t, err)
}

func assertCount(t *testing.T, c *mongo.Client, db, coll string, want int64) {
	t.Helper()
	n, err := c.Database(db).Collection(coll).CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Equal(t, want, n, "%s.%s", db, coll)
}

func assertIndex(t *testing.T, c *mongo.Client, db, coll, name string) {
	t.Helper()
	specs, err := c.Database(db).Collection(coll).Indexes().ListSpecifications(context.Background())
	require.NoError(t, err)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	assert.Contains(t, names, name)
}

func fileSize(t *testing.T, file string) int64 {
	t.Helper()
	fi, err := os.Stat(file)
	require.NoError(t, err)
	return fi.Size()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// TestShippedAgentHasNoTestHold checks that the test hold lives only in the
// variant built with -tags keepslotd_testhold: the agent as built by
// default does not even contain the name of its environment variable.
func TestShippedAgentHasNoTestHold(t *testing.T) {
	for name, want := range map[string]bool{"keepslotd": false, holdAgent: true} {
		b, err := os.ReadFile(filepath.Join(bin, name))
		require.NoError(t, err)
		assert.Equal(t, want, bytes.Contains(b, []byte(holdEnv)), "%s contains %s", name, holdEnv)
		assert.Equal(t, want, bytes.Contains(b, []byte("keepslotd: test hold")), "%s contains the hold's message", name)
	}
}

// TestBackupCancel cancels a running backup with backup-cancel, the verb
// that the errors about a backup in progress name.
func TestBackupCancel(t *testing.T) {
	data := filepath.Join(t.TempDir(), "node")
	a := startAgent(t, data, true)
	seed(t, connect(t, a.mongo))
	run := a.ctl(data)
	ok(t, run("set-as-backup"))
	assert.Equal(t, "No backup or export in progress; nothing to cancel.", ok(t, run("backup-cancel")))
	ok(t, run("backup", "--password", "pw"))
	a.waitLine("keepslotd: test hold")
	fails(t, run("backup-delete"), exitBusy, "backup-cancel cancels it")
	fails(t, run("backup", "--password", "pw"), exitBusy, "backup-cancel cancels it")
	fails(t, run("backup-retrieve", "-o", filepath.Join(t.TempDir(), "b.enc")), exitBusy, "cancel it (backup-cancel)")
	assert.Equal(t, "Backup cancelled.", ok(t, run("backup-cancel")))
	st := parse(t, ok(t, run("--json", "backup-status")))
	assert.Equal(t, "failed", st.Status.State)
	assert.Contains(t, st.Message, "Backup failed: slot: cancelled")
	fails(t, run("backup-status", "--wait"), exitError, "cancelled")
	fails(t, run("backup-delete"), exitNoBackup, "")
	require.NoError(t, a.stop(syscall.SIGTERM))
}
