package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// The scheduler killed (SIGKILL) at each point of a run, in a child
// process: the test binary itself, run again with envKillChild set, over a
// data directory on disk and a bucket in a directory, so that both
// outlive it.

const (
	envKillChild = "KEEPSLOTD_TEST_KILL_CHILD" // the data directory
	envKillAt    = "KEEPSLOTD_TEST_KILL_AT"    // where the child holds
	heldLine     = "keepslotd-test: held at "
)

// dirRemote is a store.Remote in a directory: each object is a data file
// and an info file beside it, both renamed into place.
type dirRemote struct {
	dir  string
	hold func() // if set, Put calls it before it stores anything
}

type dirObject struct {
	*os.File
	info store.Info
}

func (o dirObject) Info() store.Info { return o.info }

func (r *dirRemote) path(key string) string { return filepath.Join(r.dir, filepath.FromSlash(key)) }

func (r *dirRemote) Put(ctx context.Context, key string, rd io.Reader, want store.Info) (store.Info, error) {
	if r.hold != nil {
		r.hold()
	}
	p := r.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return store.Info{}, err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return store.Info{}, err
	}
	defer os.Remove(f.Name())
	m, h := md5.New(), sha256.New()
	n, err := io.Copy(io.MultiWriter(f, m, h), rd)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return store.Info{}, err
	}
	got := store.Info{Name: want.Name, Size: n, MD5: hex.EncodeToString(m.Sum(nil)), SHA256: hex.EncodeToString(h.Sum(nil)),
		Created: want.Created, Meta: want.Meta}
	if (want.MD5 != "" && want.MD5 != got.MD5) || (want.SHA256 != "" && want.SHA256 != got.SHA256) {
		return store.Info{}, store.ErrMismatch
	}
	b, err := json.Marshal(got)
	if err != nil {
		return store.Info{}, err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return store.Info{}, err
	}
	return got, writeAtomic(p+".info", b)
}

func (r *dirRemote) List(ctx context.Context, prefix string) ([]store.Entry, error) {
	var out []store.Entry
	err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".info") {
			return err
		}
		key := filepath.ToSlash(strings.TrimSuffix(strings.TrimPrefix(p, r.dir+string(filepath.Separator)), ".info"))
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var info store.Info
		if err := json.Unmarshal(b, &info); err != nil {
			return err
		}
		out = append(out, store.Entry{Key: key, Info: info})
		return nil
	})
	return out, err
}

func (r *dirRemote) Open(ctx context.Context, key string) (store.Object, error) {
	b, err := os.ReadFile(r.path(key) + ".info")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var info store.Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	f, err := os.Open(r.path(key))
	if err != nil {
		return nil, err
	}
	return dirObject{File: f, info: info}, nil
}

func (r *dirRemote) Delete(ctx context.Context, key string) error {
	if err := os.Remove(r.path(key) + ".info"); errors.Is(err, fs.ErrNotExist) {
		return store.ErrNotFound
	}
	return os.Remove(r.path(key))
}

// onceClock fires its first timer at once and never another.
type onceClock struct {
	mu    sync.Mutex
	fired bool
}

func (c *onceClock) Now() time.Time { return time.Now() }

func (c *onceClock) After(time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fired {
		return nil
	}
	c.fired = true
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

// holdingSource is fakeSource whose documents, when hold is set, wait for
// it (it never returns in the child, which is killed).
type holdingSource struct {
	fakeSource
	hold func()
}

func (s holdingSource) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	if s.hold != nil {
		s.hold()
	}
	return s.fakeSource.Documents(ctx, c, emit)
}

// diskAgent is the parts of an agent over a data directory on disk.
type diskAgent struct {
	slot   *slot.Slot
	remote *dirRemote
	sc     *scheduling
	stop   func()
}

// openDiskAgent opens the slot, bucket and schedule in data; hold, if
// set, is called at the point named at ("backup-write" and "export-put"
// inside those steps, or a step's name once its start is saved).
func openDiskAgent(t testing.TB, data string, clk clock, at string, hold func()) *diskAgent {
	remote := &dirRemote{dir: filepath.Join(data, "bucket")}
	src := holdingSource{}
	switch at {
	case "backup-write":
		src.hold = hold
	case "export-put":
		remote.hold = hold
	}
	st, err := store.Dir(filepath.Join(data, "slot"))
	require.NoError(t, err)
	state := filepath.Join(data, "state")
	require.NoError(t, slot.NewRole(state).Set())
	b, err := slot.New(src, slot.Config{
		Store: &uniqueNames{Store: st}, StateDir: state, KDF: &cipher.Options{LogN: 10}, Logger: slog.New(slog.DiscardHandler),
		Export: &slot.ExportConfig{Remote: remote, Node: "n1"},
	})
	require.NoError(t, err)
	var stepHold func(context.Context, string)
	if hold != nil && at != "backup-write" && at != "export-put" {
		stepHold = func(_ context.Context, step string) {
			if step == at {
				hold()
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc, err := startScheduling(ctx, schedulingConfig{
		Flags: scheduleFlags{spec: "0 2 * * *", passwordFile: filepath.Join(data, "pw")}, Node: "n1",
		Slot: b, Exporting: true, Driller: &fakeDriller{}, StateDir: state, Logger: slog.New(slog.DiscardHandler), Clock: clk,
		Hold: stepHold,
	})
	require.NoError(t, err)
	return &diskAgent{slot: b, remote: remote, sc: sc, stop: func() {
		cancel()
		<-sc.done
		_ = b.Close()
	}}
}

// TestScheduleKilledChild is the child of TestScheduleKilled: it runs one
// scheduled run and holds it where envKillAt says, until it is killed.
func TestScheduleKilledChild(t *testing.T) {
	data := os.Getenv(envKillChild)
	if data == "" {
		return // run as a child only
	}
	at := os.Getenv(envKillAt)
	hold := func() {
		fmt.Println(heldLine + at)
		select {} // until SIGKILL
	}
	a := openDiskAgent(t, data, &onceClock{}, at, hold)
	defer a.stop()
	select {} // until SIGKILL
}

// TestScheduleKilled kills the agent (SIGKILL, a child process) at each
// point of a scheduled run that replaces an exported backup: after a
// restart it reports the run as interrupted at that step, holds at most
// one backup, keeps the exported copy, and its next run succeeds.
func TestScheduleKilled(t *testing.T) {
	for _, tc := range []struct {
		at, step string
	}{
		{stepReplace, stepReplace},
		{"backup-write", stepBackup},
		{"export-put", stepBackup}, // the slot exports as the backup ends
		{stepExport, stepExport},
		{stepDrill, stepDrill},
		{stepRetention, stepRetention},
	} {
		t.Run(tc.at, func(t *testing.T) {
			data := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(data, "pw"), []byte("pw\n"), 0o600))
			// A first run, here: backup A, exported.
			clk := newFakeClock()
			a := openDiskAgent(t, data, clk, "", nil)
			clk.tick(clk.waitFor(t))
			clk.waitFor(t)
			first := a.sc.sched.Status().Last
			require.Equal(t, outcomeOK, first.Outcome, "%+v", first)
			a.stop()

			// The second, in a child killed at tc.at.
			cmd := exec.Command(os.Args[0], "-test.run=^TestScheduleKilledChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envKillChild+"="+data, envKillAt+"="+tc.at)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(out)
			held := false
			for !held && sc.Scan() {
				held = sc.Text() == heldLine+tc.at
			}
			require.True(t, held, "the child did not hold at %s", tc.at)
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()

			// Restarted: the run is reported, A's copy is there, the slot
			// holds one backup at most.
			clk = newFakeClock()
			a = openDiskAgent(t, data, clk, "", nil)
			defer a.stop()
			st := a.sc.sched.Status()
			require.NotNil(t, st.Last)
			assert.Nil(t, st.Running)
			assert.Equal(t, outcomeInterrupted, st.Last.Outcome)
			assert.Equal(t, errcode.Interrupted, st.Last.Code)
			assert.Equal(t, tc.step, st.Last.Step)
			assert.Contains(t, st.Last.Error, "during the run's "+tc.step+" step")
			assert.Equal(t, int64(1), st.Failures)
			assert.Contains(t, remoteBackups(t, a.remote), first.Backup, "the exported copy stays")
			assertOneObjectAtMost(t, a.slot, filepath.Join(data, "slot"))
			before, err := a.slot.Status(context.Background())
			require.NoError(t, err)

			clk.tick(clk.waitFor(t))
			clk.waitFor(t)
			last := a.sc.sched.Status().Last
			require.Equal(t, outcomeOK, last.Outcome, "%+v", last)
			names := remoteBackups(t, a.remote)
			assert.Contains(t, names, first.Backup)
			assert.Contains(t, names, last.Backup)
			if before.State == slot.StateReady {
				assert.Contains(t, names, before.Name, "the backup the slot held was exported before it was replaced")
			}
			assertOneObjectAtMost(t, a.slot, filepath.Join(data, "slot"))
		})
	}
}

func remoteBackups(t *testing.T, r *dirRemote) []string {
	t.Helper()
	l, err := r.List(context.Background(), "")
	require.NoError(t, err)
	var names []string
	for _, e := range l {
		names = append(names, e.Info.Name)
	}
	return names
}

// assertOneObjectAtMost checks that the slot's directory holds one backup
// at most, once the store has cleaned what a killed write left.
func assertOneObjectAtMost(t *testing.T, b *slot.Slot, dir string) {
	t.Helper()
	_, err := b.Status(context.Background())
	require.NoError(t, err)
	objects, err := filepath.Glob(filepath.Join(dir, "object-*"))
	require.NoError(t, err)
	assert.LessOrEqual(t, len(objects), 1, "%v", objects)
}
