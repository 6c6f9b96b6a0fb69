package pitr

import (
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/restore"
)

// Errors a user can cause, besides those of the packages beneath (such as
// cipher.ErrWrongPassword, store.ErrUnreachable, restore's). Each is
// returned wrapped with details; test for them with errors.Is.
var (
	// ErrNotCovered: no base backup on the remote and the slices after it
	// reach the target of a restore. The message lists the windows that
	// are restorable and the gaps, naming a missing slice.
	ErrNotCovered = errcode.New(errcode.NoBackup, "pitr: the target is in no restorable window")

	// ErrCorruptSlice: an oplog slice fails authentication, or what it
	// holds differs from what its name and metadata say. The message names
	// it. It matches restore.ErrCorrupt too.
	ErrCorruptSlice = errcode.Sub(restore.ErrCorrupt, "pitr: an oplog slice is damaged or was tampered with")

	// ErrInvalid: a setting is malformed or missing; the message names it.
	ErrInvalid = errcode.New(errcode.Invalid, "pitr: invalid settings")

	// ErrInProgress: the Slicer runs already.
	ErrInProgress = errcode.New(errcode.InProgress, "pitr: the slicer runs already")
)
