package slot

import "github.com/keepslot/keepslot/errcode"

// Errors a user can cause. Each is returned wrapped with details; test for
// them with errors.Is.
var (
	// ErrNotBackupNode: the node is not in the backup role.
	ErrNotBackupNode = errcode.New(errcode.NotBackupNode, "slot: this node is not in the backup role; run set-as-backup first")

	// ErrInProgress: a backup or an export is running; wait for it to end
	// or cancel it.
	ErrInProgress = errcode.New(errcode.InProgress, "slot: a backup or its export is in progress; wait for it to finish or cancel it")

	// ErrInsufficientSpace: the slot's filesystem has less free space than
	// twice the data. The error is a *SpaceError with the numbers.
	ErrInsufficientSpace = errcode.New(errcode.InsufficientSpace, "slot: not enough free disk space for a backup")

	// ErrInvalid: a setting of the slot, such as its export, is malformed;
	// the message names it.
	ErrInvalid = errcode.New(errcode.Invalid, "slot: invalid configuration")
)
