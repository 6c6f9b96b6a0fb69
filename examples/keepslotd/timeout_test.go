package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/slot/slottest"
	"github.com/keepslot/keepslot/store"
)

// guard bounds each wait of these tests for the agent to act. It is a
// guard against a hung test, not a synchronisation: with the timeouts under
// test, the agent acts in a few seconds at most.
const guard = time.Minute

// shortTimeouts are the agent's timeouts for these tests.
var shortTimeouts = timeouts{Read: 2 * time.Second, Write: 2 * time.Second, Idle: 2 * time.Second}

// serveHTTP serves cfg with the agent's own HTTP server (newHTTPServer) on
// a loopback port, and returns its address.
func serveHTTP(t *testing.T, cfg serverConfig) string {
	t.Helper()
	if cfg.Role == nil {
		cfg.Role = slot.NewRole(t.TempDir())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Token = testToken
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newHTTPServer(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

// closedByPeer reports whether err, from reading a connection to its end,
// means that the other side closed it: a clean end (nil from io.ReadAll) or
// a reset.
func closedByPeer(err error) bool {
	return err == nil || errors.Is(err, syscall.ECONNRESET)
}

// TestUnauthenticatedSlowBodies opens 1,000 connections that each announce
// a 100,000-byte body without a token and then send it a byte at a time:
// the agent answers each at once with 401 and Connection: close, without
// waiting for the body, then closes it, and its open files come back to
// where they were.
func TestUnauthenticatedSlowBodies(t *testing.T) {
	const conns = 1000
	addr := serveHTTP(t, serverConfig{Main: slottest.New(), Sensitive: slottest.New(), Timeouts: shortTimeouts})
	baseline := openFiles(t)

	type result struct {
		answer []byte
		err    error
	}
	results := make(chan result, conns)
	clients := make([]net.Conn, 0, conns)
	deadline := time.Now().Add(guard)
	for range conns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		clients = append(clients, c)
		_, err = fmt.Fprintf(c, "POST /v1/backup HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
		require.NoError(t, err)
		go func() {
			_ = c.SetReadDeadline(deadline)
			b, err := io.ReadAll(c)
			_ = c.Close()
			results <- result{b, err}
		}()
	}
	// The body trickles on, a byte per connection every half second, until
	// the agent has closed them all.
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range clients {
				_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = c.Write([]byte(" "))
			}
		}
	}()
	var unanswered, open int
	for range conns {
		r := <-results
		if !bytes.HasPrefix(r.answer, []byte("HTTP/1.1 401 ")) || !bytes.Contains(r.answer, []byte("\r\nConnection: close\r\n")) {
			unanswered++
		}
		if !closedByPeer(r.err) {
			open++
		}
	}
	close(stop)
	<-trickled
	assert.Zero(t, unanswered, "connections not answered 401 with Connection: close")
	assert.Zero(t, open, "connections the agent did not close within %s", guard)
	require.Eventually(t, func() bool { return openFiles(t) <= baseline }, guard, 10*time.Millisecond,
		"open files did not come back to %d", baseline)
}

// TestSlowAuthenticatedBody checks the read timeout: a client with the
// token whose body trickles in is answered 408 when the timeout expires,
// and the connection is closed.
func TestSlowAuthenticatedBody(t *testing.T) {
	addr := serveHTTP(t, serverConfig{Main: slottest.New(), Sensitive: slottest.New(), Timeouts: shortTimeouts})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST /v1/backup HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n{", testToken)
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(guard)))
	answer, err := io.ReadAll(c)
	assert.True(t, closedByPeer(err), "the agent did not close the connection: %v", err)
	resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
	require.NoError(t, rerr, "answer: %q", answer)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "request_timeout", errorOf(t, string(body)))
	assert.Contains(t, string(body), "-read-timeout")
}

// TestIdleConnectionClosed checks the idle timeout: a kept-alive
// connection on which nothing more is asked is closed.
func TestIdleConnectionClosed(t *testing.T) {
	addr := serveHTTP(t, serverConfig{Main: slottest.New(), Sensitive: slottest.New(), Timeouts: shortTimeouts})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "GET /v1/backup HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer %s\r\n\r\n", testToken)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(guard)))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.False(t, resp.Close, "the agent keeps a connection alive")
	rest, err := io.ReadAll(br)
	assert.True(t, closedByPeer(err), "the agent did not close the idle connection: %v", err)
	assert.Empty(t, rest)
}

// logRecorder is a slog.Handler that sends the path of each "request" log
// record, written once a request is done, on paths.
type logRecorder struct{ paths chan string }

func (l logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logRecorder) WithGroup(string) slog.Handler            { return l }
func (l logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "request" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "path" {
				l.paths <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

// TestStalledDownload checks the write timeout: a client with the token
// that asks for the backup and reads nothing frees the agent's handler
// once a write has stalled that long.
func TestStalledDownload(t *testing.T) {
	main := slottest.New()
	require.NoError(t, main.Start(context.Background(), []byte("pw")))
	main.Finish(bytes.Repeat([]byte("0123456789abcdef"), 4<<20)) // 64 MiB: more than the socket buffers hold
	log := logRecorder{paths: make(chan string, 10)}
	addr := serveHTTP(t, serverConfig{Main: main, Sensitive: slottest.New(), Timeouts: shortTimeouts, Logger: slog.New(log)})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "GET /v1/backup/file HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer %s\r\n\r\n", testToken)
	require.NoError(t, err)
	select {
	case path := <-log.paths:
		assert.Equal(t, "/v1/backup/file", path)
	case <-time.After(guard):
		t.Fatalf("the download's handler still runs after %s with a client that reads nothing", guard)
	}
}

// ctxBound is a Backupper whose stored backup reads only while the
// request's context lives, as a copy on S3 does.
type ctxBound struct{ *slottest.Fake }

func (b ctxBound) Open(ctx context.Context) (store.Object, error) {
	o, err := b.Fake.Open(ctx)
	if err != nil {
		return nil, err
	}
	return ctxObject{o, ctx}, nil
}

type ctxObject struct {
	store.Object
	ctx context.Context
}

func (o ctxObject) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.Object.Read(p)
}

// TestLongRequestsOutliveTimeouts checks that the timeouts, which bound
// reading a request and each write of an answer, do not cut a long poll
// (status ?wait) that outlasts both, or a download that outlasts the read
// timeout: a whole-request write deadline (http.Server.WriteTimeout) would
// cut the first, and a read deadline that cancelled the request's context
// the second.
func TestLongRequestsOutliveTimeouts(t *testing.T) {
	// past lets a timeout d expire. Time itself is what is under test
	// here, not an order of events between goroutines.
	past := func(d time.Duration) { <-time.After(3 * d) }

	t.Run("wait", func(t *testing.T) {
		tm := timeouts{Read: 300 * time.Millisecond, Write: 300 * time.Millisecond, Idle: time.Minute}
		main := slottest.New()
		addr := serveHTTP(t, serverConfig{Main: main, Sensitive: slottest.New(), Timeouts: tm})
		require.NoError(t, main.Start(context.Background(), []byte("pw")))
		type answer struct {
			status int
			body   string
			err    error
		}
		answered := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest("GET", "http://"+addr+"/v1/backup?wait=1", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answered <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			answered <- answer{resp.StatusCode, string(b), err}
		}()
		require.Eventually(t, func() bool { return len(main.Calls()) == 2 }, guard, time.Millisecond, "the request did not reach Wait")
		past(max(tm.Read, tm.Write))
		main.Finish([]byte("data"))
		a := <-answered
		require.NoError(t, a.err)
		assert.Equal(t, http.StatusOK, a.status, a.body)
		assert.Contains(t, a.body, `"state":"ready"`)
	})

	t.Run("download", func(t *testing.T) {
		tm := timeouts{Read: 300 * time.Millisecond, Write: time.Minute, Idle: time.Minute}
		fake := slottest.New()
		require.NoError(t, fake.Start(context.Background(), []byte("pw")))
		data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB: more than the socket buffers hold
		fake.Finish(data)
		addr := serveHTTP(t, serverConfig{Main: ctxBound{fake}, Sensitive: slottest.New(), Timeouts: tm})
		req, err := http.NewRequest("GET", "http://"+addr+"/v1/backup/file", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		past(tm.Read)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err, "the download broke off after %d bytes", len(got))
		assert.Equal(t, len(data), len(got))
	})
}
