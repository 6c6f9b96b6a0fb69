package keepslot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
)

// TestErrorCodes checks that every error a user can cause, in every
// package, carries its own code, and that the code survives wrapping.
func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want errcode.Code
	}{
		{nil, errcode.OK},
		{cipher.ErrEmptyPassword, errcode.EmptyPassword},
		{cipher.ErrWrongPassword, errcode.WrongPassword},
		{cipher.ErrCorrupt, errcode.Corrupt},
		{cipher.ErrUnsupportedVersion, errcode.Corrupt},
		{cipher.ErrKDFTooExpensive, errcode.Invalid},
		{store.ErrSlotOccupied, errcode.SlotOccupied},
		{store.ErrBusy, errcode.InProgress},
		{store.ErrEmpty, errcode.NoBackup},
		{store.ErrNotFound, errcode.NoBackup},
		{store.ErrInvalid, errcode.Invalid},
		{store.ErrCorrupt, errcode.Corrupt},
		{store.ErrMismatch, errcode.Corrupt},
		{store.ErrUnreachable, errcode.Unreachable},
		{store.ErrUnauthorized, errcode.Unauthorized},
		{s3store.ErrUnreachable, errcode.Unreachable},
		{s3store.ErrUnauthorized, errcode.Unauthorized},
		{s3store.ErrNoBucket, errcode.Invalid},
		{s3store.ErrConfig, errcode.Invalid},
		{archive.ErrCorrupt, errcode.Corrupt},
		{archive.ErrUnknownFormat, errcode.Corrupt},
		{archive.ErrUnsafePath, errcode.Corrupt},
		{namespace.ErrBadPattern, errcode.Invalid},
		{slot.ErrNotBackupNode, errcode.NotBackupNode},
		{slot.ErrInProgress, errcode.InProgress},
		{slot.ErrInvalid, errcode.Invalid},
		{&slot.SpaceError{Data: 1, Need: 2}, errcode.InsufficientSpace},
		{backup.ErrUnreachable, errcode.Unreachable},
		{backup.ErrUnauthorized, errcode.Unauthorized},
		{backup.ErrOplogRollover, errcode.OplogRollover},
		{backup.ErrNoOplog, errcode.Invalid},
		{backup.ErrSourceChanged, errcode.SourceChanged},
		{backup.ErrDocumentTooLarge, errcode.Invalid},
		{backup.ErrSharded, errcode.Sharded},
		{restore.ErrCorrupt, errcode.Corrupt},
		{restore.ErrCountMismatch, errcode.CountMismatch},
		{restore.ErrNoOplog, errcode.Invalid},
		{restore.ErrInvalid, errcode.Invalid},
		{restore.ErrSlow, errcode.Cancelled},
		{pitr.ErrNotCovered, errcode.NoBackup},
		{pitr.ErrCorruptSlice, errcode.Corrupt},
		{pitr.ErrInvalid, errcode.Invalid},
		{pitr.ErrInProgress, errcode.InProgress},
		{pitr.ErrNoOplog, errcode.Invalid},
		{sensitive.ErrNotRegular, errcode.Invalid},
		{sensitive.ErrTooLarge, errcode.Invalid},
		{sensitive.ErrDuplicate, errcode.Invalid},
		{sensitive.ErrUnsafePath, errcode.Invalid},
		{sensitive.ErrExists, errcode.Exists},
		{sensitive.ErrManifestMismatch, errcode.Corrupt},
		{sensitive.ErrBadName, errcode.Invalid},
		{sensitive.ErrNameConflict, errcode.Invalid},
		{sensitive.ErrInTheWay, errcode.Exists},
		{sensitive.ErrTooMany, errcode.Invalid},
		{sensitive.ErrBusy, errcode.InProgress},
		{restore.ErrDuplicateKey, errcode.DuplicateKey},
		{drill.ErrFailed, errcode.DrillFailed},
		{&drill.Failure{Restore: restore.ErrCorrupt}, errcode.DrillFailed},
		{drill.ErrTargetInUse, errcode.Exists},
		{drill.ErrSourceNamespace, errcode.Exists},
		{drill.ErrInvalid, errcode.Invalid},
		{context.Canceled, errcode.Cancelled},
		{io.ErrUnexpectedEOF, errcode.Internal},
	} {
		wrapped := tc.err
		if tc.err != nil {
			wrapped = fmt.Errorf("outer: %w", tc.err)
		}
		if got := errcode.Of(wrapped); got != tc.want {
			t.Errorf("errcode.Of(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(pitr.ErrCorruptSlice, restore.ErrCorrupt) {
		t.Error("pitr.ErrCorruptSlice does not match restore.ErrCorrupt")
	}
	if pitr.ErrNoOplog != backup.ErrNoOplog || errors.Is(backup.ErrNoOplog, restore.ErrNoOplog) {
		t.Error("pitr.ErrNoOplog is not backup.ErrNoOplog, or matches restore's (a backup without one)")
	}
	if !errors.Is(&slot.SpaceError{}, slot.ErrInsufficientSpace) {
		t.Error("a SpaceError does not match ErrInsufficientSpace")
	}
}
