package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/slot/slottest"
	"github.com/keepslot/keepslot/store"
)

// fakeExporter is a scripted Backupper that also exports: its copies live
// in a MemoryRemote under "node/", and err, when set, is every export
// verb's answer.
type fakeExporter struct {
	*slottest.Fake
	remote  store.Remote
	err     error
	exports int
}

func (f *fakeExporter) Export(context.Context) error {
	if f.err != nil {
		return f.err
	}
	f.exports++
	return nil
}

func (f *fakeExporter) RemoteList(ctx context.Context) ([]store.Entry, error) {
	if f.err != nil {
		return nil, f.err
	}
	l, err := f.remote.List(ctx, "node/")
	var out []store.Entry
	for _, e := range l {
		out = append(out, store.Entry{Key: e.Key, Info: e.Info})
	}
	return out, err
}

func (f *fakeExporter) OpenRemote(ctx context.Context, name string) (store.Object, error) {
	if f.err != nil {
		return nil, f.err
	}
	o, err := f.remote.Open(ctx, "node/"+name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return o, nil
}

func newExportServer(t *testing.T) (*httptest.Server, *fakeExporter) {
	t.Helper()
	f := &fakeExporter{Fake: slottest.New(), remote: store.MemoryRemote()}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	_, err := f.remote.Put(context.Background(), "node/backup-1.enc", bytes.NewReader(data),
		store.Info{Name: "backup-1.enc", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	srv := httptest.NewServer(newServer(serverConfig{
		Token: testToken, Role: slot.NewRole(t.TempDir()), Main: f, Sensitive: slottest.New(),
		Logger: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	return srv, f
}

func TestExportEndpoints(t *testing.T) {
	srv, f := newExportServer(t)
	resp, body := do(t, srv, "POST", "/v1/backup/export", "")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	assert.Equal(t, 1, f.exports)

	resp, body = do(t, srv, "GET", "/v1/backup/remote", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var l remoteList
	require.NoError(t, json.Unmarshal([]byte(body), &l))
	require.Len(t, l.Backups, 1)
	assert.Equal(t, "backup-1.enc", l.Backups[0].Info.Name)
	assert.Equal(t, int64(10000), l.Backups[0].Info.Size)

	resp, body = do(t, srv, "GET", "/v1/backup/remote/backup-1.enc", "", "Range", "bytes=5-14")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "5678901234", body)
	assert.Equal(t, `"`+l.Backups[0].Info.MD5+`"`, resp.Header.Get("ETag"))

	resp, body = do(t, srv, "GET", "/v1/backup/remote/backup-2.enc", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "no_backup", errorOf(t, body))
}

func TestExportEndpointErrors(t *testing.T) {
	srv, f := newExportServer(t)
	for _, tc := range []struct {
		err    error
		status int
		code   string
		says   string
	}{
		{fmt.Errorf("backup: export: %w: no remote", slot.ErrInvalid), http.StatusBadRequest, "invalid", "-export-bucket"},
		{fmt.Errorf("backup: export: %w", store.ErrEmpty), http.StatusNotFound, "no_backup", ""},
		{fmt.Errorf("backup: export: %w", slot.ErrInProgress), http.StatusConflict, "in_progress", ""},
		{fmt.Errorf("backup: remote list: %w", store.ErrUnauthorized), http.StatusBadGateway, "unauthorized", ""},
		{fmt.Errorf("backup: remote list: %w", store.ErrUnreachable), http.StatusServiceUnavailable, "unreachable", ""},
	} {
		f.err = tc.err
		for _, req := range [][2]string{{"POST", "/v1/backup/export"}, {"GET", "/v1/backup/remote"}, {"GET", "/v1/backup/remote/backup-1.enc"}} {
			resp, body := do(t, srv, req[0], req[1], "")
			assert.Equal(t, tc.status, resp.StatusCode, "%s %s: %v", req[0], req[1], tc.err)
			assert.Equal(t, tc.code, errorOf(t, body), "%s %s", req[0], req[1])
			assert.Contains(t, body, tc.says)
		}
	}
}

// TestRemoteRangesCapped checks the cap on byte ranges (maxRanges) for a
// copy's download too.
func TestRemoteRangesCapped(t *testing.T) {
	srv, _ := newExportServer(t)
	resp, body := do(t, srv, "GET", "/v1/backup/remote/backup-1.enc", "", "Range", byteRanges(10000))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, body, 10000)
	resp, _ = do(t, srv, "GET", "/v1/backup/remote/backup-1.enc", "", "Range", byteRanges(maxRanges))
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
}
