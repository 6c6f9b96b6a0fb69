package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/store"
)

// hostileSize is what a hostile agent streams for a backup it announces
// at announcedSize bytes.
const (
	hostileSize   = 300 << 20
	announcedSize = 1000
)

// hostileStream returns a handler that sends hostileSize bytes (with
// header set first) and counts what it got written, and a channel closed
// when it has returned.
func hostileStream(header func(http.Header), status int) (http.HandlerFunc, *atomic.Int64, chan struct{}) {
	var sent atomic.Int64
	done := make(chan struct{})
	return func(w http.ResponseWriter, _ *http.Request) {
		defer close(done)
		header(w.Header())
		w.WriteHeader(status)
		chunk := bytes.Repeat([]byte{'x'}, 64<<10)
		for sent.Load() < hostileSize {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}, &sent, done
}

// TestDownloadStopsAtAnnouncedSize checks that keepslotctl does not take
// more of the agent's stream than the backup's announced size: it stops
// there with an error that is a corrupt backup's (exit 6), names both
// sizes, and removes the partial file.
func TestDownloadStopsAtAnnouncedSize(t *testing.T) {
	readyStatus := status{Message: "Backup found", Status: map[string]any{
		"state": "ready", "name": "b.enc", "size": announcedSize, "md5": "00112233445566778899aabbccddeeff"}}
	remoteList := map[string]any{"backups": []any{map[string]any{"key": "n/b.enc",
		"info": map[string]any{"name": "b.enc", "size": announcedSize, "md5": "00112233445566778899aabbccddeeff"}}}}
	noHeader := func(http.Header) {}
	announce := func(h http.Header) { h.Set("Content-Length", strconv.Itoa(hostileSize)) }
	resumeRange := func(h http.Header) { h.Set("Content-Range", "bytes 500-999/1000") }

	for _, tc := range []struct {
		name     string
		path     string // where the stream is served
		header   func(http.Header)
		status   int
		partial  int // bytes already in the file: a download to resume
		args     []string
		received string // what the message says was received
	}{
		{"a stream without a length", "GET /v1/backup/file", noHeader, http.StatusOK, 0, []string{"backup-retrieve"}, "1001"},
		{"a Content-Length that is not the backup's", "GET /v1/backup/file", announce, http.StatusOK, 0, []string{"backup-retrieve"}, strconv.Itoa(hostileSize)},
		{"a resumed download", "GET /v1/backup/file", resumeRange, http.StatusPartialContent, 500, []string{"backup-retrieve"}, "1001"},
		{"a copy on the remote", "GET /v1/backup/remote/b.enc", noHeader, http.StatusOK, 0, []string{"backup-retrieve", "--from-remote", "b.enc"}, "1001"},
		{"a copy on the remote with a Content-Length", "GET /v1/backup/remote/b.enc", announce, http.StatusOK, 0, []string{"backup-retrieve", "--from-remote", "b.enc"}, strconv.Itoa(hostileSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, sent, done := hostileStream(tc.header, tc.status)
			srv := fakeAgent(t, map[string]http.HandlerFunc{
				"GET /v1/backup":        answerJSON(t, readyStatus),
				"GET /v1/backup/remote": answerJSON(t, remoteList),
				tc.path:                 stream,
			})
			file := filepath.Join(t.TempDir(), "b.enc")
			if tc.partial > 0 {
				require.NoError(t, os.WriteFile(file, bytes.Repeat([]byte{'x'}, tc.partial), 0o600))
			}
			r := runCtl(t, append([]string{"-t", srv.URL, "--token", "tok"}, append(tc.args, "-o", file)...)...)
			require.Error(t, r.err)
			assert.Equal(t, exitBadBackup, r.code, "%v", r.err)
			assert.True(t, errors.Is(r.err, store.ErrMismatch), "not a corrupt backup's error: %v", r.err)
			assert.Equal(t, errcode.Corrupt, errcode.Of(r.err))
			assert.Contains(t, r.err.Error(), strconv.Itoa(announcedSize), "the announced size")
			assert.Contains(t, r.err.Error(), tc.received, "the received size")
			assert.Contains(t, r.err.Error(), file)
			assert.NoFileExists(t, file, "the partial file is left")
			srv.CloseClientConnections()
			select {
			case <-done:
			case <-time.After(time.Minute): // a guard against a hung test
				t.Fatal("the agent's handler still runs")
			}
			assert.Less(t, sent.Load(), int64(hostileSize), "keepslotctl read all the stream")
		})
	}
}
