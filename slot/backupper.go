// Package slot keeps one encrypted backup at a time: the appliance's
// backup, backup-status, backup-retrieve and backup-delete verbs over any
// [Source].
//
// A [Slot] claims its store, checks the node's backup [Role] and the rule
// that twice the data must be free, and writes the backup in the
// background: the Source's collections into an archive (package archive),
// encrypted (package cipher), into the single slot (package store), which
// hashes what it stores. It records how the last backup ended in its state
// directory, so that the truth survives a restart, and can copy each backup
// off the node ([ExportConfig]). Package backup gives a Slot over a MongoDB
// node and package sensitive one over secrets.
//
// Package slottest has a scripted fake [Backupper] for unit tests of
// programs that embed keepslot.
package slot

import (
	"context"
	"fmt"
	"io"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/store"
)

// Backupper is the single-slot backup's verbs.
type Backupper interface {
	// Start checks that a backup can be made and starts it in the
	// background; it returns as soon as the backup is under way. The checks
	// fail with cipher.ErrEmptyPassword, ErrNotBackupNode, ErrInProgress,
	// store.ErrSlotOccupied, ErrInsufficientSpace, or the Source's errors
	// (for a MongoDB node: backup.ErrUnreachable, backup.ErrUnauthorized,
	// backup.ErrNoOplog).
	Start(ctx context.Context, password []byte) error

	// Status reports the slot's state: none, in progress, ready or failed.
	Status(ctx context.Context) (Status, error)

	// Retrieve writes the stored backup, encrypted as stored, to w and
	// returns its Info (name, size, md5, sha256). store.ErrEmpty when the
	// slot is empty.
	Retrieve(ctx context.Context, w io.Writer) (store.Info, error)

	// Delete removes the stored backup, so that a new one can be made.
	// store.ErrEmpty when the slot is empty, ErrInProgress while a backup
	// or an export runs.
	Delete(ctx context.Context) error

	// Wait blocks until the running backup, if any, has ended (or ctx is
	// done) and returns the status then.
	Wait(ctx context.Context) (Status, error)

	// Cancel stops the running backup, if any, and waits until it has
	// cleaned up: the slot is empty and the status is failed
	// (errcode.Cancelled). It is a no-op when no backup runs.
	Cancel(ctx context.Context) error

	// Open opens the stored backup, encrypted as stored, for streaming or
	// ranged reads (an HTTP download that resumes). The caller closes it.
	// store.ErrEmpty when the slot is empty.
	Open(ctx context.Context) (store.Object, error)
}

// SpaceError reports the free-disk rule's numbers. It matches
// [ErrInsufficientSpace].
type SpaceError struct {
	Data int64 // bytes of data to back up
	Need int64 // bytes needed: twice Data
	Free int64 // bytes free where the slot writes
}

// Error says how much space the backup needs and how much there is.
func (e *SpaceError) Error() string {
	return fmt.Sprintf("slot: not enough free disk space for a backup: the data is %s, so %s must be free, but only %s is; free some space or move the slot",
		humanBytes(e.Data), humanBytes(e.Need), humanBytes(e.Free))
}

// Is reports whether target is ErrInsufficientSpace.
func (e *SpaceError) Is(target error) bool { return target == ErrInsufficientSpace }

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTPE"[exp], n)
}

// ErrorCode returns errcode.InsufficientSpace.
func (e *SpaceError) ErrorCode() errcode.Code { return errcode.InsufficientSpace }
