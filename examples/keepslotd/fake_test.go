package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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
		{"Status", "GET", "/v1/backup", errcode.New(errcode.DrillFailed, "a drill failed"), http.StatusUnprocessableEntity, "drill_failed"},
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

// byteRanges returns a Range header asking for n one-byte ranges.
func byteRanges(n int) string {
	r := make([]string, n)
	for i := range r {
		r[i] = fmt.Sprintf("%d-%d", i*3, i*3)
	}
	return "bytes=" + strings.Join(r, ",")
}

// TestRangesCapped checks that a download asks for at most maxRanges byte
// ranges: 10,000 one-byte ranges of a 41 KB file would come back as a
// multipart answer 36 times the file's size; beyond the cap, the whole file
// is sent, once.
func TestRangesCapped(t *testing.T) {
	srv, main, _ := newFakeServer(t)
	resp, _ := do(t, srv, "POST", "/v1/backup", `{"password":"pw"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	data := bytes.Repeat([]byte("0123456789"), 4100)
	main.Finish(data)

	for _, n := range []int{10000, maxRanges + 1} {
		resp, body := do(t, srv, "GET", "/v1/backup/file", "", "Range", byteRanges(n))
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%d ranges", n)
		assert.Len(t, body, len(data), "%d ranges", n)
		assert.True(t, body == string(data), "%d ranges: not the file", n)
	}

	resp, body := do(t, srv, "GET", "/v1/backup/file", "", "Range", byteRanges(maxRanges))
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "multipart/byteranges")
	assert.Less(t, len(body), 200*maxRanges, "the parts of %d one-byte ranges", maxRanges)

	// Empty elements are not ranges.
	resp, body = do(t, srv, "GET", "/v1/backup/file", "", "Range", "bytes=4-6"+strings.Repeat(", ", 100))
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "456", body)
}

// TestCancel checks POST …/cancel on both slots: it cancels a running
// backup (the status says cancelled), says when there is nothing to
// cancel, and answers the Backupper's error with its code.
func TestCancel(t *testing.T) {
	srv, main, sens := newFakeServer(t)
	for prefix, fake := range map[string]*slottest.Fake{"/v1/backup": main, "/v1/sensitive": sens} {
		t.Run(prefix, func(t *testing.T) {
			resp, body := do(t, srv, "POST", prefix+"/cancel", "")
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.JSONEq(t, `{"message":"No backup or export in progress; nothing to cancel."}`, body)

			resp, _ = do(t, srv, "POST", prefix, `{"password":"pw"}`)
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			resp, body = do(t, srv, "POST", prefix+"/cancel", "")
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.JSONEq(t, `{"message":"Backup cancelled."}`, body)
			_, body = do(t, srv, "GET", prefix, "")
			var st statusResponse
			require.NoError(t, json.Unmarshal([]byte(body), &st))
			assert.Equal(t, slot.StateFailed, st.Status.State)
			assert.Equal(t, errcode.Cancelled, st.Status.Code)

			fake.FailNext("Cancel", fmt.Errorf("backup: cancel: %w", context.DeadlineExceeded))
			resp, body = do(t, srv, "POST", prefix+"/cancel", "")
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, "cancelled", errorOf(t, body))
		})
	}
}

// TestCancelMessage checks what a cancel says it did, from the statuses
// before and after it, the races included.
func TestCancelMessage(t *testing.T) {
	running := slot.Status{State: slot.StateInProgress}
	cancelled := slot.Status{State: slot.StateFailed, Code: errcode.Cancelled}
	ready := slot.Status{State: slot.StateReady}
	export := func(s slot.ExportState, c errcode.Code) slot.Status {
		return slot.Status{State: slot.StateReady, Export: &slot.ExportStatus{State: s, Code: c}}
	}
	for _, tc := range []struct {
		before, after slot.Status
		want          string
	}{
		{running, cancelled, "Backup cancelled."},
		{running, ready, "The backup ended before it could be cancelled: Backup found"},
		{export(slot.ExportInProgress, ""), export(slot.ExportFailed, errcode.Cancelled), "Export cancelled."},
		{export(slot.ExportInProgress, ""), export(slot.ExportDone, ""), "The export ended before it could be cancelled."},
		{ready, ready, "No backup or export in progress; nothing to cancel."},
		{export(slot.ExportDone, ""), export(slot.ExportDone, ""), "No backup or export in progress; nothing to cancel."},
		{slot.Status{State: slot.StateNone}, slot.Status{State: slot.StateNone}, "No backup or export in progress; nothing to cancel."},
	} {
		assert.Equal(t, tc.want, cancelMessage(tc.before, tc.after))
	}
}
