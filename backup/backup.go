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
// A backup of a replica set member captures the oplog written while it runs
// (Config.Oplog) and Restore replays it (RestoreOptions.OplogReplay), so that
// the restored data is consistent as of the capture's end, the backup's
// consistency point (Status.Oplog, Status.ConsistentAt); an oplog too small
// for the dump's duration fails the backup with ErrOplogRollover. A full
// backup also holds the users and roles (Config.UsersAndRoles), which Restore
// merges into the server's. The README's Consistency section gives the
// guarantee and its limits.
//
// Package backuptest has a scripted fake [Backupper] for unit tests of
// programs that embed keepslot.
package backup

import (
	"context"
	"fmt"
	"io"

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

	// Wait blocks until the running backup, if any, has ended (or ctx is
	// done) and returns the status then.
	Wait(ctx context.Context) (Status, error)

	// Cancel stops the running backup, if any, and waits until it has
	// cleaned up: the slot is empty and the status is failed
	// (CodeCancelled). It is a no-op when no backup runs.
	Cancel(ctx context.Context) error

	// Open opens the stored backup, encrypted as stored, for streaming or
	// ranged reads (an HTTP download that resumes). The caller closes it.
	// ErrNoBackup when the slot is empty.
	Open(ctx context.Context) (store.Object, error)
}

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
