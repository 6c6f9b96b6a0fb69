package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

const testToken = "s3cret-token"

// newTestServer serves two slots over in-memory secrets and stores, so
// that the HTTP layer is tested without a database.
func newTestServer(t *testing.T) (*httptest.Server, *slot.Role) {
	t.Helper()
	dir := t.TempDir()
	newSlot := func(stateFile string) slot.Backupper {
		st := store.Memory()
		b, err := slot.New(fakeSource{}, slot.Config{
			Store:     st,
			StateDir:  dir,
			StateFile: stateFile,
			KDF:       &cipher.Options{LogN: 10},
			Logger:    slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	role := slot.NewRole(dir)
	srv := httptest.NewServer(newServer(serverConfig{
		Token: testToken, Role: role, Main: newSlot("main.json"), Sensitive: newSlot("sensitive.json"),
		Logger: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	return srv, role
}

// fakeSource is a slot.Source of one small collection.
type fakeSource struct{}

func (fakeSource) Plan(context.Context) (slot.Plan, error) {
	return slot.Plan{Collections: []archive.Collection{{DB: "app", Name: "things", Type: "collection"}}, DataSize: 100}, nil
}

func (fakeSource) Documents(_ context.Context, _ archive.Collection, emit func([]byte) error) error {
	for i := range 100 {
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: i}})
		if err != nil {
			return err
		}
		if err := emit(doc); err != nil {
			return err
		}
	}
	return nil
}

func do(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	assert.NotEmpty(t, e.Message)
	return e.Error
}

func TestTokenRequired(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + testToken + "x", "Basic " + testToken, testToken} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/backup", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "Authorization %q", auth)
		assert.Equal(t, "unauthorized", errorOf(t, string(b)))
		assert.NotContains(t, string(b), testToken)
	}
}

func TestBackupCycle(t *testing.T) {
	srv, role := newTestServer(t)
	for _, prefix := range []string{"/v1/backup", "/v1/sensitive"} {
		t.Run(prefix, func(t *testing.T) {
			require.NoError(t, role.Unset())
			resp, body := do(t, srv, "POST", prefix, `{"password":"pw"}`)
			assert.Equal(t, http.StatusConflict, resp.StatusCode)
			assert.Equal(t, "not_backup_node", errorOf(t, body))

			resp, body = do(t, srv, "POST", "/v1/role", `{"backup":true}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.JSONEq(t, `{"backup":true,"message":"This node is in the backup role."}`, body)

			resp, body = do(t, srv, "POST", prefix, `{"password":""}`)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, "empty_password", errorOf(t, body))
			resp, body = do(t, srv, "POST", prefix, `{"password":"pw","extra":1}`)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.NotContains(t, body, "pw")

			resp, body = do(t, srv, "POST", prefix, `{"password":"pw"}`)
			require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
			assert.JSONEq(t, `{"message":"Backup in progress."}`, body)

			_, body = do(t, srv, "GET", prefix+"?wait=1", "")
			var st statusResponse
			require.NoError(t, json.Unmarshal([]byte(body), &st))
			require.Equal(t, slot.StateReady, st.Status.State, body)
			assert.Equal(t, "Backup found", st.Message)
			assert.Equal(t, st.Status.MD5, st.Arguments["md5"])

			resp, body = do(t, srv, "POST", prefix, `{"password":"pw"}`)
			assert.Equal(t, http.StatusConflict, resp.StatusCode)
			assert.Equal(t, "slot_occupied", errorOf(t, body))

			// The whole file, then a range of it, then a range against
			// another md5 (If-Range): the whole file again.
			resp, whole := do(t, srv, "GET", prefix+"/file", "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.EqualValues(t, st.Status.Size, len(whole))
			assert.Equal(t, st.Status.MD5, resp.Header.Get("X-Content-MD5"))
			resp, part := do(t, srv, "GET", prefix+"/file", "", "Range", "bytes=10-", "If-Range", `"`+st.Status.MD5+`"`)
			require.Equal(t, http.StatusPartialContent, resp.StatusCode)
			assert.Equal(t, whole[10:], part)
			resp, again := do(t, srv, "GET", prefix+"/file", "", "Range", "bytes=10-", "If-Range", `"0123"`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, whole, again)

			resp, body = do(t, srv, "DELETE", prefix, "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.JSONEq(t, `{"message":"Backup deleted."}`, body)
			for _, m := range []string{"DELETE", "GET"} {
				path := prefix
				if m == "GET" {
					path += "/file"
				}
				resp, body = do(t, srv, m, path, "")
				assert.Equal(t, http.StatusNotFound, resp.StatusCode)
				assert.Equal(t, "no_backup", errorOf(t, body))
			}
		})
	}
}

func TestUnknownEndpoint(t *testing.T) {
	srv, _ := newTestServer(t)
	resp, body := do(t, srv, "GET", "/v1/nothing", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "not_found", errorOf(t, body))
}
