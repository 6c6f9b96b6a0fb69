package backup

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/store"
)

// Errors a user can cause. Each is returned wrapped with details; test for
// them with errors.Is, or classify any error with Code.
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

	// ErrUnauthorized: the MongoDB server refused the credentials, or the
	// user lacks a privilege the backup or restore needs.
	ErrUnauthorized = errors.New("the MongoDB server refused the credentials or a privilege; check the user and password in the URI and the user's roles (backup needs the backup role, restore the restore role)")

	// ErrInsufficientSpace: the slot's filesystem has less free space than
	// twice the data. The error is a *SpaceError with both numbers.
	ErrInsufficientSpace = errors.New("not enough free disk space for a backup")

	// ErrWrongPassword: the password does not open the backup.
	ErrWrongPassword = cipher.ErrWrongPassword

	// ErrCorrupt: the backup file fails authentication, or an authenticated
	// file holds an archive that cannot be read (one written by a
	// compression or format Restore was not given, or by a faulty writer).
	// Errors that match it may also match cipher.ErrCorrupt or
	// archive.ErrCorrupt, which say where the damage is.
	ErrCorrupt = cipher.ErrCorrupt

	// ErrInvalid: a configuration or option is malformed, such as a
	// namespace pattern or a rename; the message names it.
	ErrInvalid = errors.New("invalid configuration")

	// ErrCountMismatch: a restore wrote a different number of documents than
	// the archive's manifest records.
	ErrCountMismatch = errors.New("restored document count differs from the backup's manifest")

	// ErrOplogRollover: the oplog rolled over while the backup ran: its
	// oldest entry is newer than the backup's start, so writes made during
	// the backup are lost from it and the backup cannot be made consistent.
	// The oplog is too small for the dump's duration.
	ErrOplogRollover = errors.New("the oplog rolled over during the backup: it is too small for the dump's duration; enlarge it (replSetResizeOplog), back up when the node takes fewer writes, or set Config.Oplog to Off for a backup that is not point-in-time")

	// ErrNoOplog: an oplog was asked for (Config.Oplog or
	// RestoreOptions.OplogReplay set to On) where there is none: a
	// standalone server, a server that keeps none, or a backup made
	// without one.
	ErrNoOplog = errors.New("no oplog")
)

// MongoDB's error codes for a refused login and a missing privilege.
const (
	codeUnauthorized         = 13
	codeAuthenticationFailed = 18
)

// serverError classifies an error of the MongoDB driver: ErrUnauthorized
// when the server refused the login or a privilege, else ErrUnreachable.
// The driver's error stays in the chain.
func serverError(err error) error {
	if isAuthError(err) {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

func isAuthError(err error) bool {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorCode(codeUnauthorized) || se.HasErrorCode(codeAuthenticationFailed)) {
		return true
	}
	var de driver.Error
	return errors.As(err, &de) && (de.Code == codeUnauthorized || de.Code == codeAuthenticationFailed)
}

// restoreError marks what an archive reader reports about an authenticated
// file as ErrCorrupt too, so that a caller needs one test for "this backup
// does not restore".
func restoreError(err error) error {
	if errors.Is(err, archive.ErrCorrupt) || errors.Is(err, archive.ErrUnknownFormat) {
		if !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	return err
}

// ErrorCode is a stable, machine-readable name for a class of failure:
// what Status.Code holds for a failed backup, what keepslotd answers in its
// error bodies, and what keepslotctl turns into its exit codes. The empty
// code means no error.
type ErrorCode string

// The error codes. New codes may be added; existing ones keep their names.
const (
	CodeOK                ErrorCode = ""
	CodeEmptyPassword     ErrorCode = "empty_password"     // ErrEmptyPassword
	CodeNotBackupNode     ErrorCode = "not_backup_node"    // ErrNotBackupNode
	CodeInProgress        ErrorCode = "in_progress"        // ErrInProgress, store.ErrBusy
	CodeSlotOccupied      ErrorCode = "slot_occupied"      // ErrSlotOccupied
	CodeNoBackup          ErrorCode = "no_backup"          // ErrNoBackup
	CodeUnreachable       ErrorCode = "unreachable"        // ErrUnreachable, store.ErrUnreachable (a remote store)
	CodeUnauthorized      ErrorCode = "unauthorized"       // ErrUnauthorized, store.ErrUnauthorized (a remote store)
	CodeInsufficientSpace ErrorCode = "insufficient_space" // ErrInsufficientSpace
	CodeWrongPassword     ErrorCode = "wrong_password"     // ErrWrongPassword
	CodeCorrupt           ErrorCode = "corrupt"            // ErrCorrupt, archive.ErrCorrupt, archive.ErrUnknownFormat, cipher.ErrUnsupportedVersion
	CodeCountMismatch     ErrorCode = "count_mismatch"     // ErrCountMismatch
	CodeOplogRollover     ErrorCode = "oplog_rollover"     // ErrOplogRollover
	CodeExists            ErrorCode = "exists"             // a restore would replace data it was not allowed to
	CodeInvalid           ErrorCode = "invalid"            // a malformed option, pattern or name
	CodeCancelled         ErrorCode = "cancelled"          // the context was cancelled or timed out
	CodeInterrupted       ErrorCode = "interrupted"        // the process stopped while the backup ran
	CodeInternal          ErrorCode = "internal"           // anything else: the message says what
)

// Coded is implemented by errors that carry their own ErrorCode, so that
// packages built on this one (such as sensitive) classify their errors
// for Code.
type Coded interface {
	error
	ErrorCode() ErrorCode
}

// Code classifies err. Every typed error of packages backup, store, cipher
// and archive that a user can cause has its own code, as does any error in
// err's chain that implements Coded; others are CodeInternal, and nil is
// CodeOK.
func Code(err error) ErrorCode {
	var coded Coded
	switch {
	case err == nil:
		return CodeOK
	case errors.As(err, &coded):
		return coded.ErrorCode()
	case errors.Is(err, ErrEmptyPassword):
		return CodeEmptyPassword
	case errors.Is(err, ErrNotBackupNode):
		return CodeNotBackupNode
	case errors.Is(err, ErrInProgress), errors.Is(err, store.ErrBusy):
		return CodeInProgress
	case errors.Is(err, ErrSlotOccupied):
		return CodeSlotOccupied
	case errors.Is(err, ErrNoBackup):
		return CodeNoBackup
	case errors.Is(err, ErrInsufficientSpace):
		return CodeInsufficientSpace
	case errors.Is(err, ErrUnauthorized), errors.Is(err, store.ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrUnreachable), errors.Is(err, store.ErrUnreachable):
		return CodeUnreachable
	case errors.Is(err, ErrWrongPassword):
		return CodeWrongPassword
	case errors.Is(err, ErrCorrupt), errors.Is(err, archive.ErrCorrupt), errors.Is(err, archive.ErrUnknownFormat),
		errors.Is(err, cipher.ErrUnsupportedVersion):
		return CodeCorrupt
	case errors.Is(err, ErrCountMismatch):
		return CodeCountMismatch
	case errors.Is(err, ErrOplogRollover):
		return CodeOplogRollover
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeCancelled
	case errors.Is(err, store.ErrInvalid), errors.Is(err, cipher.ErrKDFTooExpensive), errors.Is(err, ErrInvalid), errors.Is(err, ErrNoOplog):
		return CodeInvalid
	default:
		return CodeInternal
	}
}

// HTTPStatus is the HTTP status an API answers with for the code: 400 for a
// request that cannot succeed as sent, 404 for no backup, 409 for a slot
// in the wrong state, 422 for a backup that does not open, 502 and 503 for
// a database that refuses or does not answer, 507 for too little space
// (on the slot's disk, or in the server's oplog).
func (c ErrorCode) HTTPStatus() int {
	switch c {
	case CodeOK:
		return http.StatusOK
	case CodeEmptyPassword, CodeInvalid:
		return http.StatusBadRequest
	case CodeNoBackup:
		return http.StatusNotFound
	case CodeNotBackupNode, CodeInProgress, CodeSlotOccupied, CodeExists:
		return http.StatusConflict
	case CodeWrongPassword, CodeCorrupt, CodeCountMismatch:
		return http.StatusUnprocessableEntity
	case CodeUnauthorized:
		return http.StatusBadGateway
	case CodeUnreachable, CodeCancelled, CodeInterrupted:
		return http.StatusServiceUnavailable
	case CodeInsufficientSpace, CodeOplogRollover:
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

// ExitCode is the process exit code a command-line tool ends with for the
// code, so that scripts can tell failures apart:
//
//	0  success              5  no backup
//	1  any other failure    6  wrong password, corrupt backup, count mismatch
//	2  usage                7  credentials refused
//	3  not in backup role   8  server or agent unreachable
//	4  busy, occupied, or   9  not enough free space
//	   restore target exists 10 oplog too small for the backup's duration
func (c ErrorCode) ExitCode() int {
	switch c {
	case CodeOK:
		return 0
	case CodeEmptyPassword, CodeInvalid:
		return 2
	case CodeNotBackupNode:
		return 3
	case CodeInProgress, CodeSlotOccupied, CodeExists:
		return 4
	case CodeNoBackup:
		return 5
	case CodeWrongPassword, CodeCorrupt, CodeCountMismatch:
		return 6
	case CodeUnauthorized:
		return 7
	case CodeUnreachable:
		return 8
	case CodeInsufficientSpace:
		return 9
	case CodeOplogRollover:
		return 10
	default:
		return 1
	}
}
