package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/slot/slottest"
	"github.com/keepslot/keepslot/store"
)

// s3Like is a remote that, as an S3 server does, fails with an error of
// its own (no code: internal) for a key with a control character, and
// counts the objects opened.
type s3Like struct {
	store.Remote
	opened atomic.Int64
}

func (r *s3Like) Open(ctx context.Context, key string) (store.Object, error) {
	r.opened.Add(1)
	if strings.ContainsFunc(key, func(c rune) bool { return c < 0x20 }) {
		return nil, errors.New("XMinioInvalidObjectName: Object name contains unsupported characters")
	}
	return r.Remote.Open(ctx, key)
}

// TestSliceNameRefused checks that a slice's name that cannot be one is
// answered 400 bad_request, saying why, before the bucket is asked (a NUL
// was a 500 internal, the bucket's error), and that a 200 KB name is not
// sent back whole.
func TestSliceNameRefused(t *testing.T) {
	remote := &s3Like{Remote: store.MemoryRemote()}
	srv := serveWith(t, serverConfig{Main: slottest.New(), Sensitive: slottest.New(),
		Export: &slot.ExportConfig{Remote: remote, Node: "n1"}})
	long := strings.Repeat("n", 200<<10)
	for _, tc := range []struct{ name, says string }{
		{"a%00b.bson", "control character"},
		{"a%0Ab.bson", "control character"},
		{"a%FFb.bson", "not UTF-8"},
		{"a%5Cb.bson", "backslash"},
		{long, "longer than"},
	} {
		resp, body := do(t, srv, "GET", "/v1/pitr/slices/"+tc.name, "")
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body[:min(len(body), 200)])
		assert.Equal(t, "bad_request", errorOf(t, body))
		assert.Contains(t, body, tc.says)
		assert.Contains(t, body, "is not a slice's name")
		assert.Less(t, len(body), 2<<10, "the name is not echoed whole")
	}
	assert.Zero(t, remote.opened.Load(), "the bucket is not asked for a name that cannot be a slice's")
	assert.Contains(t, func() string { _, b := do(t, srv, "GET", "/v1/pitr/slices/"+long, ""); return b }(), "(204800 bytes)")

	resp, body := do(t, srv, "GET", "/v1/pitr/slices/0000000001.0000000000-0000000002.0000000000.bson", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	assert.Equal(t, int64(1), remote.opened.Load())
}

// TestErrorsEchoLittle checks that no error answer sends back all of a
// long input: not the unknown endpoint's path, and not a library error
// that quotes a name, whose head and tail (what to do) are kept.
func TestErrorsEchoLittle(t *testing.T) {
	srv := serveWith(t, serverConfig{Main: slottest.New(), Sensitive: slottest.New()})
	long := strings.Repeat("p", 200<<10)
	resp, body := do(t, srv, "GET", "/v1/"+long, "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Less(t, len(body), 2<<10)
	assert.Contains(t, body, "bytes)")

	rec := httptest.NewRecorder()
	writeErr(rec, fmt.Errorf("%w: the key %q is bad; name another", store.ErrInvalid, long))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Less(t, rec.Body.Len(), 2<<10)
	assert.Contains(t, rec.Body.String(), "store: invalid name or metadata: the key")
	assert.Contains(t, rec.Body.String(), "bytes left out")
	assert.Contains(t, rec.Body.String(), `is bad; name another"`)

	assert.Equal(t, `"short"`, echo("short"))
	e := echo(strings.Repeat("é", 100))
	assert.True(t, strings.HasPrefix(e, `"`+strings.Repeat("é", 32)+`"...`), e)
	assert.Contains(t, e, "(200 bytes)")
	assert.Equal(t, "ab", runeCut("abé", 3), "a rune is not cut")
}

// FuzzCapMessage checks that capMessage and echo bound what they return
// and keep valid UTF-8 valid, whatever a client sends.
func FuzzCapMessage(f *testing.F) {
	f.Add("short")
	f.Add(strings.Repeat("é", 700))
	f.Add(strings.Repeat("n", 5000) + "\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		c := capMessage(s)
		if len(c) > maxMessage+64 {
			t.Fatalf("capMessage: %d bytes", len(c))
		}
		if len(s) <= maxMessage && c != s {
			t.Fatalf("capMessage changed a short message")
		}
		if utf8.ValidString(s) && !utf8.ValidString(c) {
			t.Fatalf("capMessage cut a rune: %q", c)
		}
		if e := echo(s); len(e) > 4*maxEcho+32 {
			t.Fatalf("echo: %d bytes", len(e))
		}
	})
}
