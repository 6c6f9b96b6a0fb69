package restore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/mongodb"
)

// Errors a user can cause, besides cipher's (cipher.ErrWrongPassword) and
// namespace's. Each is returned wrapped with details; test for them with
// errors.Is.
var (
	// ErrCorrupt: the backup does not restore. What is beneath it names
	// the layer that found the damage: cipher.ErrCorrupt for a file that
	// fails authentication, archive.ErrCorrupt for an authenticated file
	// whose archive cannot be read (written by a compression or format
	// Run was not given, or by a faulty writer), or a malformed oplog.
	ErrCorrupt = errcode.New(errcode.Corrupt, "restore: the backup cannot be read")

	// ErrDuplicateKey: the target already holds a document of the backup
	// (the same _id, or the same value of a unique index).
	ErrDuplicateKey = errcode.New(errcode.DuplicateKey, "restore: the target already holds documents of the backup; restore with Drop, into new namespaces (Renames), or with SkipDuplicates to keep the target's")

	// ErrCountMismatch: a restore wrote another number of documents than
	// the backup's manifest records.
	ErrCountMismatch = errcode.New(errcode.CountMismatch, "restore: the restored document count differs from the backup's manifest")

	// ErrNoOplog: Options.OplogReplay is ReplayRequired but the backup holds no oplog.
	ErrNoOplog = errcode.New(errcode.Invalid, "restore: the backup holds no oplog")

	// ErrInvalid: an option is malformed; the message names it.
	ErrInvalid = errcode.New(errcode.Invalid, "restore: invalid options")

	// ErrUnreachable: the MongoDB server did not answer.
	ErrUnreachable = mongodb.ErrUnreachable

	// ErrSlow: a write of the oplog's replay got no answer within
	// Options.Conn.OperationTimeout while the server answers pings: it is busy
	// or the write heavy; raise OperationTimeout.
	ErrSlow = mongodb.ErrSlow

	// ErrUnauthorized: the MongoDB server refused the credentials, or the
	// user lacks a privilege the restore needs (the restore role).
	ErrUnauthorized = mongodb.ErrUnauthorized
)

// corrupt marks damage that the cipher or archive layer found as
// ErrCorrupt too, so that a caller needs one test for "this backup does
// not restore"; the layer's own error stays beneath it.
func corrupt(err error) error {
	damaged := errors.Is(err, cipher.ErrCorrupt) || errors.Is(err, cipher.ErrUnsupportedVersion) ||
		errors.Is(err, archive.ErrCorrupt) || errors.Is(err, archive.ErrUnknownFormat)
	if damaged && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// own reports whether err's text begins with the package's name already:
// one of its sentinels with details, which a wrap inside the package
// leaves first rather than name the package twice.
func own(err error) bool { return strings.HasPrefix(err.Error(), "restore: ") }

// named returns err as Run returns it, with the package's name once: as it
// is when it is own, else after the name and what the restore was doing,
// if what is not empty.
func named(what string, err error) error {
	switch {
	case own(err):
		return err
	case what == "":
		return fmt.Errorf("restore: %w", err)
	}
	return fmt.Errorf("restore: %s: %w", what, err)
}
