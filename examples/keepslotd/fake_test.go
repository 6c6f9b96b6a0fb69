package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/slot/slottest"
	"github.com/keepslot/keepslot/store"
)

// newFakeServer serves scripted fakes, so that each answer of the API can
// be driven from the test.
func newFakeServer(t *testing.T) (*httptest.Server, *slottest.Fake, *slottest.Fake) {
	t.Helper()
	main, sens := slottest.New(), slottest.New()
	srv := httptest.NewServer(newServer(serverConfig{
		Token: testToken, Role: slot.NewRole(t.TempDir()), Main: main, Sensitive: sens,
		Logger: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	return srv, main, sens
}

// TestStatusWaitBlocksUntilEnd checks ?wait: the request answers only once
// the backup has ended, with the final status.
func TestStatusWaitBlocksUntilEnd(t *testing.T) {
	srv, main, _ := newFakeServer(t)
	resp, _ := do(t, srv, "POST", "/v1/backup", `{"password":"pw"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, []byte("pw"), main.Password())

	answered := make(chan string)
	go func() {
		_, body := do(t, srv, "GET", "/v1/backup?wait=1", "")
		answered <- body
	}()
	main.Finish([]byte("encrypted"))
	var st statusResponse
	require.NoError(t, json.Unmarshal([]byte(<-answered), &st))
	assert.Equal(t, slot.StateReady, st.Status.State)
	assert.Equal(t, "Backup found", st.Message)
}

// TestFailedStatusCarriesCode checks that a failed backup's status gives
// its machine-readable code beside the message.
func TestFailedStatusCarriesCode(t *testing.T) {
	srv, _, sens := newFakeServer(t)
	resp, _ := do(t, srv, "POST", "/v1/sensitive", `{"password":"pw"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	sens.Fail(fmt.Errorf("backup: %w", backup.ErrUnreachable))
	_, body := do(t, srv, "GET", "/v1/sensitive", "")
	var st statusResponse
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Equal(t, slot.StateFailed, st.Status.State)
	assert.Equal(t, errcode.Unreachable, st.Status.Code)
	assert.Contains(t, st.Message, "Backup failed: ")
}

// TestErrorAnswers checks that each verb's errors answer with the status
// and code errcode.Of gives them.
func TestErrorAnswers(t *testing.T) {
	for _, tc := range []struct {
		verb, method, path string
		err                error
		status             int
		code               string
	}{
		{"Start", "POST", "/v1/backup", backup.ErrUnreachable, http.StatusServiceUnavailable, "unreachable"},
		{"Start", "POST", "/v1/backup", backup.ErrUnauthorized, http.StatusBadGateway, "unauthorized"},
		{"Start", "POST", "/v1/backup", &slot.SpaceError{Data: 1, Need: 2}, http.StatusInsufficientStorage, "insufficient_space"},
		{"Start", "POST", "/v1/backup", store.ErrBusy, http.StatusConflict, "in_progress"},
		{"Status", "GET", "/v1/backup", errors.New("a bug"), http.StatusInternalServerError, "internal"},
		{"Status", "GET", "/v1/backup", store.ErrCorrupt, http.StatusUnprocessableEntity, "corrupt"},
		{"Wait", "GET", "/v1/backup?wait=1", backup.ErrUnreachable, http.StatusServiceUnavailable, "unreachable"},
		{"Open", "GET", "/v1/backup/file", store.ErrEmpty, http.StatusNotFound, "no_backup"},
		{"Delete", "DELETE", "/v1/backup", slot.ErrInProgress, http.StatusConflict, "in_progress"},
	} {
		t.Run(tc.verb+"/"+tc.code, func(t *testing.T) {
			srv, main, _ := newFakeServer(t)
			main.FailNext(tc.verb, fmt.Errorf("backup: %w", tc.err))
			body := `{"password":"pw"}`
			if tc.method != "POST" {
				body = ""
			}
			resp, got := do(t, srv, tc.method, tc.path, body)
			assert.Equal(t, tc.status, resp.StatusCode, got)
			assert.Equal(t, tc.code, errorOf(t, got))
			assert.Equal(t, []string{tc.verb}, main.Calls())
		})
	}
}

// TestFileServesRanges checks the download through Backupper.Open.
func TestFileServesRanges(t *testing.T) {
	srv, main, _ := newFakeServer(t)
	resp, _ := do(t, srv, "POST", "/v1/backup", `{"password":"pw"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	main.Finish([]byte("0123456789"))
	resp, body := do(t, srv, "GET", "/v1/backup/file", "", "Range", "bytes=4-6")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "456", body)
	assert.Equal(t, "781e5e245d69b566979b86e28d23f2c7", resp.Header.Get("X-Content-MD5"))
	assert.Contains(t, resp.Header.Get("Content-Disposition"), `filename="`+retrievedName+`"`)
}

// TestHTTPStatusForEveryCode checks that every error code answers with an
// error status, too little space in the oplog as in the slot's disk.
func TestHTTPStatusForEveryCode(t *testing.T) {
	for _, c := range []errcode.Code{errcode.EmptyPassword, errcode.NotBackupNode, errcode.InProgress, errcode.SlotOccupied,
		errcode.Exists, errcode.NoBackup, errcode.Unreachable, errcode.Unauthorized, errcode.InsufficientSpace,
		errcode.WrongPassword, errcode.Corrupt, errcode.CountMismatch, errcode.Invalid, errcode.Cancelled,
		errcode.Interrupted, errcode.Internal, errcode.OplogRollover, errcode.DuplicateKey} {
		assert.GreaterOrEqual(t, httpStatus(c), 400, c)
	}
	assert.Equal(t, http.StatusInsufficientStorage, httpStatus(errcode.OplogRollover))
	assert.Equal(t, http.StatusOK, httpStatus(errcode.OK))
}
