package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/slot"
)

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

// capRanges drops r's Range header if it asks for more than maxRanges
// ranges, so that http.ServeContent sends the whole file.
func capRanges(r *http.Request) {
	spec, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		return
	}
	n := 0
	for rg := range strings.SplitSeq(spec, ",") {
		if strings.TrimSpace(rg) != "" {
			n++
		}
	}
	if n > maxRanges {
		r.Header.Del("Range")
	}
}

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

// slotHandler serves one Backupper's verbs.
type slotHandler struct{ b slot.Backupper }

type message struct {
	Message string `json:"message"`
}

// statusResponse is the appliance's status JSON with the full status
// beside it.
type statusResponse struct {
	slot.Appliance
	Status slot.Status `json:"status"`
}

func (h slotHandler) start(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if err := h.b.Start(r.Context(), []byte(req.Password)); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, message{"Backup in progress."})
}

func (h slotHandler) status(w http.ResponseWriter, r *http.Request) {
	var (
		st  slot.Status
		err error
	)
	if r.URL.Query().Has("wait") {
		st, err = h.b.Wait(r.Context())
	} else {
		st, err = h.b.Status(r.Context())
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, statusResponse{Appliance: st.Appliance(), Status: st})
}

// file serves the stored backup as stored (encrypted). http.ServeContent
// answers Range and If-Range requests, so an interrupted download resumes;
// the md5 is the ETag, so a resume against a different backup restarts.
func (h slotHandler) file(w http.ResponseWriter, r *http.Request) {
	obj, err := h.b.Open(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	defer obj.Close()
	info := obj.Info()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+retrievedName+`"`)
	w.Header().Set("ETag", `"`+info.MD5+`"`)
	w.Header().Set("X-Content-MD5", info.MD5)
	w.Header().Set("X-Backup-Name", info.Name)
	capRanges(r)
	http.ServeContent(w, r, "", info.Created, obj)
}

func (h slotHandler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.b.Delete(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, message{"Backup deleted."})
}

// cancel stops the running backup, or export, and waits until it has
// cleaned up; the message says what it stopped, if anything.
func (h slotHandler) cancel(w http.ResponseWriter, r *http.Request) {
	before, err := h.b.Status(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := h.b.Cancel(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	after, err := h.b.Status(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, message{cancelMessage(before, after)})
}

// cancelMessage says what a cancel did, from the statuses before and after.
func cancelMessage(before, after slot.Status) string {
	exporting := func(st slot.Status) bool { return st.Export != nil && st.Export.State == slot.ExportInProgress }
	switch {
	case before.State == slot.StateInProgress && after.State == slot.StateFailed && after.Code == errcode.Cancelled:
		return "Backup cancelled."
	case before.State == slot.StateInProgress:
		return "The backup ended before it could be cancelled: " + after.Message()
	case exporting(before) && after.Export != nil && after.Export.Code == errcode.Cancelled:
		return "Export cancelled."
	case exporting(before):
		return "The export ended before it could be cancelled."
	default:
		return "No backup or export in progress; nothing to cancel."
	}
}

type roleHandler struct {
	role *slot.Role
	log  *slog.Logger
}

type roleBody struct {
	Backup *bool `json:"backup"`
}

type roleResponse struct {
	Backup  bool   `json:"backup"`
	Message string `json:"message"`
}

func (h roleHandler) get(w http.ResponseWriter, r *http.Request) {
	ok, err := h.role.IsBackup()
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, roleResponse{Backup: ok, Message: roleMessage(ok)})
}

func (h roleHandler) set(w http.ResponseWriter, r *http.Request) {
	var req roleBody
	if !readJSON(w, r, &req) {
		return
	}
	if req.Backup == nil {
		writeError(w, http.StatusBadRequest, "bad_request", `the body must be {"backup":true} or {"backup":false}`)
		return
	}
	set := h.role.Unset
	if *req.Backup {
		set = h.role.Set
	}
	if err := set(); err != nil {
		writeErr(w, err)
		return
	}
	h.log.Info("backup role changed", "backup", *req.Backup)
	writeJSON(w, http.StatusOK, roleResponse{Backup: *req.Backup, Message: roleMessage(*req.Backup)})
}

func roleMessage(ok bool) string {
	if ok {
		return "This node is in the backup role."
	}
	return "This node is not in the backup role."
}

// writeErr answers with err's status and code, as errcode.Of classifies
// it. keepslot's errors say what happened and what to do, and never hold a
// password.
func writeErr(w http.ResponseWriter, err error) {
	code := errcode.Of(err)
	msg := err.Error()
	if code == errcode.EmptyPassword {
		msg = `a backup needs a password: send {"password":"…"} in the request body`
	}
	writeError(w, httpStatus(code), string(code), msg)
}

// httpStatus is the HTTP status the agent answers with for an error code:
// 400 for a request that cannot succeed as sent, 404 for no backup, 409 for
// httpStatus is the HTTP status the agent answers with for an error code:
// 400 for a request that cannot succeed as sent, 404 for no backup, 409 for
// a slot in the wrong state, a node that is not one keepslot backs up (a
// mongos or a sharded cluster's member), or a source that changed while it
// was read, 422 for a backup that does not open or a drill that failed, 502
// and 503 for a database that refuses or does not answer, 507 for too little
// space (on the slot's disk, or in the server's oplog).
func httpStatus(c errcode.Code) int {
	switch c {
	case errcode.OK:
		return http.StatusOK
	case errcode.EmptyPassword, errcode.Invalid:
		return http.StatusBadRequest
	case errcode.NoBackup:
		return http.StatusNotFound
	case errcode.NotBackupNode, errcode.InProgress, errcode.SlotOccupied, errcode.Exists, errcode.DuplicateKey,
		errcode.SourceChanged, errcode.Sharded:
		return http.StatusConflict
	case errcode.WrongPassword, errcode.Corrupt, errcode.CountMismatch, errcode.DrillFailed:
		return http.StatusUnprocessableEntity
	case errcode.Unauthorized:
		return http.StatusBadGateway
	case errcode.Unreachable, errcode.Cancelled, errcode.Interrupted:
		return http.StatusServiceUnavailable
	case errcode.InsufficientSpace, errcode.OplogRollover:
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers with an error body. Every error answer goes through
// it, and the message it sends is capped (capMessage): an error that quotes
// what a client sent, a name in the path say, does not send it all back.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: capMessage(msg)})
}

// Caps on what an error answer echoes.
const (
	// maxEcho is the most bytes of a client's input, a name or a path,
	// that a message quotes (echo).
	maxEcho = 64
	// maxMessage is the most bytes of a message: a longer one keeps its
	// first maxMessage/2 bytes and its last maxMessage/4, which say what
	// happened and what to do, and says how much it leaves out.
	maxMessage = 1 << 10
)

// echo quotes s, a client's input, for a message: at most maxEcho bytes of
// it, then how long it is.
func echo(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(runeCut(s, maxEcho)), len(s))
}

// capMessage returns msg, or, if it is longer than maxMessage bytes, its
// head and tail with the number of bytes left out between.
func capMessage(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	head := runeCut(msg, maxMessage/2)
	tail := msg[len(msg)-maxMessage/4:]
	for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	return fmt.Sprintf("%s [... %d bytes left out ...] %s", head, len(msg)-len(head)-len(tail), tail)
}

// runeCut returns s's first n bytes, fewer if the n-th is inside a rune.
func runeCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes a small JSON body into v, or answers 400 (408 if it
// did not arrive within the read timeout, 413 if it is too large) and
// returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			writeError(w, http.StatusRequestTimeout, "request_timeout",
				"the request body did not arrive within the agent's read timeout; send it at once, or raise keepslotd's -read-timeout")
			return false
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request",
				fmt.Sprintf("the request body is larger than %d KiB; it holds only a small JSON object, such as {\"password\":\"…\"}", maxBody>>10))
			return false
		}
		// The decoder's error may quote the body, which may hold a
		// password: say only what is wrong with its shape.
		writeError(w, http.StatusBadRequest, "bad_request", "the request body must be a JSON object, such as {\"password\":\"…\"}")
		return false
	}
	return true
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
