package slot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/ctxio"
	"github.com/keepslot/keepslot/store"
)

// ExportConfig copies backups off the node: once a backup is ready in the
// slot, the Slot copies the encrypted object, as stored, to Remote under
// Prefix/Node/<backup name>, and checks that the remote holds the same
// size, MD5 and SHA-256. The slot keeps its backup; the copy is extra.
// [Status].Export shows the copy's progress and result.
type ExportConfig struct {
	// Remote receives the copies, e.g. an s3store.Remote. Required.
	Remote store.Remote

	// Prefix starts every key, e.g. "keepslot"; may be empty.
	Prefix string

	// Node names this node in the keys; default the host name. Nodes that
	// export to one Remote need different names. Backups record it in
	// their manifest (archive.Manifest.Node), which package pitr checks.
	Node string

	// Retention, if set, prunes this node's copies after each successful
	// export. Pruning failures are logged and shown in
	// [ExportStatus].Retention; the export still counts as done.
	Retention *store.Retention
}

// ExportState is where the copy of a backup to the remote stands.
type ExportState string

// The states of an export.
const (
	ExportInProgress ExportState = "in_progress"
	ExportDone       ExportState = "done" // copied and verified
	ExportFailed     ExportState = "failed"
)

// ExportStatus is the last export's state and result.
type ExportStatus struct {
	State    ExportState  `json:"state"`
	Key      string       `json:"key"`              // where the copy goes on the remote
	Bytes    int64        `json:"bytes"`            // copied so far
	Size     int64        `json:"size"`             // of the backup
	MD5      string       `json:"md5,omitempty"`    // verified on the remote, when done
	SHA256   string       `json:"sha256,omitempty"` // verified on the remote, when done
	Started  time.Time    `json:"started,omitzero"`
	Finished time.Time    `json:"finished,omitzero"`
	Error    string       `json:"error,omitempty"`
	Code     errcode.Code `json:"code,omitempty"`
	// Retention is what the pruning after the export did, if any.
	Retention *store.PruneResult `json:"retention,omitempty"`
}

// Exporter is implemented by a Backupper that can copy its backups to a
// remote store (a Slot with [Config].Export set).
type Exporter interface {
	// Export starts copying the stored backup to the remote and returns;
	// Status.Export follows it, Wait waits for it. store.ErrEmpty when
	// the slot is empty, ErrInProgress while a backup or an export runs,
	// ErrInvalid when no remote is configured.
	Export(ctx context.Context) error

	// RemoteList lists this node's copies on the remote, oldest first.
	RemoteList(ctx context.Context) ([]store.Entry, error)

	// OpenRemote opens this node's copy named name (a backup's name) for
	// reading; store.ErrNotFound when there is none.
	OpenRemote(ctx context.Context, name string) (store.Object, error)
}

var _ Exporter = (*Slot)(nil)

// exportJob is a running export.
type exportJob struct {
	cancel context.CancelFunc
	done   chan struct{}
	status ExportStatus // guarded by Slot.mu
}

// exportConfig returns the export settings with defaults, or ErrInvalid.
func (s *Slot) exportConfig() (ExportConfig, error) {
	if s.cfg.Export == nil || s.cfg.Export.Remote == nil {
		return ExportConfig{}, fmt.Errorf("%w: no remote to export to (Config.Export)", ErrInvalid)
	}
	return s.cfg.Export.withDefaults()
}

// withDefaults returns e with its Node defaulted, or ErrInvalid.
func (e ExportConfig) withDefaults() (ExportConfig, error) {
	if e.Node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "node"
		}
		e.Node = h
	}
	if strings.Contains(e.Node, "/") {
		return ExportConfig{}, fmt.Errorf("%w: the export's node name %q contains a slash", ErrInvalid, e.Node)
	}
	return e, nil
}

// exportNode is the name the slot exports its copies under, which its
// backups record in their manifest (archive.Manifest.Node) so that a copy
// on the remote says, under the encryption, which node wrote it: package
// pitr refuses a base backup of another node. Empty without Export.
func (s *Slot) exportNode() string {
	e, err := s.exportConfig()
	if err != nil {
		return ""
	}
	return e.Node
}

// nodePrefix is the key prefix of this node's copies, ending in "/".
func (e ExportConfig) nodePrefix() string {
	return path.Join(e.Prefix, e.Node) + "/"
}

// Export implements Exporter.
func (s *Slot) Export(ctx context.Context) error {
	e, err := s.exportConfig()
	if err != nil {
		return err
	}
	s.mu.Lock()
	busy := s.job != nil || s.exp != nil
	s.mu.Unlock()
	if busy {
		return ErrInProgress
	}
	info, err := s.cfg.Store.Stat(ctx)
	if errors.Is(err, store.ErrEmpty) {
		return fmt.Errorf("%w: no backup found to export; start one first", err)
	}
	if err != nil {
		return fmt.Errorf("slot: export the backup: %w", err)
	}
	return s.startExport(e, info)
}

// startExport starts copying the stored backup, described by info.
func (s *Slot) startExport(e ExportConfig, info store.Info) error {
	ctx, cancel := context.WithCancel(context.Background())
	ej := &exportJob{cancel: cancel, done: make(chan struct{}), status: ExportStatus{
		State: ExportInProgress, Key: e.nodePrefix() + info.Name, Size: info.Size, Started: time.Now().UTC(),
	}}
	s.mu.Lock()
	if s.exp != nil {
		s.mu.Unlock()
		cancel()
		return ErrInProgress
	}
	s.exp = ej
	s.mu.Unlock()
	go s.runExport(ctx, e, ej)
	return nil
}

// runExport copies the stored object to the remote and verifies the copy.
func (s *Slot) runExport(ctx context.Context, e ExportConfig, ej *exportJob) {
	defer close(ej.done)
	defer ej.cancel()
	got, err := s.copyToRemote(ctx, e, ej)
	s.mu.Lock()
	st := ej.status
	s.mu.Unlock()
	st.Finished = time.Now().UTC()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("slot: cancelled: %w", context.Cause(ctx))
		}
		st.State, st.Error, st.Code = ExportFailed, err.Error(), errcode.Of(err)
		s.log.Error("backup export failed", "key", st.Key, "error", err)
	} else {
		st.State, st.MD5, st.SHA256, st.Bytes = ExportDone, got.MD5, got.SHA256, got.Size
		s.log.Info("backup exported", "key", st.Key, "bytes", got.Size, "sha256", got.SHA256,
			"duration", st.Finished.Sub(st.Started).Round(time.Millisecond))
		if e.Retention != nil {
			res, err := store.Prune(ctx, e.Remote, e.nodePrefix(), *e.Retention)
			if err != nil {
				res.Error = err.Error()
				s.log.Error("backup retention failed", "prefix", e.nodePrefix(), "error", err)
			} else {
				s.log.Info("backup retention", "prefix", e.nodePrefix(), "kept", len(res.Keep), "deleted", len(res.Delete), "dry_run", res.DryRun)
			}
			st.Retention = &res
		}
	}
	s.mu.Lock()
	s.exp = nil
	s.lastExport = &st
	s.mu.Unlock()
}

func (s *Slot) copyToRemote(ctx context.Context, e ExportConfig, ej *exportJob) (store.Info, error) {
	obj, err := open(ctx, s.cfg.Store)
	if err != nil {
		return store.Info{}, err
	}
	defer obj.Close()
	info := obj.Info()
	s.mu.Lock()
	key := ej.status.Key
	s.mu.Unlock()
	r := &countingReader{r: ctxio.NewReader(ctx, obj), add: func(n int64) {
		s.mu.Lock()
		ej.status.Bytes += n
		s.mu.Unlock()
	}}
	got, err := e.Remote.Put(ctx, key, r, info)
	if err != nil {
		return store.Info{}, fmt.Errorf("slot: export to %s: %w", key, err)
	}
	if got.Size != info.Size || got.MD5 != info.MD5 || got.SHA256 != info.SHA256 {
		return store.Info{}, fmt.Errorf("%w: export to %s: the remote holds %d bytes, MD5 %s, SHA-256 %s; the slot %d bytes, MD5 %s, SHA-256 %s",
			store.ErrMismatch, key, got.Size, got.MD5, got.SHA256, info.Size, info.MD5, info.SHA256)
	}
	return got, nil
}

type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(int64(n))
	return n, err
}

// exportStatus returns the running or last export's status, or nil.
func (s *Slot) exportStatus() *ExportStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exp != nil {
		st := s.exp.status
		return &st
	}
	if s.lastExport != nil {
		st := *s.lastExport
		return &st
	}
	return nil
}

// waitExport waits for a running export to end.
func (s *Slot) waitExport(ctx context.Context) error {
	s.mu.Lock()
	ej := s.exp
	s.mu.Unlock()
	if ej == nil {
		return nil
	}
	select {
	case <-ej.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cancelExport stops a running export and waits for it.
func (s *Slot) cancelExport(ctx context.Context) error {
	s.mu.Lock()
	ej := s.exp
	s.mu.Unlock()
	if ej == nil {
		return nil
	}
	ej.cancel()
	return s.waitExport(ctx)
}

// exportAfterBackup starts the export of a backup that has just become
// ready, when the Slot exports.
func (s *Slot) exportAfterBackup(info store.Info) {
	if s.cfg.Export == nil {
		return
	}
	e, err := s.exportConfig()
	if err == nil {
		err = s.startExport(e, info)
	}
	if err != nil {
		s.mu.Lock()
		s.lastExport = &ExportStatus{State: ExportFailed, Error: err.Error(), Code: errcode.Of(err), Finished: time.Now().UTC()}
		s.mu.Unlock()
		s.log.Error("backup export not started", "error", err)
	}
}

// NodePrefix is the key prefix, ending in "/", under which e puts this
// node's copies: Prefix/Node/, with Node defaulting to the host name.
// It fails with ErrInvalid for a Node with a slash.
func (e ExportConfig) NodePrefix() (string, error) {
	c, err := e.withDefaults()
	if err != nil {
		return "", err
	}
	return c.nodePrefix(), nil
}

// RemoteList implements Exporter.
func (s *Slot) RemoteList(ctx context.Context) ([]store.Entry, error) {
	e, err := s.exportConfig()
	if err != nil {
		return nil, err
	}
	listed, err := e.Remote.List(ctx, e.nodePrefix())
	if err != nil {
		return nil, fmt.Errorf("slot: list the remote copies: %w", err)
	}
	// The copies are directly under the node's prefix; what is in folders
	// beneath it (the oplog slices of package pitr) is not a backup.
	entries := listed[:0:0]
	for _, en := range listed {
		if !strings.Contains(strings.TrimPrefix(en.Key, e.nodePrefix()), "/") {
			entries = append(entries, en)
		}
	}
	slices.SortStableFunc(entries, func(a, b store.Entry) int {
		return cmp.Or(a.Info.Created.Compare(b.Info.Created), cmp.Compare(a.Key, b.Key))
	})
	return entries, nil
}

// OpenRemote implements Exporter.
func (s *Slot) OpenRemote(ctx context.Context, name string) (store.Object, error) {
	e, err := s.exportConfig()
	if err != nil {
		return nil, err
	}
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return nil, fmt.Errorf("%w: %q is not a backup's name", ErrInvalid, name)
	}
	o, err := e.Remote.Open(ctx, e.nodePrefix()+name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no copy named %q on the remote; list them with backup-list --remote", err, name)
	}
	if err != nil {
		return nil, fmt.Errorf("slot: open the remote copy %q: %w", name, err)
	}
	return o, nil
}
