package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// TestDrillEmbedded drills a real backup through the API into the default
// target, an embedded server started for the drill in DATA/drill and
// removed after it: the report says it passed, with the namespace's counts
// and digests and the time to restore; a wrong password fails it with its
// code.
func TestDrillEmbedded(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, slot.NewRole(dir).Set())
	b, err := slot.New(fakeSource{}, slot.Config{Store: store.Memory(), StateDir: dir, KDF: &cipher.Options{LogN: 10}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.Start(context.Background(), []byte("pw")))
	st, err := b.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, slot.StateReady, st.State)

	drillDir := filepath.Join(dir, "drill")
	require.NoError(t, os.MkdirAll(filepath.Join(drillDir, "server-left-by-a-kill"), 0o700))
	d, err := newDriller("", "mongodb://127.0.0.1:27017", drillDir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.NoDirExists(t, filepath.Join(drillDir, "server-left-by-a-kill"), "what a killed drill left is removed at start")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sc, err := startScheduling(ctx, schedulingConfig{Slot: b, Driller: d, StateDir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	srv := httptest.NewServer(newServer(serverConfig{Token: testToken, Role: slot.NewRole(dir), Main: b, Sensitive: b,
		Logger: slog.New(slog.DiscardHandler), Schedule: sc}))
	t.Cleanup(srv.Close)

	resp, body := do(t, srv, "POST", "/v1/drill", "")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "empty_password", errorOf(t, body))
	assert.Contains(t, body, "a drill needs the backup's password", "the answer says what the drill needs, not what a backup does")
	assert.Contains(t, body, "-schedule-password-file")
	resp, body = do(t, srv, "GET", "/v1/schedule", "")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)

	resp, body = do(t, srv, "POST", "/v1/drill", `{"password":"pw"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	_, body = do(t, srv, "GET", "/v1/drill?wait=1", "")
	var ds drillState
	require.NoError(t, json.Unmarshal([]byte(body), &ds))
	require.NotNil(t, ds.Last, body)
	require.True(t, ds.Last.Passed, body)
	assert.Equal(t, st.Name, ds.Last.Backup)
	assert.Positive(t, ds.Last.RestoreSeconds)
	assert.Positive(t, ds.Last.Bytes)
	var rep drill.Report
	require.NoError(t, json.Unmarshal(ds.Last.Report, &rep))
	require.Len(t, rep.Namespaces, 1)
	ns := rep.Namespaces[0]
	assert.Equal(t, "app.things", ns.Namespace)
	assert.EqualValues(t, 100, ns.ExpectedDocuments)
	assert.EqualValues(t, 100, ns.FoundDocuments)
	assert.Equal(t, ns.ExpectedDigest, ns.FoundDigest)
	entries, err := os.ReadDir(drillDir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, e.IsDir(), "the drill's server directory %s is removed", e.Name())
	}

	resp, body = do(t, srv, "POST", "/v1/drill", `{"password":"wrong"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	_, body = do(t, srv, "GET", "/v1/drill?wait=1", "")
	require.NoError(t, json.Unmarshal([]byte(body), &ds))
	assert.False(t, ds.Last.Passed)
	assert.Equal(t, errcode.WrongPassword, ds.Last.Code)
	assert.Equal(t, int64(1), ds.Failures)
	assert.True(t, ds.LastSuccess.Passed)
	assert.NotContains(t, body, "wrong\"", "the password is not in the report")

	_, err = newDriller("mongodb://h:1", "mongodb://h:1", drillDir, nil)
	assert.ErrorIs(t, err, errSchedule)
}
