package main

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// The middleware every request goes through, outermost first: logRequests,
// stallWrites, requireToken (see newServer).

// requireToken refuses a request without the bearer token, comparing in
// constant time. The refusal does not wait for the request's body: it
// asks for the connection to be closed, and grace bounds how long the
// server reads on before closing it.
func requireToken(token string, grace time.Duration, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keepslotd"`)
			msg := "a valid bearer token is required; find it in the agent's data directory (file token)"
			if ok {
				msg = "the bearer token is wrong; copy it from the agent's data directory (file token)"
			}
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusUnauthorized, "unauthorized", msg)
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(grace))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// stallWrites gives each write of an answer d to complete: a client that
// stops reading is cut off once a write has stalled that long, while an
// answer that keeps moving (a download) may take as long as it needs. The
// deadline is also set as the request comes in, so that one left from an
// earlier answer on the connection does not cut what the server writes
// by itself (a "100 Continue").
func stallWrites(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(d))
		next.ServeHTTP(&stallWriter{ResponseWriter: w, rc: rc, d: d}, r)
	})
}

// stallWriter sets the connection's write deadline d ahead before each
// write; the last one also covers the flush once the handler returns.
type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

// WriteHeader sets the write deadline, then writes the header.
func (s *stallWriter) WriteHeader(code int) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.d))
	s.ResponseWriter.WriteHeader(code)
}

// Write sets the write deadline, then writes b.
func (s *stallWriter) Write(b []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.d))
	return s.ResponseWriter.Write(b)
}

// Unwrap returns the ResponseWriter wrapped, for http.ResponseController.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs each request's method, path, status and duration;
// never its body or headers, which carry the password and the token.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
