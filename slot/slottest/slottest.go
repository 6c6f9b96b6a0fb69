// Package slottest provides a fake [slot.Backupper] with scripted states
// and errors, so that programs embedding keepslot can unit-test their own
// code without a database.
//
// A Fake behaves like a real single slot: Start refuses an empty password, a
// node outside the backup role, a running backup and an occupied slot with
// the same typed errors as a [slot.Slot]; a started backup stays in progress
// until the test calls Finish or Fail, or the code under test calls Cancel,
// and Wait blocks until then. Each verb's error can be forced.
package slottest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// Fake is a scripted [slot.Backupper]. Its zero value is not usable; call
// New. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	status   slot.Status
	data     []byte
	notRole  bool
	errs     map[string]error
	calls    []string
	password []byte
	done     chan struct{} // closed when the running backup ends
}

var _ slot.Backupper = (*Fake)(nil)

// New returns a Fake with an empty slot on a node in the backup role.
func New() *Fake {
	return &Fake{status: slot.Status{State: slot.StateNone}, errs: map[string]error{}}
}

// SetRole puts the fake node in or out of the backup role.
func (f *Fake) SetRole(isBackup bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notRole = !isBackup
}

// FailNext makes the next call of verb ("Start", "Status", "Retrieve",
// "Delete", "Wait", "Cancel" or "Open") return err.
func (f *Fake) FailNext(verb string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[verb] = err
}

// Finish completes the running backup with data as its stored bytes: the
// slot becomes ready with data's size, md5 and sha256.
func (f *Fake) Finish(data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, s := md5.Sum(data), sha256.Sum256(data)
	f.data = append([]byte(nil), data...)
	f.status.State = slot.StateReady
	f.status.Size = int64(len(data))
	f.status.MD5 = hex.EncodeToString(m[:])
	f.status.SHA256 = hex.EncodeToString(s[:])
	f.status.Finished = time.Now().UTC()
	f.end()
}

// Fail ends the running backup as failed because of err: the status
// carries its message and errcode.Of(err); the slot is empty.
func (f *Fake) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failLocked(err.Error(), errcode.Of(err))
}

func (f *Fake) failLocked(reason string, code errcode.Code) {
	f.status = slot.Status{State: slot.StateFailed, Name: f.status.Name, Started: f.status.Started,
		Finished: time.Now().UTC(), Error: reason, Code: code}
	f.end()
}

// end wakes the callers of Wait. f.mu is held.
func (f *Fake) end() {
	if f.done != nil {
		close(f.done)
		f.done = nil
	}
}

// SetProgress sets the running backup's progress.
func (f *Fake) SetProgress(p archive.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Progress = p
}

// Calls lists the verbs called so far, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Password returns the password the last successful Start received, so a
// test can check what its code passed on.
func (f *Fake) Password() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.password...)
}

// call records verb and returns its forced error, if any. f.mu is held.
func (f *Fake) call(verb string) error {
	f.calls = append(f.calls, verb)
	err := f.errs[verb]
	delete(f.errs, verb)
	return err
}

// Start starts a scripted backup, which stays in progress until Finish or
// Fail.
func (f *Fake) Start(ctx context.Context, password []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Start"); err != nil {
		return err
	}
	switch {
	case len(password) == 0:
		return fmt.Errorf("%w: a backup is encrypted under a password; give one", cipher.ErrEmptyPassword)
	case f.notRole:
		return slot.ErrNotBackupNode
	case f.status.State == slot.StateInProgress:
		return slot.ErrInProgress
	case f.status.State == slot.StateReady:
		return fmt.Errorf("slot: start a backup: %w", store.ErrSlotOccupied)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	now := time.Now().UTC()
	f.password = append([]byte(nil), password...)
	f.status = slot.Status{State: slot.StateInProgress, Name: "backup-" + now.Format("2006-01-02T15-04-05Z") + ".tar.gz", Started: now}
	f.done = make(chan struct{})
	return nil
}

// Wait blocks until the running backup ends by Finish, Fail or Cancel, or
// ctx is done, and returns the status then.
func (f *Fake) Wait(ctx context.Context) (slot.Status, error) {
	f.mu.Lock()
	if err := f.call("Wait"); err != nil {
		f.mu.Unlock()
		return slot.Status{}, err
	}
	done := f.done
	f.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return slot.Status{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

// Cancel ends a running backup as failed with errcode.Cancelled, as a
// real Backupper does; it is a no-op when none runs.
func (f *Fake) Cancel(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Cancel"); err != nil {
		return err
	}
	if f.status.State == slot.StateInProgress {
		f.failLocked("slot: cancelled: context canceled", errcode.Cancelled)
	}
	return nil
}

// Open opens the data given to Finish for reading, as a store.Object.
func (f *Fake) Open(ctx context.Context) (store.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Open"); err != nil {
		return nil, err
	}
	if f.status.State != slot.StateReady {
		return nil, fmt.Errorf("%w: no backup found; start one first", store.ErrEmpty)
	}
	return &object{Reader: bytes.NewReader(f.data), info: f.info()}, nil
}

// info describes the finished backup. f.mu is held.
func (f *Fake) info() store.Info {
	st := f.status
	return store.Info{Name: st.Name, Size: st.Size, MD5: st.MD5, SHA256: st.SHA256, Created: st.Finished, Meta: map[string]string{}}
}

// object is a finished backup's data open for reading.
type object struct {
	*bytes.Reader
	info store.Info
}

func (o *object) Info() store.Info { return o.info }
func (o *object) Close() error     { return nil }

// Status returns the scripted status.
func (f *Fake) Status(ctx context.Context) (slot.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Status"); err != nil {
		return slot.Status{}, err
	}
	return f.status, nil
}

// Retrieve writes the data given to Finish.
func (f *Fake) Retrieve(ctx context.Context, w io.Writer) (store.Info, error) {
	f.mu.Lock()
	if err := f.call("Retrieve"); err != nil {
		f.mu.Unlock()
		return store.Info{}, err
	}
	if f.status.State != slot.StateReady {
		f.mu.Unlock()
		return store.Info{}, fmt.Errorf("%w: no backup found; start one first", store.ErrEmpty)
	}
	info, data := f.info(), f.data
	f.mu.Unlock()
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		return info, fmt.Errorf("slot: retrieve the backup: %w", err)
	}
	return info, nil
}

// Delete empties the slot.
func (f *Fake) Delete(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Delete"); err != nil {
		return err
	}
	switch f.status.State {
	case slot.StateInProgress:
		return fmt.Errorf("%w: a running backup cannot be deleted", slot.ErrInProgress)
	case slot.StateReady:
		f.status, f.data = slot.Status{State: slot.StateNone}, nil
		return nil
	default:
		return fmt.Errorf("%w: no backup found, nothing to delete", store.ErrEmpty)
	}
}
