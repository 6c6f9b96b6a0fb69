package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/examples/internal/secretfile"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// Scheduled backups. With -schedule, the agent runs, at each time the cron
// expression names, the steps below in order, one run at a time, and
// waits for the next time:
//
//	replace    make room in the single slot: a backup already there is
//	           deleted only once its copy on the bucket is confirmed (the
//	           remote copy's size, MD5 and SHA-256 equal the slot's; it is
//	           exported again first if not); without an export, only with
//	           -schedule-replace-unexported
//	backup     a new backup, with the password from -schedule-password-file
//	export     the slot's export of it, confirmed as above
//	drill      a restore drill of it (drill.go)
//	retention  the export's retention rule (-export-keep-…), run here
//	           rather than after each export, so that no older copy is
//	           pruned before the new one has passed its drill
//
// A failed step ends the run: what the slot and the bucket hold stays as
// it was, the run is reported (GET /v1/schedule, metrics, log, -notify-url)
// and the next run happens at its time. The run's step is written to
// DATA/state/schedule.json, atomically, before the step starts, so that an
// agent killed in the middle says after its restart where the run stopped
// (outcome "interrupted"); the next run then goes on from what the slot
// holds: an unexported backup is exported before it is replaced.

// The steps of a scheduled run, in order.
const (
	stepReplace   = "replace"
	stepBackup    = "backup"
	stepExport    = "export"
	stepDrill     = "drill"
	stepRetention = "retention"
)

var runSteps = []string{stepReplace, stepBackup, stepExport, stepDrill, stepRetention}

// The outcomes of a step or a run.
const (
	outcomeRunning     = "running"
	outcomeOK          = "ok"
	outcomeFailed      = "failed"
	outcomeSkipped     = "skipped"
	outcomeInterrupted = "interrupted"
)

// errSchedule: the schedule's settings cannot work; the message says why.
var errSchedule = errcode.New(errcode.Invalid, "unusable schedule settings")

// errNotConfirmed: the backup in the slot has no confirmed copy on the
// bucket, so a scheduled run may not replace it.
var errNotConfirmed = errcode.New(errcode.SlotOccupied, "the backup in the slot has no confirmed copy on the bucket")

// errRunInProgress: a scheduled run or a drill is running.
var errRunInProgress = errcode.Sub(slot.ErrInProgress, "a scheduled run or a drill is in progress")

// scheduleFlags configure scheduled backups.
type scheduleFlags struct {
	spec              string
	passwordFile      string
	replaceUnexported bool
}

func (f *scheduleFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.spec, "schedule", "", `run backup, export, drill and retention at these times: a cron expression ("30 2 * * *", "@daily", "@every 6h"; "CRON_TZ=Europe/Paris 30 2 * * *"), in the agent's local time zone unless CRON_TZ says`)
	fs.StringVar(&f.passwordFile, "schedule-password-file", "", "a 0600 file whose first line is the scheduled backups' password (needed with -schedule)")
	fs.BoolVar(&f.replaceUnexported, "schedule-replace-unexported", false, "without -export-bucket, let a scheduled run delete the previous local backup before it makes the next one: a failed run then leaves no backup at all")
}

// parseSchedule parses a -schedule expression.
func parseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: -schedule %q: %w; give a cron expression of five fields (minute hour day-of-month month day-of-week) or @daily, @hourly, @every 6h", errSchedule, spec, err)
	}
	return s, nil
}

// check refuses settings that cannot work, before the agent serves.
func (f scheduleFlags) check(exporting bool) (cron.Schedule, error) {
	if f.spec == "" {
		if f.passwordFile != "" || f.replaceUnexported {
			return nil, fmt.Errorf("%w: -schedule-password-file and -schedule-replace-unexported need -schedule", errSchedule)
		}
		return nil, nil
	}
	s, err := parseSchedule(f.spec)
	if err != nil {
		return nil, err
	}
	if f.passwordFile == "" {
		return nil, fmt.Errorf("%w: -schedule needs -schedule-password-file, a 0600 file holding the backups' password: no one types it at 2 a.m.", errSchedule)
	}
	if _, err := readPasswordFile(f.passwordFile); err != nil {
		return nil, err
	}
	if !exporting && !f.replaceUnexported {
		return nil, fmt.Errorf("%w: the slot holds one backup, so each scheduled run deletes the previous one before it makes the next; "+
			"with -export-bucket the previous one is deleted only once its copy on the bucket is confirmed; without, a failed run would leave no backup at all: "+
			"add -export-bucket, or -schedule-replace-unexported to accept that", errSchedule)
	}
	return s, nil
}

// readPasswordFile reads the first line of a 0600 password file.
func readPasswordFile(file string) ([]byte, error) {
	b, err := secretfile.Read(file)
	if err != nil {
		return nil, fmt.Errorf("%w: -schedule-password-file: %w", errSchedule, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	clear(b)
	pw := []byte(strings.TrimSuffix(line, "\r"))
	if len(pw) == 0 {
		return nil, fmt.Errorf("%w: the first line of %s is empty; write the backups' password there", errSchedule, file)
	}
	return pw, nil
}

// clock is the scheduler's time: the real one, or a test's.
type clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// scheduledSlot is what a scheduled run drives: the main backup and its
// export.
type scheduledSlot interface {
	slot.Backupper
	slot.Exporter
}

// stepRecord is how one step of a run went.
type stepRecord struct {
	Step     string       `json:"step"`
	Outcome  string       `json:"outcome"`
	Started  time.Time    `json:"started,omitzero"`
	Finished time.Time    `json:"finished,omitzero"`
	Detail   string       `json:"detail,omitempty"`
	Error    string       `json:"error,omitempty"`
	Code     errcode.Code `json:"code,omitempty"`
}

// runRecord is a scheduled run: its steps as far as it got.
type runRecord struct {
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished,omitzero"`
	Outcome  string       `json:"outcome"`
	Step     string       `json:"step"` // the step running, or the one the run ended at
	Backup   string       `json:"backup,omitempty"`
	Steps    []stepRecord `json:"steps"`
	Error    string       `json:"error,omitempty"`
	Code     errcode.Code `json:"code,omitempty"`
}

// scheduleState is GET /v1/schedule's answer and what
// DATA/state/schedule.json holds.
type scheduleState struct {
	Schedule    string     `json:"schedule"`
	Next        time.Time  `json:"next,omitzero"`
	Running     *runRecord `json:"running,omitempty"`
	Last        *runRecord `json:"last,omitempty"`
	LastSuccess time.Time  `json:"last_success,omitzero"`
	Failures    int64      `json:"failures"` // failed runs recorded in this data directory
}

// gate lets one scheduled run or drill through at a time.
type gate struct{ mu sync.Mutex }

func (g *gate) enter() (release func(), err error) {
	if !g.mu.TryLock() {
		return nil, fmt.Errorf("%w; wait for it to end (GET /v1/schedule, GET /v1/drill)", errRunInProgress)
	}
	return g.mu.Unlock, nil
}

// scheduler runs the scheduled backups.
type scheduler struct {
	spec      cron.Schedule
	specText  string
	slot      scheduledSlot
	exporting bool
	exportCfg *slot.ExportConfig // its Retention is the retention step's
	password  func() ([]byte, error)
	drill     *drillRunner // nil: the drill step is skipped
	gate      *gate
	clock     clock
	stateFile string
	notify    *notifier // nil without -notify-url
	log       *slog.Logger
	// hold, if set, is called once each step's start is saved: a test
	// stops the agent there (schedule_hold.go).
	hold func(ctx context.Context, step string)

	mu    sync.Mutex
	state scheduleState
}

// loadState reads the schedule's state file; a run it shows running was
// interrupted by the agent's end: it becomes the last run, so reported.
func (s *scheduler) loadState() error {
	b, err := os.ReadFile(s.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		s.state = scheduleState{Schedule: s.specText}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the schedule's state: %w", err)
	}
	var st scheduleState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("read the schedule's state %s: %w; delete the file to reset it", s.stateFile, err)
	}
	st.Schedule = s.specText
	if r := st.Running; r != nil {
		st.Running = nil
		r.Outcome, r.Code = outcomeInterrupted, errcode.Interrupted
		r.Error = fmt.Sprintf("interrupted: the agent stopped during the run's %s step; the next run goes on from what the slot holds", r.Step)
		for i := range r.Steps {
			if r.Steps[i].Outcome == outcomeRunning {
				r.Steps[i].Outcome, r.Steps[i].Code, r.Steps[i].Error = outcomeInterrupted, errcode.Interrupted, "interrupted: the agent stopped"
			}
		}
		st.Last = r
		st.Failures++
		s.state = st
		if err := s.save(); err != nil {
			return err
		}
		s.log.Error("schedule: the last run was interrupted by the agent's end", "step", r.Step, "started", r.Started)
		s.notify.send(runEvent(r, "run_failed"))
		return nil
	}
	s.state = st
	return nil
}

// save writes the state, atomically; the caller holds s.mu or owns s.
func (s *scheduler) save() error {
	b, err := json.MarshalIndent(s.state, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.stateFile, b); err != nil {
		return fmt.Errorf("save the schedule's state: %w", err)
	}
	return nil
}

// Status returns the schedule's state.
func (s *scheduler) Status() scheduleState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if st.Running != nil {
		r := *st.Running
		r.Steps = append([]stepRecord(nil), r.Steps...)
		st.Running = &r
	}
	return st
}

// Run runs the schedule until ctx is done.
func (s *scheduler) Run(ctx context.Context) {
	for {
		now := s.clock.Now()
		next := s.spec.Next(now)
		s.mu.Lock()
		s.state.Next = next
		s.mu.Unlock()
		s.log.Info("schedule: next run", "at", next)
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(next.Sub(now)):
		}
		s.runOnce(ctx)
	}
}

// runOnce runs the steps once; a run already going (a drill asked for
// through the API) makes this one skip, with a log line.
func (s *scheduler) runOnce(ctx context.Context) {
	release, err := s.gate.enter()
	if err != nil {
		s.log.Warn("schedule: run skipped: a drill asked for through the API is running")
		return
	}
	defer release()
	r := &runRecord{Started: s.clock.Now().UTC(), Outcome: outcomeRunning}
	for _, step := range runSteps {
		r.Steps = append(r.Steps, stepRecord{Step: step})
	}
	s.mu.Lock()
	s.state.Running = r
	s.mu.Unlock()
	err = s.steps(ctx, r)
	s.finish(r, err)
}

// begin records step i as running and saves it before it starts.
func (s *scheduler) begin(ctx context.Context, r *runRecord, i int) error {
	s.mu.Lock()
	r.Step = runSteps[i]
	r.Steps[i].Outcome, r.Steps[i].Started = outcomeRunning, s.clock.Now().UTC()
	err := s.save()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if s.hold != nil {
		s.hold(ctx, runSteps[i])
	}
	return ctx.Err()
}

// end records how step i ended.
func (s *scheduler) end(r *runRecord, i int, outcome, detail string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &r.Steps[i]
	st.Outcome, st.Detail, st.Finished = outcome, detail, s.clock.Now().UTC()
	if err != nil {
		st.Outcome, st.Error, st.Code = outcomeFailed, maskURLCredentials(err.Error()), errcode.Of(err)
	}
}

// steps runs the run's steps in order, up to the first that fails.
func (s *scheduler) steps(ctx context.Context, r *runRecord) error {
	type stepFunc func(ctx context.Context, r *runRecord) (outcome, detail string, err error)
	for i, f := range []stepFunc{s.replace, s.backup, s.export, s.drillStep, s.retention} {
		if err := s.begin(ctx, r, i); err != nil {
			s.end(r, i, "", "", err)
			return err
		}
		outcome, detail, err := f(ctx, r)
		s.end(r, i, outcome, detail, err)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish records the run's end, saves it, logs and notifies.
func (s *scheduler) finish(r *runRecord, err error) {
	s.mu.Lock()
	r.Finished = s.clock.Now().UTC()
	prevFailed := s.state.Last != nil && s.state.Last.Outcome != outcomeOK
	if err != nil {
		r.Outcome, r.Error, r.Code = outcomeFailed, maskURLCredentials(err.Error()), errcode.Of(err)
		s.state.Failures++
	} else {
		r.Outcome = outcomeOK
		s.state.LastSuccess = r.Finished
	}
	s.state.Running, s.state.Last = nil, r
	saveErr := s.save()
	s.mu.Unlock()
	if saveErr != nil {
		s.log.Error("schedule: save the run's outcome", "error", saveErr)
	}
	switch {
	case err != nil:
		s.log.Error("schedule: run failed; the slot and the bucket keep what they held", "step", r.Step, "error", r.Error, "code", r.Code)
		s.notify.send(runEvent(r, "run_failed"))
	case prevFailed:
		s.log.Info("schedule: run succeeded, after a failed one", "backup", r.Backup)
		s.notify.send(runEvent(r, "recovered"))
	default:
		s.log.Info("schedule: run succeeded", "backup", r.Backup)
	}
}

// replace empties the slot for the run's backup: a backup there goes only
// once its copy on the bucket is confirmed (exported again if need be),
// or, without an export, as -schedule-replace-unexported allows.
func (s *scheduler) replace(ctx context.Context, _ *runRecord) (string, string, error) {
	st, err := s.slot.Status(ctx)
	if err != nil {
		return "", "", err
	}
	switch st.State {
	case slot.StateInProgress:
		return "", "", fmt.Errorf("%w: a backup started by hand is running; the run waits for the next time", slot.ErrInProgress)
	case slot.StateNone, slot.StateFailed:
		return outcomeOK, "the slot is empty", nil
	}
	detail := "deleted " + st.Name + " (no export: -schedule-replace-unexported)"
	if s.exporting {
		if _, err := s.confirm(ctx, st); err != nil {
			if err := s.exportNow(ctx); err != nil {
				return "", "", fmt.Errorf("%w: %s stays in the slot: exporting it again failed: %w", errNotConfirmed, st.Name, err)
			}
			if _, err := s.confirm(ctx, st); err != nil {
				return "", "", fmt.Errorf("%s stays in the slot: %w", st.Name, err)
			}
		}
		detail = "deleted " + st.Name + ", whose copy on the bucket is confirmed"
	}
	if err := s.slot.Delete(ctx); err != nil && !errors.Is(err, store.ErrEmpty) {
		return "", "", err
	}
	return outcomeOK, detail, nil
}

// exportNow exports the slot's backup and waits for the export to end.
func (s *scheduler) exportNow(ctx context.Context) error {
	if err := s.slot.Export(ctx); err != nil {
		return err
	}
	st, err := s.slot.Wait(ctx)
	if err != nil {
		return err
	}
	if ex := st.Export; ex != nil && ex.State == slot.ExportFailed {
		return fmt.Errorf("the export failed: %s (%w)", ex.Error, codedError(ex.Code))
	}
	return nil
}

// confirm checks that the bucket holds a copy of the slot's backup st of
// the same size, MD5 and SHA-256, as the slot's export checks its copy.
func (s *scheduler) confirm(ctx context.Context, st slot.Status) (store.Entry, error) {
	entries, err := s.slot.RemoteList(ctx)
	if err != nil {
		return store.Entry{}, err
	}
	for _, e := range entries {
		if e.Info.Name != st.Name && !strings.HasSuffix(e.Key, "/"+st.Name) {
			continue
		}
		if e.Info.Size == st.Size && e.Info.MD5 == st.MD5 && e.Info.SHA256 == st.SHA256 && st.SHA256 != "" {
			return e, nil
		}
		return store.Entry{}, fmt.Errorf("%w: %s holds %d bytes, MD5 %s, SHA-256 %s; the slot %d bytes, MD5 %s, SHA-256 %s",
			errNotConfirmed, e.Key, e.Info.Size, e.Info.MD5, e.Info.SHA256, st.Size, st.MD5, st.SHA256)
	}
	return store.Entry{}, fmt.Errorf("%w: the bucket has no copy of %s", errNotConfirmed, st.Name)
}

// backup makes the run's backup and waits for it (and for the export the
// slot starts once it is ready).
func (s *scheduler) backup(ctx context.Context, r *runRecord) (string, string, error) {
	pw, err := s.password()
	if err != nil {
		return "", "", err
	}
	err = s.slot.Start(ctx, pw)
	clear(pw)
	if err != nil {
		return "", "", err
	}
	st, err := s.slot.Wait(ctx)
	if err != nil {
		return "", "", err
	}
	if st.State != slot.StateReady {
		return "", "", fmt.Errorf("the backup failed: %s (%w)", st.Error, codedError(st.Code))
	}
	s.mu.Lock()
	r.Backup = st.Name
	s.mu.Unlock()
	return outcomeOK, fmt.Sprintf("%s, %d bytes", st.Name, st.Size), nil
}

// export confirms the copy of the run's backup on the bucket.
func (s *scheduler) export(ctx context.Context, _ *runRecord) (string, string, error) {
	if !s.exporting {
		return outcomeSkipped, "no -export-bucket", nil
	}
	st, err := s.slot.Wait(ctx)
	if err != nil {
		return "", "", err
	}
	if ex := st.Export; ex == nil || ex.State != slot.ExportDone {
		// Not exported, or its export failed: once more, now.
		if err := s.exportNow(ctx); err != nil {
			return "", "", err
		}
	}
	e, err := s.confirm(ctx, st)
	if err != nil {
		return "", "", err
	}
	return outcomeOK, "confirmed " + e.Key, nil
}

// drillStep drills the run's backup.
func (s *scheduler) drillStep(ctx context.Context, _ *runRecord) (string, string, error) {
	if s.drill == nil {
		return outcomeSkipped, "no drill", nil
	}
	pw, err := s.password()
	if err != nil {
		return "", "", err
	}
	rep, err := s.drill.runLocked(ctx, pw, nil)
	clear(pw)
	if err != nil {
		return "", "", err
	}
	return outcomeOK, fmt.Sprintf("restored in %.1fs", rep.RestoreSeconds), nil
}

// retention applies the export's retention rule to the node's copies,
// now that the new one has passed its drill.
func (s *scheduler) retention(ctx context.Context, _ *runRecord) (string, string, error) {
	if s.exportCfg == nil || s.exportCfg.Retention == nil {
		return outcomeSkipped, "no retention rule", nil
	}
	prefix, err := s.exportCfg.NodePrefix()
	if err != nil {
		return "", "", err
	}
	res, err := store.Prune(ctx, s.exportCfg.Remote, prefix, *s.exportCfg.Retention)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", errRetention, err)
	}
	verb := "deleted"
	if res.DryRun {
		verb = "would delete (dry run)"
	}
	s.log.Info("schedule: retention", "prefix", prefix, "kept", len(res.Keep), "deleted", len(res.Delete), "dry_run", res.DryRun)
	return outcomeOK, fmt.Sprintf("kept %d, %s %d", len(res.Keep), verb, len(res.Delete)), nil
}

// slotExport is the export the slot runs: e without its retention rule
// when f schedules backups, since the schedule prunes once a new copy has
// passed its drill.
func (f scheduleFlags) slotExport(e *slot.ExportConfig) *slot.ExportConfig {
	if f.spec == "" || e == nil || e.Retention == nil {
		return e
	}
	c := *e
	c.Retention = nil
	return &c
}

// errRetention: the export's retention rule failed to prune.
var errRetention = errcode.New(errcode.Internal, "retention failed")

// codedError is an error of code c, for a failure the slot recorded as
// text and code only.
type codedError errcode.Code

func (c codedError) Error() string           { return string(c) }
func (c codedError) ErrorCode() errcode.Code { return errcode.Code(c) }

// writeAtomic replaces file with b, so that a reader, or the agent after a
// crash, sees the old content or the new one, never a part: a temporary
// file in the same directory, synced, then renamed over file, and the
// directory synced.
func writeAtomic(file string, b []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// scheduleHandler serves GET /v1/schedule:
//
//	GET /v1/schedule -> {"schedule":…,"next":…,"running":{…},"last":{…},"last_success":…,"failures":N}
func registerSchedule(mux *http.ServeMux, s *scheduler) {
	mux.HandleFunc("GET /v1/schedule", func(w http.ResponseWriter, r *http.Request) {
		if s == nil {
			writeErr(w, fmt.Errorf("%w: the agent runs no schedule; start keepslotd with -schedule", errSchedule))
			return
		}
		writeJSON(w, http.StatusOK, s.Status())
	})
}

// scheduleMetrics is the Prometheus collector of the schedule, the drills
// and the notifier; any of them may be nil.
type scheduleMetrics struct {
	s *scheduler
	d *drillRunner
	n *notifier
}

var (
	descNext          = desc("schedule_next_run_timestamp_seconds", "When the next scheduled run starts, in Unix seconds.")
	descRunStep       = desc("schedule_last_run_step", "1 for each step of the last scheduled run, labelled with its outcome: ok, failed, skipped, interrupted, or running for the run under way.", "step", "outcome")
	descRunOK         = desc("schedule_last_run_success", "1 if the last scheduled run succeeded, 0 if it failed or was interrupted.")
	descRunSuccess    = desc("schedule_last_success_timestamp_seconds", "When the last successful scheduled run ended, in Unix seconds.")
	descRunFailures   = desc("schedule_failures_total", "Scheduled runs that failed or were interrupted, as recorded in the data directory.")
	descDrillTime     = desc("drill_last_success_timestamp_seconds", "When the last successful restore drill ended, in Unix seconds.")
	descDrillRestore  = desc("drill_last_success_restore_seconds", "How long the last successful drill's restore took: the time to restore (RTO).")
	descDrillBytes    = desc("drill_last_success_bytes", "Bytes of documents the last successful drill restored.")
	descDrillPassed   = desc("drill_last_passed", "1 if the last drill passed, 0 if it failed.")
	descDrillFailures = desc("drill_failures_total", "Drills that failed, as recorded in the data directory.")
	descNotify        = desc("notify_events_total", "Events for -notify-url: sent, dropped from a full queue, or failed after every try.", "result")
)

// Describe implements prometheus.Collector.
func (m scheduleMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNext, descRunStep, descRunOK, descRunSuccess, descRunFailures,
		descDrillTime, descDrillRestore, descDrillBytes, descDrillPassed, descDrillFailures, descNotify} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m scheduleMetrics) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if m.s != nil {
		st := m.s.Status()
		if !st.Next.IsZero() {
			gauge(descNext, unixSeconds(st.Next))
		}
		r := st.Running
		if r == nil {
			r = st.Last
		}
		if r != nil {
			for _, s := range r.Steps {
				if s.Outcome != "" {
					gauge(descRunStep, 1, s.Step, s.Outcome)
				}
			}
		}
		if st.Last != nil {
			gauge(descRunOK, boolFloat(st.Last.Outcome == outcomeOK))
		}
		if !st.LastSuccess.IsZero() {
			gauge(descRunSuccess, unixSeconds(st.LastSuccess))
		}
		counter(descRunFailures, st.Failures)
	}
	if m.d != nil {
		st := m.d.Status()
		if ok := st.LastSuccess; ok != nil {
			gauge(descDrillTime, unixSeconds(ok.Finished))
			gauge(descDrillRestore, ok.RestoreSeconds)
			gauge(descDrillBytes, float64(ok.Bytes))
		}
		if st.Last != nil {
			gauge(descDrillPassed, boolFloat(st.Last.Passed))
		}
		counter(descDrillFailures, st.Failures)
	}
	if m.n != nil {
		sent, dropped, failed := m.n.counts()
		counter(descNotify, sent, "sent")
		counter(descNotify, dropped, "dropped")
		counter(descNotify, failed, "failed")
	}
}

// scheduling is the agent's schedule, drills and notifier, as its flags
// set them up; any may be nil.
type scheduling struct {
	sched  *scheduler
	drills *drillRunner
	notify *notifier
	done   chan struct{} // closed once the scheduler and the notifier have stopped
	cancel context.CancelFunc
}

// stop cancels a running run or drill and waits until the scheduler and
// the notifier have stopped.
func (sc *scheduling) stop() {
	sc.cancel()
	<-sc.done
}

// schedulingConfig is what startScheduling sets up.
type schedulingConfig struct {
	Flags     scheduleFlags
	NotifyURL string
	Node      string // the node's name in notifications; default the host name
	Slot      scheduledSlot
	Exporting bool // the slot exports its backups
	// Export is the agent's export, whose Retention the retention step
	// applies; the slot's export has none under a schedule (slotExport).
	Export   *slot.ExportConfig
	Driller  driller // nil: the agent runs no drills
	StateDir string
	Logger   *slog.Logger
	Clock    clock // default the real one
	// Hold, if set, is called once each step's start is saved (tests);
	// default the test-hold agent's (schedule_hold.go), nil as shipped.
	Hold func(ctx context.Context, step string)
}

// startScheduling checks the schedule's flags, loads the recorded state
// and starts the scheduler and the notifier, which run until ctx is done
// or stop is called.
func startScheduling(ctx context.Context, cfg schedulingConfig) (_ *scheduling, err error) {
	f, b, d, log, exporting, stateDir := cfg.Flags, cfg.Slot, cfg.Driller, cfg.Logger, cfg.Exporting, cfg.StateDir
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Hold == nil {
		cfg.Hold = testScheduleHold()
	}
	spec, err := f.check(exporting)
	if err != nil {
		return nil, err
	}
	n, err := newNotifier(cfg.NotifyURL, cfg.Node, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	sc := &scheduling{notify: n, done: make(chan struct{}), cancel: cancel}
	g := &gate{}
	var password func() ([]byte, error)
	if f.passwordFile != "" {
		password = func() ([]byte, error) { return readPasswordFile(f.passwordFile) }
	}
	if d != nil {
		sc.drills = &drillRunner{d: d, b: b, gate: g, stateFile: filepath.Join(stateDir, "drill.json"), notify: n,
			password: password, now: cfg.Clock.Now, log: log, ctx: ctx}
		if err := sc.drills.load(); err != nil {
			return nil, err
		}
	}
	if spec != nil {
		sc.sched = &scheduler{spec: spec, specText: f.spec, slot: b, exporting: exporting, exportCfg: cfg.Export, password: password,
			drill: sc.drills, gate: g, clock: cfg.Clock, stateFile: filepath.Join(stateDir, "schedule.json"),
			notify: n, log: log, hold: cfg.Hold}
		if err := sc.sched.loadState(); err != nil {
			return nil, err
		}
		log.Info("schedule: backups run on a schedule", "schedule", f.spec, "export", exporting)
	}
	var wg sync.WaitGroup
	if n != nil {
		wg.Go(func() { n.Run(ctx) })
	}
	if sc.sched != nil {
		wg.Go(func() { sc.sched.Run(ctx) })
	}
	go func() { wg.Wait(); close(sc.done) }()
	return sc, nil
}
