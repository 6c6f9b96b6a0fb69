package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/slot"
)

// The HTTP API's configuration and routes. The handlers are in
// handlers.go (and export.go, pitr.go, schedule.go, drill.go, metrics.go),
// the middleware that every request goes through in middleware.go, and
// the mapping of errors to answers in errors.go.

// serverConfig is what the HTTP API serves.
type serverConfig struct {
	Token     string // every request must carry it as a bearer token
	Role      *slot.Role
	Main      slot.Backupper // under /v1/backup
	Sensitive slot.Backupper // under /v1/sensitive
	Logger    *slog.Logger
	Timeouts  timeouts
	// Export and Slicer, when set, serve /v1/pitr (pitr.go); Slicer is nil
	// without -pitr.
	Export *slot.ExportConfig
	Slicer *pitr.Slicer
	// Schedule, when set, serves /v1/schedule and /v1/drill (schedule.go,
	// drill.go).
	Schedule *scheduling
}

// timeouts bound how long a client may hold a connection; zero fields take
// defaultTimeouts' values.
type timeouts struct {
	// Read bounds reading a whole request, headers and body (which holds
	// at most maxBody bytes). Once the body is read, net/http lifts it: a
	// long poll or a download is not bound by it.
	Read time.Duration
	// Write bounds each write of an answer: a client that stops reading,
	// in the middle of a download say, is cut off once a write has stalled
	// this long. A download as a whole may take as long as it needs.
	Write time.Duration
	// Idle bounds how long a kept-alive connection waits for its next
	// request.
	Idle time.Duration
}

// defaultTimeouts are the agent's timeouts unless its flags say otherwise.
var defaultTimeouts = timeouts{Read: 30 * time.Second, Write: time.Minute, Idle: 2 * time.Minute}

// orDefaults returns t with its zero fields set to defaultTimeouts'.
func (t timeouts) orDefaults() timeouts {
	if t.Read <= 0 {
		t.Read = defaultTimeouts.Read
	}
	if t.Write <= 0 {
		t.Write = defaultTimeouts.Write
	}
	if t.Idle <= 0 {
		t.Idle = defaultTimeouts.Idle
	}
	return t
}

// unauthorizedGrace is how long, at most, the agent reads on after it has
// refused a request without a valid token, so that a client which sent a
// small body at once reads the answer rather than a reset; then it closes
// the connection, whatever of the body is still to come.
const unauthorizedGrace = time.Second

// maxBody bounds a request body: a password or a role fits in far less.
const maxBody = 64 << 10

// maxRanges is the most byte ranges a download may ask for: beyond, the
// whole file is sent (200), once. Without a cap, many small ranges come
// back as a multipart answer many times the file's size (10,000 one-byte
// ranges of a 41 KB file: 1.47 MB). keepslotctl asks for one at most.
const maxRanges = 16

// retrievedName is the file name a retrieve suggests, as the appliance's
// backup-retrieve writes it.
const retrievedName = "backup-retrieve.tar.gz.enc"

// newServer returns the agent's HTTP API:
//
//	POST   /v1/backup        {"password":"…"} -> 202 {"message":"Backup in progress."}
//	GET    /v1/backup        the appliance's status JSON plus "status"; ?wait=1 blocks until a running backup ends
//	GET    /v1/backup/file   the encrypted backup, with Range support (at most maxRanges ranges, 16:
//	                         beyond, the whole file); ETag and X-Content-MD5 carry its md5
//	DELETE /v1/backup        -> {"message":"Backup deleted."}
//	POST   /v1/backup/cancel cancels the running backup (or export) and waits until it has cleaned up:
//	                         -> {"message":"Backup cancelled."}, or that there was nothing to cancel
//	…                        the same five under /v1/sensitive
//	POST   /v1/backup/export, GET /v1/backup/remote[/{name}]: copies on S3 (export.go)
//	GET    /v1/pitr…         point-in-time recovery: windows, gaps, slices, flush (pitr.go)
//	GET    /metrics          Prometheus metrics: the last backup, export and PITR lag (metrics.go)
//	GET    /v1/schedule      the scheduled runs: next, running, last, per step (schedule.go)
//	POST   /v1/drill, GET /v1/drill: restore drills of the main backup (drill.go)
//	GET    /v1/role          -> {"backup":true|false}
//	POST   /v1/role          {"backup":true|false}, the appliance's set-as-backup
//
// Every request needs "Authorization: Bearer <token>": one without is
// answered 401 at once, without reading its body, and its connection is
// closed. Errors are {"error":"<code>","message":"<what happened and what
// to do>"}; a message quotes at most 64 bytes of what the client sent (a
// name, a path), and is at most 1 KiB long (writeError). cfg.Timeouts bound reading a request and each write of an
// answer.
func newServer(cfg serverConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tm := cfg.Timeouts.orDefaults()
	mux := http.NewServeMux()
	for prefix, b := range map[string]slot.Backupper{"/v1/backup": cfg.Main, "/v1/sensitive": cfg.Sensitive} {
		h := slotHandler{b}
		mux.HandleFunc("POST "+prefix, h.start)
		mux.HandleFunc("GET "+prefix, h.status)
		mux.HandleFunc("GET "+prefix+"/file", h.file)
		mux.HandleFunc("DELETE "+prefix, h.delete)
		mux.HandleFunc("POST "+prefix+"/cancel", h.cancel)
	}
	registerExport(mux, cfg.Main)
	registerPITR(mux, cfg.Export, cfg.Slicer)
	sc := cfg.Schedule
	if sc == nil {
		sc = &scheduling{}
	}
	registerSchedule(mux, sc.sched)
	registerDrill(mux, sc.drills)
	mux.Handle("GET /metrics", metricsHandler(&metrics{b: cfg.Main, slicer: cfg.Slicer, now: time.Now},
		scheduleMetrics{sc.sched, sc.drills, sc.notify}))
	rh := roleHandler{role: cfg.Role, log: cfg.Logger}
	mux.HandleFunc("GET /v1/role", rh.get)
	mux.HandleFunc("POST /v1/role", rh.set)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no endpoint %s %s; see the agent's documentation", echo(r.Method), echo(r.URL.Path)))
	})
	return logRequests(cfg.Logger, stallWrites(tm.Write, requireToken(cfg.Token, min(unauthorizedGrace, tm.Read), mux)))
}

// maxHeaderTimeout bounds reading a request's headers.
const maxHeaderTimeout = 10 * time.Second

// newHTTPServer returns the agent's HTTP server for cfg, with its timeouts
// (see timeouts): every connection is closed in bounded time unless an
// authenticated client keeps asking, or keeps reading a long answer.
func newHTTPServer(cfg serverConfig) *http.Server {
	cfg.Timeouts = cfg.Timeouts.orDefaults()
	return &http.Server{
		Handler:           newServer(cfg),
		ReadHeaderTimeout: min(maxHeaderTimeout, cfg.Timeouts.Read),
		ReadTimeout:       cfg.Timeouts.Read,
		IdleTimeout:       cfg.Timeouts.Idle,
	}
}
