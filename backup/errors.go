package backup

import (
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/mongodb"
)

// Errors a user can cause, besides those of package slot. Each is returned
// wrapped with details; test for them with errors.Is.
var (
	// ErrUnreachable: the MongoDB server did not answer.
	ErrUnreachable = mongodb.ErrUnreachable

	// ErrUnauthorized: the MongoDB server refused the credentials, or the
	// user lacks a privilege the backup needs (the backup role).
	ErrUnauthorized = mongodb.ErrUnauthorized

	// ErrOplogRollover: the oplog rolled over while the backup ran, so
	// writes made during the backup are lost from it: the oplog is too
	// small for the dump's duration.
	ErrOplogRollover = errcode.New(errcode.OplogRollover, "the oplog rolled over during the backup: it is too small for the dump's duration; enlarge it (replSetResizeOplog), back up when the node takes fewer writes, or set Source.Oplog to ToggleOff for a backup that is not point-in-time")

	// ErrNoOplog: Source.Oplog is on but the server keeps no oplog (a
	// standalone server) or an empty one.
	ErrNoOplog = errcode.New(errcode.Invalid, "no oplog")
)
