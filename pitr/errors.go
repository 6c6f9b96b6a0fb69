package pitr

import (
	"fmt"
	"strings"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/oplog"
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

	// ErrForeign: an object in the node's prefix is not of the node, or
	// not of the chain it claims to continue: a base backup or a slice that
	// another node wrote (under the same password), one that records no
	// node, a slice of another chain. The message names it. It matches
	// restore.ErrCorrupt too.
	ErrForeign = errcode.Sub(restore.ErrCorrupt, "pitr: an object is not this node's, or not of its chain")

	// ErrClock: the slices end later than the clock of the process that
	// asks: its clock and the node's disagree, so the lag cannot be told.
	// Status reports it while it lasts.
	ErrClock = errcode.New(errcode.Internal, "pitr: the slices end in the future of this clock")

	// ErrInvalid: a setting is malformed or missing; the message names it.
	ErrInvalid = errcode.New(errcode.Invalid, "pitr: invalid settings")

	// ErrNoOplog: the server a Slicer reads keeps no oplog (a standalone
	// server): it is not a replica set member. It is backup.ErrNoOplog too.
	ErrNoOplog = oplog.ErrNoOplog

	// ErrInProgress: the Slicer runs already.
	ErrInProgress = errcode.New(errcode.InProgress, "pitr: the slicer runs already")
)

// own reports whether err's text begins with the package's name already:
// one of its sentinels with details, or a wrap that says what it was
// doing.
func own(err error) bool { return strings.HasPrefix(err.Error(), "pitr: ") }

// named returns err as the package returns it, with a package's name once:
// as it is when it is own, else after the name.
func named(err error) error {
	if own(err) {
		return err
	}
	return fmt.Errorf("pitr: %w", err)
}
