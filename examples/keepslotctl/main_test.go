package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/sensitive"
)

func TestBaseURL(t *testing.T) {
	for target, want := range map[string]string{
		"node1":                "http://node1:7443",
		"node1:8000":           "http://node1:8000",
		"10.0.0.5":             "http://10.0.0.5:7443",
		"::1":                  "http://[::1]:7443",
		"[::1]":                "http://[::1]:7443",
		"[::1]:9000":           "http://[::1]:9000",
		"https://node1:1/":     "https://node1:1",
		"http://127.0.0.1:123": "http://127.0.0.1:123",
	} {
		got, err := baseURL(target, false)
		require.NoError(t, err)
		assert.Equal(t, want, got, target)
	}
	got, err := baseURL("node1", true)
	require.NoError(t, err)
	assert.Equal(t, "https://node1:7443", got)
	_, err = baseURL("", false)
	assert.Equal(t, exitUsage, exitCode(err))
}

// TestExitCodes checks that each of the agent's error codes ends the
// program with its documented exit code and the agent's message.
func TestExitCodes(t *testing.T) {
	for code, want := range map[string]int{
		"not_backup_node":    exitNotBackup,
		"in_progress":        exitBusy,
		"slot_occupied":      exitBusy,
		"no_backup":          exitNoBackup,
		"unauthorized":       exitUnauthorized,
		"unreachable":        exitUnreachable,
		"insufficient_space": exitNoSpace,
		"oplog_rollover":     exitOplogRolled,
		"source_changed":     exitChanged,
		"sharded":            exitSharded,
		"wrong_password":     exitBadBackup,
		"corrupt":            exitBadBackup,
		"exists":             exitBusy,
		"empty_password":     exitUsage,
		"bad_request":        exitUsage,
		"something_new":      exitError,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			assert.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"` + code + `","message":"what to do"}`))
		}))
		var stdout bytes.Buffer
		root := newRoot()
		root.SetOut(&stdout)
		root.SetArgs([]string{"-t", srv.URL, "--token", "tok", "backup-delete"})
		err := root.Execute()
		srv.Close()
		require.Error(t, err, code)
		assert.Equal(t, want, exitCode(err), code)
		assert.True(t, strings.HasPrefix(err.Error(), "what to do"), "the agent's message first: %q", err.Error())
		assert.Empty(t, stdout.String())
	}
}

func TestPasswordSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(file, []byte("from-file\r\nsecond line\n"), 0o600))

	pw, err := (&passwordFlags{password: "from-flag", file: file}).read(false)
	require.NoError(t, err)
	assert.Equal(t, "from-flag", string(pw))

	pw, err = (&passwordFlags{file: file}).read(false)
	require.NoError(t, err)
	assert.Equal(t, "from-file", string(pw))

	t.Setenv("KEEPSLOT_PASSWORD", "from-env")
	pw, err = (&passwordFlags{}).read(true)
	require.NoError(t, err)
	assert.Equal(t, "from-env", string(pw))
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"no-such-command"},
		{"backup-status", "extra"},
		{"backup-status", "--no-such-flag"},
		{"restore", "a", "b"},
		{"restore", "--ns-from", "a.*", "--password", "x", "--dry-run", "missing-file"},
		{"set-as-backup", "--unset", "--show"},
		{},
	} {
		root := newRoot()
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		root.SetArgs(args)
		err := root.Execute()
		require.Error(t, err, "%q", args)
		assert.Equal(t, exitUsage, exitCode(err), "%q: %v", args, err)
	}
}

// TestRestoreExitCodes checks that a local restore's errors end the
// program with the exit codes the agent's codes map to, a malformed
// archive inside an authenticated file included.
func TestRestoreExitCodes(t *testing.T) {
	for err, want := range map[error]int{
		cipher.ErrWrongPassword:       exitBadBackup,
		restore.ErrCorrupt:            exitBadBackup,
		archive.ErrCorrupt:            exitBadBackup,
		archive.ErrUnknownFormat:      exitBadBackup,
		sensitive.ErrManifestMismatch: exitBadBackup,
		sensitive.ErrExists:           exitBusy,
		backup.ErrUnreachable:         exitUnreachable,
		backup.ErrUnauthorized:        exitUnauthorized,
	} {
		got := restoreError(fmt.Errorf("restore: %w", err))
		assert.Equal(t, want, exitCode(got), "%v", err)
		assert.ErrorIs(t, got, err)
	}
	assert.NoError(t, restoreError(nil))
}

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]bson.Timestamp{
		"":             {},
		"1700000000":   {T: 1700000000},
		"1700000000:7": {T: 1700000000, I: 7},
	} {
		got, err := parseTimestamp(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"x", "1:y", "-1", "99999999999", "1:2:3"} {
		_, err := parseTimestamp(bad)
		assert.Error(t, err, bad)
	}
}

// TestRestoreFlags: the oplog flags reach RestoreOptions' parser, and a bad
// value is a usage error (exit 2) before any file is read.
func TestRestoreFlags(t *testing.T) {
	for _, args := range [][]string{
		{"restore", "--dry-run", "--oplog-replay", "sometimes", "f"},
		{"restore", "--dry-run", "--oplog-limit", "soon", "--password", "pw", "f"},
		{"restore", "--dry-run", "--operation-timeout", "0s", "--password", "pw", "f"},
	} {
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(args)
		err := root.Execute()
		require.Error(t, err, args)
		assert.Equal(t, exitUsage, exitCode(err), "%v: %v", args, err)
	}
}

// TestExitForEveryCode checks that every error code has an exit code of
// its own class, and that the thirteen are all in use.
func TestExitForEveryCode(t *testing.T) {
	exits := map[int]bool{}
	for _, c := range []errcode.Code{errcode.EmptyPassword, errcode.NotBackupNode, errcode.InProgress, errcode.SlotOccupied,
		errcode.Exists, errcode.NoBackup, errcode.Unreachable, errcode.Unauthorized, errcode.InsufficientSpace,
		errcode.WrongPassword, errcode.Corrupt, errcode.CountMismatch, errcode.Invalid, errcode.Cancelled,
		errcode.Interrupted, errcode.Internal, errcode.OplogRollover, errcode.DuplicateKey,
		errcode.SourceChanged, errcode.Sharded, errcode.DrillFailed} {
		assert.NotZero(t, exitFor(c), c)
		exits[exitFor(c)] = true
	}
	assert.Len(t, exits, 13, "exit codes 1 to 13 are all in use")
	assert.Equal(t, exitOK, exitFor(errcode.OK))
}

// TestParseTarget checks --to-time's two forms: a time, restored to the
// end of its second, and SECONDS[:ORDINAL], the oplog before it.
func TestParseTarget(t *testing.T) {
	at, ts, err := parseTarget("2026-12-02T17:59:00Z")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 2, 17, 59, 0, 0, time.UTC), at.UTC())
	assert.True(t, ts.IsZero())
	at, ts, err = parseTarget("1796250548:7")
	require.NoError(t, err)
	assert.True(t, at.IsZero())
	assert.Equal(t, bson.Timestamp{T: 1796250548, I: 7}, ts)
	for _, bad := range []string{"", "yesterday", "0", "2026-12-02 17:59", "1:2:3"} {
		_, _, err := parseTarget(bad)
		assert.Error(t, err, bad)
	}
	r := runCtl(t, "restore", "--to-time", "1796250548:7", "--dry-run", "file.enc")
	assert.Equal(t, exitUsage, r.code, r.stderr)
	assert.Contains(t, r.err.Error(), "takes no FILE")
}

// TestRestoreOperationTimeout: --operation-timeout reaches restore's
// options, and its default is the SDK's.
func TestRestoreOperationTimeout(t *testing.T) {
	var a app
	fl := a.restoreCmd().Flags()
	require.NoError(t, fl.Parse([]string{"--operation-timeout", "7s"}))
	d, err := fl.GetDuration("operation-timeout")
	require.NoError(t, err)
	opts, err := restoreOptions(restoreFlags{uri: "mongodb://127.0.0.1:1", opTimeout: d})
	require.NoError(t, err)
	assert.Equal(t, 7*time.Second, opts.Conn.OperationTimeout)
	assert.Equal(t, conn.DefaultOperationTimeout.String(), a.restoreCmd().Flags().Lookup("operation-timeout").DefValue)
}

// TestRestoreModes: restore's modes (a FILE, --sensitive, --to-time,
// --from-remote, --allow-missing-manifest) exclude each other as the
// usage says, each refusal a usage error (exit 2) that says why, before
// a password is read or the agent asked.
func TestRestoreModes(t *testing.T) {
	const (
		toTime     = "--to-time restores the node's bucket, through the agent at -t: it takes no FILE, --sensitive, --from-remote or --oplog-limit"
		fromRemote = "--from-remote takes the place of FILE, and is for the main backup only"
		noManifest = "--allow-missing-manifest is for a FILE (or --from-remote copy) that is a tarred mongodump directory, not for --sensitive or --to-time, whose backups are keepslot's own"
		nsPairs    = "--ns-from and --ns-to come in pairs"
	)
	at := "1796250548:7"
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--to-time", at, "--sensitive"}, toTime},
		{[]string{"--to-time", at, "--from-remote", "b.enc"}, toTime},
		{[]string{"--to-time", at, "--oplog-limit", "1700000000"}, toTime},
		{[]string{"--to-time", at, "file.enc"}, toTime},
		{[]string{"--from-remote", "b.enc", "--sensitive"}, fromRemote},
		{[]string{"--from-remote", "b.enc", "file.enc"}, fromRemote},
		{[]string{"--allow-missing-manifest", "--sensitive", "file.enc"}, noManifest},
		{[]string{"--allow-missing-manifest", "--to-time", at}, noManifest},
		{[]string{"--ns-from", "a.*", "file.enc"}, nsPairs},
		{[]string{"--ns-to", "b.*", "file.enc"}, nsPairs},
	} {
		// No agent at -t, no password: the refusal comes first.
		r := runCtl(t, append([]string{"-t", "127.0.0.1:1", "restore", "--dry-run"}, tc.args...)...)
		assert.Equal(t, exitUsage, r.code, "%v: %v", tc.args, r.err)
		if assert.Error(t, r.err, tc.args) {
			assert.Contains(t, r.err.Error(), tc.says, "%v", tc.args)
		}
	}
	r := runCtl(t, "set-as-backup", "--unset", "--show")
	assert.Equal(t, exitUsage, r.code, "%v", r.err)
	assert.ErrorContains(t, r.err, "--unset takes the node out of the backup role, --show only prints it")
}
