package slot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/keepslot/keepslot"
	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/chunk"
	"github.com/keepslot/keepslot/store"
)

// Slot is a [Backupper] over any [Source]: the single slot's state
// machine. It claims the slot, checks the role and the free-disk rule, runs
// the backup (Source -> archive -> cipher -> store) in the background, and
// records its outcome in the state directory. A Slot is safe for concurrent
// use; one Slot should own a state file at a time.
type Slot struct {
	src  Source
	cfg  Config
	role *Role
	log  *slog.Logger

	mu         sync.Mutex
	job        *job          // the running backup, or nil
	last       record        // the last backup's recorded state
	exp        *exportJob    // the running export, or nil (export.go)
	lastExport *ExportStatus // the last export's result, or nil
}

// job is a running backup.
type job struct {
	cancel   context.CancelFunc
	done     chan struct{}
	name     string
	started  time.Time
	progress archive.Progress // guarded by Slot.mu
}

var _ Backupper = (*Slot)(nil)

// New returns a Slot that backs up src as cfg says. A backup that was
// running when an earlier process over the same state file stopped is
// recorded as failed ([errcode.Interrupted]).
func New(src Source, cfg Config) (*Slot, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: the Source is nil", ErrInvalid)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("slot: create the state directory: %w", err)
	}
	s := &Slot{src: src, cfg: cfg, role: NewRole(cfg.StateDir), log: cfg.Logger}
	last, err := loadRecord(s.statePath())
	if err != nil {
		return nil, err
	}
	if last.State == StateInProgress {
		releaseRoom(s.statePath())
		last.State, last.Error, last.Code, last.Finished = StateFailed, interruptedReason, errcode.Interrupted, time.Now().UTC()
		if err := saveRecord(s.statePath(), last); err != nil {
			return nil, err
		}
		s.log.Warn("backup: the last backup was interrupted", "name", last.Name)
	}
	s.last = last
	return s, nil
}

func (s *Slot) statePath() string { return filepath.Join(s.cfg.StateDir, s.cfg.StateFile) }

// Role is the node's backup role, kept in the state directory.
func (s *Slot) Role() *Role { return s.role }

// Start checks, in this order, the password, the node's role, that no
// backup runs, that the slot is free, that the source answers (for MongoDB,
// the server), and that twice the data fits in the slot's free space; then
// it starts the backup and returns. ctx bounds the checks only: the backup
// itself runs until it ends, Cancel is called or the Slot is closed.
func (s *Slot) Start(ctx context.Context, password []byte) error {
	if len(password) == 0 {
		return fmt.Errorf("%w: a backup is encrypted under a password; give one", cipher.ErrEmptyPassword)
	}
	if err := s.role.Check(); err != nil {
		return err
	}

	s.mu.Lock()
	if s.job != nil {
		s.mu.Unlock()
		return ErrInProgress
	}
	started := time.Now().UTC()
	name := s.cfg.NamePrefix + started.Format("2006-01-02T15-04-05Z") + s.cfg.Format.Extension() + s.cfg.Compression.Extension()
	// The slot's write lives as long as the backup, not as long as ctx.
	jobCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pending, err := s.cfg.Store.Create(jobCtx, name)
	if err != nil {
		cancel()
		s.mu.Unlock()
		if errors.Is(err, store.ErrBusy) {
			return fmt.Errorf("%w (%w)", ErrInProgress, err)
		}
		return fmt.Errorf("slot: start a backup: %w", err)
	}
	j := &job{cancel: cancel, done: make(chan struct{}), name: name, started: started}
	s.job = j // from here on, a concurrent Start sees ErrInProgress
	s.mu.Unlock()

	p, err := s.preflight(ctx)
	if err == nil {
		s.mu.Lock()
		j.progress.NamespacesTotal = len(p.Collections)
		s.mu.Unlock()
		err = reserveRoom(s.statePath())
	}
	if err == nil {
		if err = s.setRecord(record{State: StateInProgress, Name: name, Started: started}); err != nil {
			releaseRoom(s.statePath())
		}
	}
	if err != nil {
		cancel()
		_ = pending.Abort()
		s.mu.Lock()
		s.job = nil
		s.mu.Unlock()
		close(j.done)
		return err
	}

	pw := append([]byte(nil), password...)
	s.log.Info("backup started", "name", name, "namespaces", len(p.Collections), "data_bytes", p.DataSize, "oplog", p.Oplog != nil)
	for _, n := range p.Notes {
		s.log.Info("backup: " + n)
	}
	go s.run(jobCtx, j, pending, p, pw)
	return nil
}

// preflight asks the source for its plan and applies the free-disk rule.
func (s *Slot) preflight(ctx context.Context) (Plan, error) {
	p, err := s.src.Plan(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("slot: plan the backup: %w", err)
	}
	if sr, ok := store.As[store.SpaceReporter](s.cfg.Store); ok {
		free, err := sr.FreeSpace(ctx)
		if err != nil {
			return Plan{}, fmt.Errorf("slot: check free space: %w", err)
		}
		if need := 2 * p.DataSize; free < need {
			return Plan{}, &SpaceError{Data: p.DataSize, Need: need, Free: free}
		}
	}
	return p, nil
}

// run is the backup itself: source -> archive -> cipher -> store.
func (s *Slot) run(ctx context.Context, j *job, pending store.Pending, p Plan, password []byte) {
	defer close(j.done)
	defer j.cancel()

	info, err := s.write(ctx, j, pending, p, password)
	clear(password)
	chunk.Trim() // the pipeline's chunks, kept for reuse while it ran

	rec := record{State: StateReady, Name: j.name, Started: j.started, Finished: time.Now().UTC()}
	if err != nil {
		_ = pending.Abort()
		if ctx.Err() != nil {
			err = fmt.Errorf("slot: cancelled: %w", context.Cause(ctx))
		}
		err = diskFull(err)
		rec.State, rec.Error, rec.Code = StateFailed, err.Error(), errcode.Of(err)
		s.log.Error("backup failed", "name", j.name, "error", err)
	} else {
		s.log.Info("backup ready", "name", info.Name, "bytes", info.Size, "md5", info.MD5,
			"duration", rec.Finished.Sub(j.started).Round(time.Millisecond))
	}
	releaseRoom(s.statePath()) // room for the record, were the disk full
	if err := s.setRecord(rec); err != nil {
		s.log.Error("backup: save state", "error", err)
	}
	if rec.State == StateReady {
		s.exportAfterBackup(info)
	}
	s.mu.Lock()
	s.job = nil
	s.mu.Unlock()
}

// write streams the planned collections into pending: archive -> cipher ->
// store, which hashes what it stores.
func (s *Slot) write(ctx context.Context, j *job, pending store.Pending, p Plan, password []byte) (store.Info, error) {
	enc, err := cipher.NewWriter(pending, password, s.cfg.KDF)
	if err != nil {
		return store.Info{}, err
	}
	defer enc.Abort() // on every error path; a no-op after Close
	manifest, err := archive.Dump(ctx, enc, p.Collections, s.src, &archive.DumpOptions{
		Node:          s.exportNode(),
		Format:        s.cfg.Format,
		Compression:   s.cfg.Compression,
		Parallel:      s.cfg.Parallel,
		Writer:        archive.WriterOptions{Spill: s.cfg.Spill},
		ToolVersion:   "keepslot " + keepslot.Version,
		ServerVersion: p.ServerVersion,
		Progress:      func(p archive.Progress) { s.progress(j, p) },
		Oplog:         p.Oplog,
	})
	if err != nil {
		return store.Info{}, err
	}
	if err := enc.Close(); err != nil {
		return store.Info{}, err
	}
	var docs int64
	for _, ns := range manifest.Namespaces {
		docs += ns.Documents
	}
	meta := map[string]string{
		"format":      s.cfg.Format.Name(),
		"compression": s.cfg.Compression.Name(),
		"namespaces":  strconv.Itoa(len(manifest.Namespaces)),
		"documents":   strconv.FormatInt(docs, 10),
		metaStarted:   j.started.Format(time.RFC3339Nano),
	}
	if manifest.Oplog != nil {
		meta[metaOplog] = string(must(json.Marshal(manifest.Oplog.OplogSpan)))
	}
	if len(p.Notes) > 0 {
		meta[metaNotes] = string(must(json.Marshal(p.Notes)))
	}
	return pending.Commit(meta)
}

func (s *Slot) progress(j *job, p archive.Progress) {
	s.mu.Lock()
	j.progress = p
	s.mu.Unlock()
	if s.cfg.Progress != nil {
		s.cfg.Progress(p)
	}
}

func (s *Slot) setRecord(r record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = r
	return saveRecord(s.statePath(), r)
}

// Status reports the slot: in progress with its progress while a backup
// runs, ready with the stored backup's name, size and hashes, failed with
// the reason the last backup failed, or none.
func (s *Slot) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	j, last := s.job, s.last
	var st Status
	if j != nil {
		st = Status{State: StateInProgress, Name: j.name, Started: j.started, Progress: j.progress}
	}
	s.mu.Unlock()
	if j != nil {
		st.Export = s.exportStatus()
		return st, nil
	}
	st, err := statusOf(ctx, s.cfg.Store, last)
	st.Export = s.exportStatus()
	return st, err
}

// statusOf derives a status from what the store holds and the last record.
func statusOf(ctx context.Context, s store.Store, last record) (Status, error) {
	info, err := s.Stat(ctx)
	switch {
	case err == nil:
		st := Status{State: StateReady, Name: info.Name, Size: info.Size, MD5: info.MD5, SHA256: info.SHA256, Finished: info.Created}
		if t, err := time.Parse(time.RFC3339Nano, info.Meta[metaStarted]); err == nil {
			st.Started = t
		}
		st.Oplog, st.Notes = readMeta(info.Meta)
		return st, nil
	case errors.Is(err, store.ErrEmpty):
		if last.State == StateFailed {
			return Status{State: StateFailed, Name: last.Name, Started: last.Started, Finished: last.Finished, Error: last.Error, Code: last.Code}, nil
		}
		return Status{State: StateNone}, nil
	default:
		return Status{}, fmt.Errorf("slot: read the stored backup's status: %w", err)
	}
}

// Wait blocks until the running backup, if any, has ended, and returns the
// status then.
func (s *Slot) Wait(ctx context.Context) (Status, error) {
	s.mu.Lock()
	j := s.job
	s.mu.Unlock()
	if j != nil {
		select {
		case <-j.done:
		case <-ctx.Done():
			return Status{}, ctx.Err()
		}
	}
	if err := s.waitExport(ctx); err != nil {
		return Status{}, err
	}
	return s.Status(ctx)
}

// Cancel stops the running backup, if any, and waits until it has cleaned
// up: the slot is empty and the status is failed ("cancelled"). It is a
// no-op when no backup runs.
func (s *Slot) Cancel(ctx context.Context) error {
	s.mu.Lock()
	j := s.job
	s.mu.Unlock()
	if j == nil {
		return s.cancelExport(ctx)
	}
	j.cancel()
	select {
	case <-j.done:
		return s.cancelExport(ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retrieve writes the stored backup, encrypted as stored, to w.
func (s *Slot) Retrieve(ctx context.Context, w io.Writer) (store.Info, error) {
	return retrieve(ctx, s.cfg.Store, w)
}

// Open opens the stored backup, encrypted as stored, for reading with
// random access: a download that serves byte ranges. store.ErrEmpty when the
// slot is empty.
func (s *Slot) Open(ctx context.Context) (store.Object, error) {
	return open(ctx, s.cfg.Store)
}

// Delete removes the stored backup.
func (s *Slot) Delete(ctx context.Context) error {
	s.mu.Lock()
	running, exporting := s.job != nil, s.exp != nil
	s.mu.Unlock()
	if running {
		return fmt.Errorf("%w: a running backup cannot be deleted", ErrInProgress)
	}
	if exporting {
		return fmt.Errorf("%w: the backup is being exported, and cannot be deleted until the export ends", ErrInProgress)
	}
	if err := s.cfg.Store.Delete(ctx); err != nil {
		if errors.Is(err, store.ErrEmpty) {
			return fmt.Errorf("%w: no backup found, nothing to delete", err)
		}
		return fmt.Errorf("slot: delete the backup: %w", err)
	}
	s.log.Info("backup deleted")
	return s.setRecord(record{State: StateNone})
}

// Close cancels a running backup, waits for it to clean up, and closes the
// Source if it is an io.Closer.
func (s *Slot) Close() error {
	err := s.Cancel(context.Background())
	if c, ok := s.src.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}
