// Package errcode classifies keepslot's errors into stable, machine-readable
// codes.
//
// Every error a user can cause is, or wraps, a sentinel made by [New] or
// [Sub], which carries its [Code]; [Of] finds the code of any error. The
// sentinels themselves live in the package whose layer finds the failure,
// such as cipher.ErrWrongPassword or store.ErrSlotOccupied: test for them
// with errors.Is, and use [Of] where a program needs one answer for many
// causes, as an HTTP API or a command's exit code does.
//
// Every error text a package returns begins with a package's name, once: a
// sentinel's with its own package's ("slot: a backup is in progress; ..."),
// an error that is a sentinel with details with that sentinel, the details
// after it ("%w: the collection shop.orders ..."), and an error that wraps
// one a call returned with the package's name and what it was doing, never
// a second name of its own ("slot: retrieve the backup: %w"). A package
// under internal/ is none a caller knows, so its texts name no package:
// its sentinels begin with what happened ("the MongoDB server cannot be
// reached; ..."), and the package that returns one, or exports it as its
// own (backup.ErrUnreachable), puts its own name before it ("backup: %w:
// Source.Oplog is on but ..."). Texts say what happened and what to do,
// in lower case, with no final full stop.
package errcode

import (
	"context"
	"errors"
)

// Code is a stable name for a class of failure. New codes may be added;
// existing ones keep their names. The empty code, [OK], means no error.
type Code string

// The codes.
const (
	OK                Code = ""
	EmptyPassword     Code = "empty_password"     // a password is needed
	NotBackupNode     Code = "not_backup_node"    // the node is not in the backup role
	InProgress        Code = "in_progress"        // a backup, export or write is running
	SlotOccupied      Code = "slot_occupied"      // a backup is stored; delete it first
	NoBackup          Code = "no_backup"          // nothing is stored there
	Unreachable       Code = "unreachable"        // a server did not answer
	Unauthorized      Code = "unauthorized"       // a server refused the credentials or a privilege
	InsufficientSpace Code = "insufficient_space" // too little free space
	WrongPassword     Code = "wrong_password"     // the password does not open the backup
	Corrupt           Code = "corrupt"            // the backup is damaged or not keepslot's
	CountMismatch     Code = "count_mismatch"     // a restore wrote other counts than the backup holds
	DuplicateKey      Code = "duplicate_key"      // a restore met documents the target already holds
	OplogRollover     Code = "oplog_rollover"     // the oplog is too small for the backup's duration
	Exists            Code = "exists"             // a restore would replace what it may not
	Invalid           Code = "invalid"            // a malformed option, pattern or name
	Cancelled         Code = "cancelled"          // the context was cancelled or timed out
	Interrupted       Code = "interrupted"        // the process stopped while the backup ran
	SourceChanged     Code = "source_changed"     // a collection was dropped, replaced or its cursor lost while a backup read it
	Sharded           Code = "sharded"            // the server is a mongos or a member of a sharded cluster
	DrillFailed       Code = "drill_failed"       // a restore drill found the restored data differ from the backup
	Internal          Code = "internal"           // anything else: the message says what
)

// Coded is implemented by errors that carry their own [Code].
type Coded interface {
	error
	ErrorCode() Code
}

// Of returns the code of the first error in err's tree that carries one,
// [Cancelled] for a cancelled or expired context, [Internal] for any other
// error, and [OK] for nil.
func Of(err error) Code {
	var c Coded
	switch {
	case err == nil:
		return OK
	case errors.As(err, &c):
		return c.ErrorCode()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Cancelled
	default:
		return Internal
	}
}

// New returns a sentinel error with the given text and code.
func New(code Code, text string) error { return &sentinel{text: text, code: code} }

// Sub returns a sentinel error for a narrower case of parent: it has parent's
// code, and errors.Is matches it with parent as well as with itself.
func Sub(parent error, text string) error {
	return &sentinel{text: text, code: Of(parent), parent: parent}
}

type sentinel struct {
	text   string
	code   Code
	parent error
}

func (e *sentinel) Error() string        { return e.text }
func (e *sentinel) ErrorCode() Code      { return e.code }
func (e *sentinel) Is(target error) bool { return e.parent != nil && errors.Is(e.parent, target) }
