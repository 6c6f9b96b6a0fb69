package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// fakeClock is the scheduler's clock in tests: After tells the test how
// long the scheduler waits, and the test fires the timer.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC), waits: make(chan time.Duration), fire: make(chan time.Time)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return c.fire
}

// waitFor returns how long the scheduler waits next, once it does.
func (c *fakeClock) waitFor(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(time.Minute): // a guard against a hung scheduler, not a synchronisation
		t.Fatal("the scheduler did not wait for its next run")
		return 0
	}
}

// tick moves the clock by d and fires the scheduler's timer.
func (c *fakeClock) tick(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	c.fire <- now
}

// flakyRemote is a remote that fails on demand, as a bucket that is down.
type flakyRemote struct {
	store.Remote
	down    atomic.Bool // every call fails
	putDown atomic.Bool // Put fails
}

var errBucketDown = errcode.New(errcode.Unreachable, "the bucket is down (test)")

func (r *flakyRemote) Put(ctx context.Context, key string, rd io.Reader, want store.Info) (store.Info, error) {
	if r.down.Load() || r.putDown.Load() {
		return store.Info{}, errBucketDown
	}
	return r.Remote.Put(ctx, key, rd, want)
}

func (r *flakyRemote) List(ctx context.Context, prefix string) ([]store.Entry, error) {
	if r.down.Load() {
		return nil, errBucketDown
	}
	return r.Remote.List(ctx, prefix)
}

// uniqueNames is a store that numbers the backups' names: the slot names
// them by the second, and the tests' runs come faster than that (in this
// process or another).
type uniqueNames struct{ store.Store }

var backupNumber atomic.Int64

func (u *uniqueNames) Create(ctx context.Context, name string) (store.Pending, error) {
	return u.Store.Create(ctx, fmt.Sprintf("p%d-%d-%s", os.Getpid(), backupNumber.Add(1), name))
}

// Unwrap implements store.Wrapper.
func (u *uniqueNames) Unwrap() store.Store { return u.Store }

// fakeDriller passes, or fails with err.
type fakeDriller struct {
	mu    sync.Mutex
	err   error
	calls []string
}

func (f *fakeDriller) Drill(ctx context.Context, obj store.Object, password []byte) (drillResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, obj.Info().Name)
	if string(password) != "pw" {
		return drillResult{}, cipher.ErrWrongPassword
	}
	res := drillResult{Restore: 1500 * time.Millisecond, Bytes: 4200, Report: map[string]any{"namespaces": 1}}
	return res, f.err
}

func (f *fakeDriller) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// schedEnv is a scheduler over a real slot (in memory, with a source of
// one collection) exporting to a flaky in-memory bucket, with a fake
// driller and clock.
type schedEnv struct {
	t       *testing.T
	dir     string
	slot    *slot.Slot
	remote  *flakyRemote
	driller *fakeDriller
	clock   *fakeClock
	sc      *scheduling
	next    time.Duration // how long the scheduler waits, once it does
	waiting bool
}

func newSchedEnv(t *testing.T, src slot.Source, notifyURL string) *schedEnv {
	t.Helper()
	return newSchedEnvKeep(t, src, notifyURL, 5)
}

// newSchedEnvKeep is newSchedEnv with a retention rule that keeps the last
// keep copies.
func newSchedEnvKeep(t *testing.T, src slot.Source, notifyURL string, keep int) *schedEnv {
	t.Helper()
	e := &schedEnv{t: t, dir: t.TempDir(), remote: &flakyRemote{Remote: store.MemoryRemote()}, driller: &fakeDriller{}, clock: newFakeClock()}
	if src == nil {
		src = fakeSource{}
	}
	require.NoError(t, slot.NewRole(e.dir).Set())
	export := &slot.ExportConfig{Remote: e.remote, Node: "n1", Retention: &store.Retention{Last: keep}}
	flags := scheduleFlags{spec: "0 2 * * *", passwordFile: filepath.Join(e.dir, "pw")}
	b, err := slot.New(src, slot.Config{
		Store: &uniqueNames{Store: store.Memory()}, StateDir: e.dir, KDF: &cipher.Options{LogN: 10}, Logger: slog.New(slog.DiscardHandler),
		Export: flags.slotExport(export),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	e.slot = b
	require.NoError(t, os.WriteFile(flags.passwordFile, []byte("pw\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	e.sc, err = startScheduling(ctx, schedulingConfig{
		Flags: flags, NotifyURL: notifyURL, Node: "n1",
		Slot: b, Exporting: true, Export: export, Driller: e.driller, StateDir: e.dir, Logger: slog.New(slog.DiscardHandler), Clock: e.clock,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		<-e.sc.done
	})
	return e
}

// run fires the next scheduled run and returns it once it has ended, when
// the scheduler waits for the one after.
func (e *schedEnv) run() *runRecord {
	e.t.Helper()
	if !e.waiting {
		e.next = e.clock.waitFor(e.t)
	}
	e.clock.tick(e.next)
	e.next, e.waiting = e.clock.waitFor(e.t), true
	st := e.sc.sched.Status()
	require.NotNil(e.t, st.Last)
	require.Nil(e.t, st.Running)
	return st.Last
}

// remoteNames are the backups the bucket holds.
func (e *schedEnv) remoteNames() []string {
	e.t.Helper()
	l, err := e.remote.Remote.List(context.Background(), "")
	require.NoError(e.t, err)
	var names []string
	for _, en := range l {
		names = append(names, en.Info.Name)
	}
	return names
}

// local is the slot's backup's name, or "" when it is empty.
func (e *schedEnv) local() string {
	e.t.Helper()
	st, err := e.slot.Status(context.Background())
	require.NoError(e.t, err)
	if st.State != slot.StateReady {
		return ""
	}
	return st.Name
}

func outcomes(r *runRecord) map[string]string {
	m := map[string]string{}
	for _, s := range r.Steps {
		m[s.Step] = s.Outcome
	}
	return m
}

var allOK = map[string]string{stepReplace: outcomeOK, stepBackup: outcomeOK, stepExport: outcomeOK, stepDrill: outcomeOK, stepRetention: outcomeOK}

// TestScheduleTwoRuns: the first run backs up, exports, drills; the
// second replaces the first's backup, whose copy stays on the bucket.
func TestScheduleTwoRuns(t *testing.T) {
	e := newSchedEnv(t, nil, "")
	first := e.clock.waitFor(t)
	assert.Equal(t, time.Hour, first, "from 01:00 to the schedule's 02:00")
	e.next, e.waiting = first, true
	r1 := e.run()
	require.Equal(t, outcomeOK, r1.Outcome, "%+v", r1)
	assert.Equal(t, allOK, outcomes(r1))
	a := e.local()
	require.NotEmpty(t, a)
	assert.Equal(t, a, r1.Backup)
	assert.Equal(t, []string{a}, e.remoteNames())

	r2 := e.run()
	require.Equal(t, outcomeOK, r2.Outcome, "%+v", r2)
	b := e.local()
	assert.NotEqual(t, a, b)
	assert.ElementsMatch(t, []string{a, b}, e.remoteNames())
	assert.Contains(t, r2.Steps[0].Detail, "deleted "+a+", whose copy on the bucket is confirmed")
	assert.Equal(t, []string{a, b}, e.driller.calls)
	st := e.sc.sched.Status()
	assert.Equal(t, int64(0), st.Failures)
	assert.Equal(t, r2.Finished, st.LastSuccess)
	assert.Equal(t, time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC), st.Next.UTC())
}

// TestScheduleBucketDown: a run whose export fails keeps its backup in the
// slot and says so; the next, with the bucket back, exports it, and only
// then replaces it. A bucket down when a run starts keeps the slot's
// backup too.
func TestScheduleBucketDown(t *testing.T) {
	e := newSchedEnv(t, nil, "")
	e.remote.putDown.Store(true)
	r1 := e.run()
	assert.Equal(t, outcomeFailed, r1.Outcome)
	assert.Equal(t, stepExport, r1.Step)
	assert.Equal(t, errcode.Unreachable, r1.Code, r1.Error)
	assert.Equal(t, map[string]string{stepReplace: outcomeOK, stepBackup: outcomeOK, stepExport: outcomeFailed, stepDrill: "", stepRetention: ""}, outcomes(r1))
	a := e.local()
	require.NotEmpty(t, a, "the unexported backup stays in the slot")
	assert.Empty(t, e.remoteNames())

	e.remote.putDown.Store(false)
	e.remote.down.Store(true)
	r2 := e.run()
	assert.Equal(t, outcomeFailed, r2.Outcome)
	assert.Equal(t, stepReplace, r2.Step)
	assert.Equal(t, errcode.SlotOccupied, r2.Code, r2.Error)
	assert.Contains(t, r2.Error, a+" stays in the slot")
	assert.Equal(t, a, e.local())

	e.remote.down.Store(false)
	r3 := e.run()
	require.Equal(t, outcomeOK, r3.Outcome, "%+v", r3)
	b := e.local()
	assert.NotEqual(t, a, b)
	assert.ElementsMatch(t, []string{a, b}, e.remoteNames(), "the first backup was exported before it was replaced")
	assert.Equal(t, int64(2), e.sc.sched.Status().Failures)
}

// notifyServer records the events posted to it.
type notifyServer struct {
	*httptest.Server
	events chan event
	fail   atomic.Int32 // answer 503 to this many posts first
}

func newNotifyServer(t *testing.T) *notifyServer {
	n := &notifyServer{events: make(chan event, 100)}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var e event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		n.events <- e
	}))
	t.Cleanup(n.Close)
	return n
}

func (n *notifyServer) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-n.events:
		return e
	case <-time.After(time.Minute): // a guard, not a synchronisation
		t.Fatal("no event was posted")
		return event{}
	}
}

// TestScheduleDrillFailure: a drill that fails fails the run, which the
// metrics and the notifier report; the next run that passes is notified as
// a recovery.
func TestScheduleDrillFailure(t *testing.T) {
	ns := newNotifyServer(t)
	e := newSchedEnv(t, nil, ns.URL+"/hook?token=abc")
	e.sc.notify.backoff = time.Millisecond
	ns.fail.Store(1) // the first post is tried again
	e.driller.fail(fmt.Errorf("%w: app.things: count: 99 restored, 100 in the backup", codedError(errcode.CountMismatch)))
	r := e.run()
	assert.Equal(t, outcomeFailed, r.Outcome)
	assert.Equal(t, stepDrill, r.Step)
	assert.Equal(t, errcode.CountMismatch, r.Code)
	a := e.local()
	assert.Equal(t, []string{a}, e.remoteNames(), "a drill failure keeps the exported backup")

	ev := ns.next(t)
	assert.Equal(t, "drill_failed", ev.Event)
	assert.Equal(t, a, ev.Backup)
	ev = ns.next(t)
	assert.Equal(t, "run_failed", ev.Event)
	assert.Equal(t, stepDrill, ev.Step)
	assert.Equal(t, "n1", ev.Node)
	assert.Equal(t, errcode.CountMismatch, ev.Code)
	assert.Contains(t, ev.Message, "app.things: count")

	st := e.sc.drills.Status()
	require.NotNil(t, st.Last)
	assert.False(t, st.Last.Passed)
	assert.Nil(t, st.LastSuccess)
	assert.Equal(t, int64(1), st.Failures)
	assert.JSONEq(t, `{"namespaces":1}`, string(st.Last.Report))

	srv := httptest.NewServer(newServer(serverConfig{Token: testToken, Role: slot.NewRole(e.dir), Main: e.slot, Sensitive: e.slot,
		Logger: slog.New(slog.DiscardHandler), Schedule: e.sc}))
	t.Cleanup(srv.Close)
	_, body := do(t, srv, "GET", "/metrics", "")
	for _, want := range []string{
		"keepslot_drill_failures_total 1", "keepslot_drill_last_passed 0", "keepslot_schedule_failures_total 1",
		`keepslot_schedule_last_run_step{outcome="failed",step="drill"} 1`, `keepslot_schedule_last_run_step{outcome="ok",step="export"} 1`,
		"keepslot_schedule_last_run_success 0", `keepslot_notify_events_total{result="failed"} 0`,
		"keepslot_schedule_next_run_timestamp_seconds " + promFloat(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)),
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, "keepslot_drill_last_success_timestamp_seconds")

	e.driller.fail(nil)
	r = e.run()
	require.Equal(t, outcomeOK, r.Outcome, "%+v", r)
	ev = ns.next(t)
	assert.Equal(t, "recovered", ev.Event)
	assert.Equal(t, r.Backup, ev.Backup)
	_, body = do(t, srv, "GET", "/metrics", "")
	for _, want := range []string{
		"keepslot_drill_last_success_restore_seconds 1.5", "keepslot_drill_last_success_bytes 4200", "keepslot_drill_last_passed 1",
		"keepslot_schedule_last_run_success 1", "keepslot_drill_last_success_timestamp_seconds " + promFloat(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)),
	} {
		assert.Contains(t, body, want)
	}
	_, body = do(t, srv, "GET", "/v1/schedule", "")
	var got scheduleState
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, "0 2 * * *", got.Schedule)
	assert.Equal(t, outcomeOK, got.Last.Outcome)
	assert.Equal(t, int64(1), got.Failures)
}

// blockingSource is a source whose backup blocks until release is closed.
type blockingSource struct {
	fakeSource
	started chan struct{}
	release chan struct{}
}

func (b blockingSource) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	select {
	case b.started <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.fakeSource.Documents(ctx, c, emit)
}

// TestScheduleInProgress: while a scheduled run backs up, a backup or a
// drill asked for by hand is refused as in progress (409).
func TestScheduleInProgress(t *testing.T) {
	src := blockingSource{started: make(chan struct{}, 1), release: make(chan struct{})}
	e := newSchedEnv(t, src, "")
	srv := httptest.NewServer(newServer(serverConfig{Token: testToken, Role: slot.NewRole(e.dir), Main: e.slot, Sensitive: e.slot,
		Logger: slog.New(slog.DiscardHandler), Schedule: e.sc}))
	t.Cleanup(srv.Close)
	e.clock.tick(e.clock.waitFor(t))
	<-src.started
	assert.Equal(t, stepBackup, e.sc.sched.Status().Running.Step)
	resp, body := do(t, srv, "POST", "/v1/backup", `{"password":"pw"}`)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "in_progress", errorOf(t, body))
	resp, body = do(t, srv, "POST", "/v1/drill", `{"password":"pw"}`)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "in_progress", errorOf(t, body))
	_, body = do(t, srv, "GET", "/v1/schedule", "")
	assert.Contains(t, body, `"running"`)
	close(src.release)
	e.next, e.waiting = e.clock.waitFor(t), true
	assert.Equal(t, outcomeOK, e.sc.sched.Status().Last.Outcome)

	// Now a drill by hand, with the schedule's password.
	resp, body = do(t, srv, "POST", "/v1/drill", "")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	_, body = do(t, srv, "GET", "/v1/drill?wait=1", "")
	var st drillState
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.False(t, st.Running)
	require.NotNil(t, st.Last)
	assert.True(t, st.Last.Passed)
	assert.Equal(t, e.local(), st.Last.Backup)
	assert.Equal(t, 1.5, st.Last.RestoreSeconds)
	resp, body = do(t, srv, "POST", "/v1/drill", `{"password":"wrong"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	_, body = do(t, srv, "GET", "/v1/drill?wait=1", "")
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Equal(t, errcode.WrongPassword, st.Last.Code)
	assert.True(t, st.LastSuccess.Passed)
}

// TestScheduleRefused: a schedule that cannot work is refused at start.
func TestScheduleRefused(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw\n"), 0o600))
	open := filepath.Join(dir, "open")
	require.NoError(t, os.WriteFile(open, []byte("pw\n"), 0o644))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	for _, tc := range []struct {
		f         scheduleFlags
		exporting bool
		want      string
	}{
		{scheduleFlags{spec: "0 2 * * *", passwordFile: pw}, false, "-schedule-replace-unexported"},
		{scheduleFlags{spec: "0 2 * *", passwordFile: pw}, true, "five fields"},
		{scheduleFlags{spec: "0 2 * * *"}, true, "-schedule-password-file"},
		{scheduleFlags{spec: "0 2 * * *", passwordFile: open}, true, "chmod 600"},
		{scheduleFlags{spec: "0 2 * * *", passwordFile: empty}, true, "is empty"},
		{scheduleFlags{passwordFile: pw}, true, "need -schedule"},
	} {
		_, err := tc.f.check(tc.exporting)
		require.Error(t, err, "%+v", tc.f)
		assert.Equal(t, errcode.Invalid, errcode.Of(err), err.Error())
		assert.Contains(t, err.Error(), tc.want)
	}
	_, err := scheduleFlags{spec: "0 2 * * *", passwordFile: pw, replaceUnexported: true}.check(false)
	assert.NoError(t, err)
	_, err = scheduleFlags{spec: "@every 6h", passwordFile: pw}.check(true)
	assert.NoError(t, err)
	_, err = newNotifier("ftp://x", "", nil)
	assert.ErrorIs(t, err, errSchedule)
}

// promFloat is t in Unix seconds as the metrics' text writes it.
func promFloat(t time.Time) string { return strconv.FormatFloat(unixSeconds(t), 'g', -1, 64) }

// TestScheduleRetentionAfterDrill: retention prunes the older copies only
// once the new one has passed its drill; a run whose drill fails prunes
// nothing.
func TestScheduleRetentionAfterDrill(t *testing.T) {
	e := newSchedEnvKeep(t, nil, "", 1)
	r1 := e.run()
	require.Equal(t, outcomeOK, r1.Outcome, "%+v", r1)
	assert.Equal(t, "kept 1, deleted 0", r1.Steps[4].Detail)

	e.driller.fail(fmt.Errorf("%w: app.things: digest", codedError(errcode.Corrupt)))
	r2 := e.run()
	require.Equal(t, outcomeFailed, r2.Outcome)
	assert.ElementsMatch(t, []string{r1.Backup, r2.Backup}, e.remoteNames(), "the proven copy stays beside the one whose drill failed")
	st, err := e.slot.Status(context.Background())
	require.NoError(t, err)
	assert.Nil(t, st.Export.Retention, "the slot's export does not prune under a schedule")

	e.driller.fail(nil)
	r3 := e.run()
	require.Equal(t, outcomeOK, r3.Outcome, "%+v", r3)
	assert.Equal(t, []string{r3.Backup}, e.remoteNames())
	assert.Equal(t, "kept 1, deleted 2", r3.Steps[4].Detail)
}
