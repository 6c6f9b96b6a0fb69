package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testNotifier(t *testing.T, url string) *notifier {
	t.Helper()
	n, err := newNotifier(url, "n1", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	n.backoff, n.timeout = time.Millisecond, 100*time.Millisecond
	return n
}

// TestNotifierQueueDropsOldest: send never blocks; a full queue drops its
// oldest event and counts it.
func TestNotifierQueueDropsOldest(t *testing.T) {
	n := testNotifier(t, "http://127.0.0.1:1/hook")
	n.max = 3
	for i := range 5 {
		n.send(event{Event: "run_failed", Step: string(rune('a' + i))})
	}
	_, dropped, _ := n.counts()
	assert.Equal(t, int64(2), dropped)
	var steps []string
	for _, e := range n.queue {
		steps = append(steps, e.Step)
	}
	assert.Equal(t, []string{"c", "d", "e"}, steps)
	var nilN *notifier
	nilN.send(event{}) // a notifier that is not configured drops it
}

// TestNotifierRetries: a post that fails is tried again, with backoff, up
// to the bound; one that a 4xx refuses is not; a server that does not
// answer times out. None of it holds up send.
func TestNotifierRetries(t *testing.T) {
	var posts atomic.Int32
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	got := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		b, _ := io.ReadAll(r.Body)
		switch st := int(status.Load()); st {
		case 0: // hang until the client gives up
			<-r.Context().Done()
		case http.StatusOK:
			got <- b
		default:
			w.WriteHeader(st)
		}
	}))
	t.Cleanup(srv.Close)
	n := testNotifier(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	err := n.post(ctx, event{Event: "run_failed"})
	require.Error(t, err)
	assert.Equal(t, int32(notifyTries), posts.Load(), "503: every try")
	assert.Contains(t, err.Error(), "503")

	posts.Store(0)
	status.Store(http.StatusNotFound)
	require.Error(t, n.post(ctx, event{Event: "run_failed"}))
	assert.Equal(t, int32(1), posts.Load(), "404: not tried again")

	posts.Store(0)
	status.Store(0)
	n.tries = 2
	err = n.post(ctx, event{Event: "run_failed"})
	require.Error(t, err)
	assert.Equal(t, int32(2), posts.Load(), "a server that hangs is given up on after the timeout, each try")

	status.Store(http.StatusOK)
	go n.Run(ctx)
	n.send(event{Event: "run_failed", Step: "export", Message: "dial mongodb://admin:hunter2@db:27017: refused"})
	var e event
	select {
	case b := <-got:
		require.NoError(t, json.Unmarshal(b, &e))
		assert.NotContains(t, string(b), "hunter2")
	case <-time.After(time.Minute): // a guard, not a synchronisation
		t.Fatal("the event was not posted")
	}
	assert.Equal(t, "keepslotd", e.Agent)
	assert.Equal(t, "n1", e.Node)
	assert.Equal(t, "export", e.Step)
	assert.Equal(t, "dial mongodb://****@db:27017: refused", e.Message)
	assert.False(t, e.Time.IsZero())
}

func TestMaskURLCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://u:p@h/x and s3://k@b":  "mongodb://****@h/x and s3://****@b",
		"no url here":                     "no url here",
		"https://host/path?x=a@b":         "https://host/path?x=a@b",
		"mongodb+srv://user:p%40ss@h:1/d": "mongodb+srv://****@h:1/d",
	} {
		assert.Equal(t, want, maskURLCredentials(in), in)
	}
}
