// Package backup backs up a MongoDB node into a single encrypted slot and
// restores it: the appliance's backup, backup-status, backup-retrieve and
// backup-delete verbs as a Go interface, plus the restore it lacked.
//
// A [Mongo] backupper dumps every database of a node except local and config
// (like mongodump), collections in parallel, into an archive (package
// archive), encrypts it (package cipher) and writes it into a single slot
// (package store), which hashes what it stores. The slot holds one backup at
// a time; a new one needs the old one deleted. Only a node in the backup role
// ([Role], "set-as-backup") may be backed up, and only when the slot's
// filesystem has at least twice the node's data free.
//
// [Restore] reads a retrieved file back into MongoDB after authenticating all
// of it, so a wrong password or a corrupt file writes nothing.
//
// Package backuptest has a scripted fake [Backupper] for unit tests of
// programs that embed keepslot.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/store"
)

// Backupper is the four verbs of a single-slot backup.
type Backupper interface {
	// Start checks that a backup can be made and starts it in the
	// background; it returns as soon as the backup is under way. The checks
	// fail with a typed error: ErrEmptyPassword, ErrNotBackupNode,
	// ErrInProgress, ErrSlotOccupied, ErrUnreachable, ErrInsufficientSpace.
	Start(ctx context.Context, password []byte) error

	// Status reports the slot's state: none, in progress, ready or failed.
	Status(ctx context.Context) (Status, error)

	// Retrieve writes the stored backup, encrypted as stored, to w and
	// returns its Info (name, size, md5, sha256). ErrNoBackup when the slot
	// is empty.
	Retrieve(ctx context.Context, w io.Writer) (store.Info, error)

	// Delete removes the stored backup, so that a new one can be made.
	// ErrNoBackup when the slot is empty, ErrInProgress while one runs.
	Delete(ctx context.Context) error
}

// Errors a user can cause. Each is returned wrapped with details; test for
// them with errors.Is.
var (
	// ErrEmptyPassword: a backup needs a password.
	ErrEmptyPassword = cipher.ErrEmptyPassword

	// ErrNotBackupNode: the node is not in the backup role.
	ErrNotBackupNode = errors.New("this node is not in the backup role; run set-as-backup first")

	// ErrInProgress: a backup is running; wait for it or cancel it.
	ErrInProgress = errors.New("a backup is in progress; wait for it to finish or cancel it")

	// ErrSlotOccupied: a backup is stored; delete it first.
	ErrSlotOccupied = store.ErrSlotOccupied

	// ErrNoBackup: the slot is empty.
	ErrNoBackup = store.ErrEmpty

	// ErrUnreachable: the MongoDB server did not answer.
	ErrUnreachable = errors.New("the MongoDB server cannot be reached; check that it runs and the URI")

	// ErrInsufficientSpace: the slot's filesystem has less free space than
	// twice the data. The error is a *SpaceError with both numbers.
	ErrInsufficientSpace = errors.New("not enough free disk space for a backup")

	// ErrWrongPassword: the password does not open the backup.
	ErrWrongPassword = cipher.ErrWrongPassword

	// ErrCorrupt: the backup file fails authentication or its archive is
	// malformed.
	ErrCorrupt = cipher.ErrCorrupt

	// ErrCountMismatch: a restore wrote a different number of documents than
	// the archive's manifest records.
	ErrCountMismatch = errors.New("restored document count differs from the backup's manifest")
)

// SpaceError reports the free-disk rule's numbers. It matches
// ErrInsufficientSpace.
type SpaceError struct {
	Data int64 // bytes of data to back up
	Need int64 // bytes needed: twice Data
	Free int64 // bytes free where the slot writes
}

// Error says how much space the backup needs and how much there is.
func (e *SpaceError) Error() string {
	return fmt.Sprintf("not enough free disk space for a backup: the data is %s, so %s must be free, but only %s is; free some space or move the slot",
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
