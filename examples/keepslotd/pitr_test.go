package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/slot/slottest"
	"github.com/keepslot/keepslot/store"
)

// TestPITRKey checks how -pitr's key is read: from a 0600 password or key
// file, one of them, with -export-bucket; a file others may read is
// refused, and so is a key file that holds no key (TestPITRKeyUnsafeFiles:
// other files that are refused).
func TestPITRKey(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	kdf := &cipher.Options{LogN: 10}
	k, err := cipher.NewKey([]byte("pw"), kdf)
	require.NoError(t, err)
	kb, err := k.MarshalBinary()
	require.NoError(t, err)
	pw := file("pw", "pw\nignored\n", 0o600)
	keyFile := file("key", string(kb), 0o600)
	loose := file("loose", "pw\n", 0o640)

	key, err := pitrFlags{}.key(true, kdf)
	require.NoError(t, err)
	assert.Nil(t, key, "no -pitr, no key")

	for _, f := range []pitrFlags{{on: true, passwordFile: pw}, {on: true, keyFile: keyFile}} {
		key, err := f.key(true, kdf)
		require.NoError(t, err)
		// The key writes streams the password opens.
		var buf bytes.Buffer
		w, err := key.NewWriter(&buf)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		_, err = cipher.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), []byte("pw"), nil)
		assert.NoError(t, err, "%+v", f)
	}

	for _, tc := range []struct {
		f         pitrFlags
		exporting bool
		want      string
	}{
		{pitrFlags{on: true, passwordFile: pw}, false, "-export-bucket"},
		{pitrFlags{on: true}, true, "one of -pitr-password-file and -pitr-key-file"},
		{pitrFlags{on: true, passwordFile: pw, keyFile: keyFile}, true, "one of"},
		{pitrFlags{passwordFile: pw}, true, "need -pitr"},
		{pitrFlags{on: true, passwordFile: loose}, true, "chmod 600"},
		{pitrFlags{on: true, keyFile: pw}, true, "holds no key"},
		{pitrFlags{on: true, keyFile: filepath.Join(dir, "none")}, true, "no such file"},
	} {
		_, err := tc.f.key(tc.exporting, kdf)
		require.ErrorIs(t, err, errPITR, "%+v", tc.f)
		assert.Contains(t, err.Error(), tc.want)
		assert.Equal(t, errcode.Invalid, errcode.Of(err))
	}
}

// TestPITREndpointsNeedExport checks that an agent without a bucket has no
// point-in-time endpoints, and one without -pitr cannot flush.
func TestPITREndpointsNeedExport(t *testing.T) {
	srv, _, _ := newFakeServer(t)
	resp, _ := do(t, srv, "GET", "/v1/pitr", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	main := slottest.New()
	exp := &slot.ExportConfig{Remote: store.MemoryRemote(), Node: "n1"}
	srv2 := serveWith(t, serverConfig{Main: main, Sensitive: slottest.New(), Export: exp})
	resp, body := do(t, srv2, "POST", "/v1/pitr/flush", "")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, "-pitr")
	resp, body = do(t, srv2, "GET", "/v1/pitr", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"node":"n1/"`)
	resp, _ = do(t, srv2, "GET", "/v1/pitr/slices/a%5Cb", "")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a slice's name is one segment")
	resp, _ = do(t, srv2, "GET", "/v1/pitr/slices/none.bson", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestMetrics checks the metrics an operator alerts on: the age of the
// newest ready backup (kept once it is deleted), the last failure's code
// and the export's state.
func TestMetrics(t *testing.T) {
	main := slottest.New()
	now := time.Now()
	h := metricsHandler(&metrics{b: main, now: func() time.Time { return now }})
	scrape := func() string {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		return rec.Body.String()
	}
	assert.Contains(t, scrape(), `keepslot_backup_state{state="none"} 1`)
	assert.NotContains(t, scrape(), "keepslot_backup_last_ready_age_seconds", "no backup seen yet")

	require.NoError(t, main.Start(t.Context(), []byte("pw")))
	assert.Contains(t, scrape(), `keepslot_backup_state{state="in_progress"} 1`)
	main.Finish([]byte("encrypted"))
	st, err := main.Status(t.Context())
	require.NoError(t, err)
	now = st.Finished.Add(90 * time.Second)
	out := scrape()
	assert.Contains(t, out, `keepslot_backup_state{state="ready"} 1`)
	assert.Contains(t, out, "keepslot_backup_last_ready_age_seconds 90\n")
	assert.Contains(t, out, "keepslot_backup_last_ready_size_bytes 9\n")

	require.NoError(t, main.Delete(t.Context()))
	now = now.Add(time.Hour)
	out = scrape()
	assert.Contains(t, out, `keepslot_backup_state{state="none"} 1`)
	assert.Contains(t, out, "keepslot_backup_last_ready_age_seconds 3690\n", "the ready backup is remembered once deleted")

	require.NoError(t, main.Start(t.Context(), []byte("pw")))
	main.Fail(fmt.Errorf("backup: %w", backup.ErrOplogRollover))
	out = scrape()
	assert.Contains(t, out, `keepslot_backup_last_failure_timestamp_seconds{code="oplog_rollover"}`)
	assert.NotContains(t, out, "keepslot_pitr_", "no slicer, no PITR metrics")
}

// serveWith serves cfg with the test token, a role and a discarded log.
func serveWith(t *testing.T, cfg serverConfig) *httptest.Server {
	t.Helper()
	cfg.Token, cfg.Role, cfg.Logger = testToken, slot.NewRole(t.TempDir()), slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(newServer(cfg))
	t.Cleanup(srv.Close)
	return srv
}
