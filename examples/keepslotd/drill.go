package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/examples/embedded"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// Restore drills. A drill restores the main backup in the slot into a
// scratch target, never the node it protects, and proves that it restored
// what it holds (see the SDK's drill package for what a pass proves). The
// agent drills each scheduled run's backup, and one more whenever asked
// (POST /v1/drill). It keeps the last report, and the last successful
// one, in DATA/state/drill.json, so that GET /v1/drill and the metrics
// survive a restart.

// driller restores a backup into a scratch target and proves it.
type driller interface {
	// Drill restores backup, opened with password, and checks what it
	// restored. The result's Report is served as is; it is set, when the
	// drill got far enough to have one, whether or not err is nil.
	Drill(ctx context.Context, backup store.Object, password []byte) (drillResult, error)
}

// drillResult is what a driller measured.
type drillResult struct {
	Restore time.Duration // the restore's duration: the time to restore
	Bytes   int64         // bytes of documents restored
	Report  any           // the drill's own report, as JSON
}

// drillReport is a drill as the agent records and serves it.
type drillReport struct {
	Backup         string          `json:"backup"`
	Started        time.Time       `json:"started"`
	Finished       time.Time       `json:"finished"`
	Passed         bool            `json:"passed"`
	RestoreSeconds float64         `json:"restore_seconds"` // the time to restore
	Bytes          int64           `json:"bytes"`
	Error          string          `json:"error,omitempty"`
	Code           errcode.Code    `json:"code,omitempty"`
	Report         json.RawMessage `json:"report,omitempty"`
}

// drillState is GET /v1/drill's answer and what DATA/state/drill.json
// holds.
type drillState struct {
	Running     bool         `json:"running"`
	Last        *drillReport `json:"last,omitempty"`
	LastSuccess *drillReport `json:"last_success,omitempty"`
	Failures    int64        `json:"failures"` // failed drills recorded in this data directory
}

// errDrillPassword: a drill asked for through the API needs the password.
var errDrillPassword = errcode.New(errcode.EmptyPassword, "a drill needs the backup's password")

// drillRunner runs drills, one at a time (gate, shared with the
// scheduler), and keeps their reports.
type drillRunner struct {
	d         driller
	b         slot.Backupper
	gate      *gate
	stateFile string
	notify    *notifier
	password  func() ([]byte, error) // the schedule's password, or nil
	now       func() time.Time
	log       *slog.Logger
	ctx       context.Context // the agent's: a drill started through the API outlives its request

	mu      sync.Mutex
	state   drillState
	running chan struct{} // closed when the running drill ends; nil when none runs
}

// load reads the recorded reports, if any.
func (d *drillRunner) load() error {
	b, err := os.ReadFile(d.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the drills' state: %w", err)
	}
	var st drillState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("read the drills' state %s: %w; delete the file to reset it", d.stateFile, err)
	}
	st.Running = false
	d.state = st
	return nil
}

// Status returns the drills' state.
func (d *drillRunner) Status() drillState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// start starts a drill of the slot's backup in the background; password
// may be empty when the schedule has one.
func (d *drillRunner) start(password []byte) error {
	if len(password) == 0 {
		if d.password == nil {
			return fmt.Errorf(`%w: give it (keepslotctl drill --password-file FILE, or {"password":"…"} in the request), or start keepslotd with -schedule-password-file`, errDrillPassword)
		}
		pw, err := d.password()
		if err != nil {
			return err
		}
		password = pw
	} else {
		password = append([]byte(nil), password...)
	}
	release, err := d.gate.enter()
	if err != nil {
		clear(password)
		return err
	}
	d.mu.Lock()
	d.running = make(chan struct{})
	d.state.Running = true
	d.mu.Unlock()
	go func() {
		_, _ = d.runLocked(d.ctx, password, release)
		clear(password)
	}()
	return nil
}

// wait blocks until the running drill, if any, has ended.
func (d *drillRunner) wait(ctx context.Context) error {
	d.mu.Lock()
	ch := d.running
	d.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runLocked drills the slot's backup; the caller has passed the gate, and
// release, if not nil, lets it go before the drill's waiters wake.
func (d *drillRunner) runLocked(ctx context.Context, password []byte, release func()) (drillReport, error) {
	d.mu.Lock()
	if d.running == nil {
		d.running = make(chan struct{})
	}
	d.state.Running = true
	d.mu.Unlock()
	rep, err := d.drill(ctx, password)
	d.mu.Lock()
	d.state.Running = false
	d.state.Last = &rep
	if err == nil {
		d.state.LastSuccess = &rep
	} else {
		d.state.Failures++
	}
	st := d.state
	done := d.running
	d.running = nil
	d.mu.Unlock()
	if release != nil {
		release()
	}
	defer close(done)
	if b, mErr := json.MarshalIndent(st, "", "  "); mErr == nil {
		if wErr := writeAtomic(d.stateFile, b); wErr != nil {
			d.log.Error("drill: save the report", "error", wErr)
		}
	}
	if err != nil {
		d.log.Error("drill failed", "backup", rep.Backup, "error", rep.Error, "code", rep.Code)
		d.notify.send(event{Event: "drill_failed", Time: rep.Finished, Step: stepDrill, Backup: rep.Backup, Code: rep.Code, Message: rep.Error})
	} else {
		d.log.Info("drill passed", "backup", rep.Backup, "restore_seconds", rep.RestoreSeconds, "bytes", rep.Bytes)
	}
	return rep, err
}

func (d *drillRunner) drill(ctx context.Context, password []byte) (rep drillReport, err error) {
	rep.Started = d.now().UTC()
	defer func() {
		rep.Finished = d.now().UTC()
		if err != nil {
			// A driver's error may quote -drill-uri: not its password.
			rep.Error, rep.Code = maskURLCredentials(err.Error()), errcode.Of(err)
		}
	}()
	obj, err := d.b.Open(ctx)
	if err != nil {
		return rep, fmt.Errorf("open the backup to drill: %w", err)
	}
	defer obj.Close()
	rep.Backup = obj.Info().Name
	res, err := d.d.Drill(ctx, obj, password)
	rep.RestoreSeconds, rep.Bytes = res.Restore.Seconds(), res.Bytes
	if res.Report != nil {
		if b, mErr := json.Marshal(res.Report); mErr == nil {
			rep.Report = b
		}
	}
	if err != nil {
		return rep, err
	}
	rep.Passed = true
	return rep, nil
}

// registerDrill serves the drill:
//
//	POST /v1/drill   {"password":"…"} (optional with -schedule-password-file) -> 202 {"message":"Drill in progress."};
//	                 409 in_progress while a scheduled run or a drill runs
//	GET  /v1/drill   -> {"running":…,"last":{…},"last_success":{…},"failures":N}; ?wait=1 blocks until a running drill ends
func registerDrill(mux *http.ServeMux, d *drillRunner) {
	notOn := func(w http.ResponseWriter) bool {
		if d == nil {
			writeErr(w, fmt.Errorf("%w: this agent runs no drills", errSchedule))
			return true
		}
		return false
	}
	mux.HandleFunc("POST /v1/drill", func(w http.ResponseWriter, r *http.Request) {
		if notOn(w) {
			return
		}
		var req struct {
			Password string `json:"password"`
		}
		if r.ContentLength != 0 && !readJSON(w, r, &req) {
			return
		}
		if err := d.start([]byte(req.Password)); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, message{"Drill in progress."})
	})
	mux.HandleFunc("GET /v1/drill", func(w http.ResponseWriter, r *http.Request) {
		if notOn(w) {
			return
		}
		if r.URL.Query().Has("wait") {
			if err := d.wait(r.Context()); err != nil {
				writeErr(w, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, d.Status())
	})
}

// newDriller returns the agent's driller: drills restore into drillURI, or
// into an embedded server started in a new directory under dir for each
// drill and removed after it. protected is the URI of the node backed up,
// which a drill never writes to.
func newDriller(drillURI, protected, dir string, log *slog.Logger) (driller, error) {
	if drillURI != "" && drillURI == protected {
		return nil, fmt.Errorf("%w: -drill-uri names the node backed up; a drill restores into a scratch server only", errSchedule)
	}
	if drillURI == "" {
		// What a drill killed with the agent left behind.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("remove the drills' directory %s: %w", dir, err)
		}
	}
	return scratchDriller{uri: drillURI, dir: dir, log: log}, nil
}

// scratchDriller drills with package drill into a scratch server.
type scratchDriller struct {
	uri string // the scratch server; "" for an embedded one in dir
	dir string
	log *slog.Logger
}

// drillExpansion is how many times its encrypted, compressed file a
// backup's data is taken to be, for the 2x rule of an embedded drill
// server's directory: the data is not known before it is decrypted, and
// BSON compresses about four times with gzip.
const drillExpansion = 4

// Drill implements driller.
func (s scratchDriller) Drill(ctx context.Context, backup store.Object, password []byte) (drillResult, error) {
	uri := s.uri
	size := backup.Info().Size
	if uri == "" {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return drillResult{}, fmt.Errorf("create the drills' directory: %w", err)
		}
		if err := checkDrillSpace(ctx, s.dir, size); err != nil {
			return drillResult{}, err
		}
		tmp, err := os.MkdirTemp(s.dir, "server-")
		if err != nil {
			return drillResult{}, fmt.Errorf("create the scratch server's directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		db, err := embedded.Start(ctx, embedded.Options{Dir: tmp})
		if err != nil {
			return drillResult{}, fmt.Errorf("start the embedded scratch server: %w", err)
		}
		defer db.Close()
		uri = db.URI()
	}
	rep, err := drill.Run(ctx, backup, size, password, &drill.Options{Conn: conn.Config{URI: uri}, Logger: s.log, TempDir: s.dir})
	if rep == nil {
		return drillResult{}, err
	}
	return drillResult{Restore: rep.RestoreTime, Bytes: rep.Bytes, Report: rep}, err
}

// checkDrillSpace applies the 2x rule to an embedded drill server's
// directory: twice the backup's data (estimated, drillExpansion) must be
// free there.
func checkDrillSpace(ctx context.Context, dir string, fileSize int64) error {
	st, err := store.Dir(dir)
	if err != nil {
		return fmt.Errorf("the drills' directory %s: %w", dir, err)
	}
	free, err := st.FreeSpace(ctx)
	if err != nil {
		return fmt.Errorf("the free space in the drills' directory %s: %w", dir, err)
	}
	data := fileSize * drillExpansion
	if free < 2*data {
		return fmt.Errorf("the scratch server's directory %s: %w", dir, &slot.SpaceError{Data: data, Need: 2 * data, Free: free})
	}
	return nil
}
