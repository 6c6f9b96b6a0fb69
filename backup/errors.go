package backup

import (
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
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
	ErrOplogRollover = errcode.New(errcode.OplogRollover, "backup: the oplog rolled over during the backup: it is too small for the dump's duration; enlarge it (replSetResizeOplog), back up when the node takes fewer writes, or set Source.Oplog to ToggleOff for a backup that is not point-in-time")

	// ErrSourceChanged: a collection was dropped, or dropped and created
	// again, while the backup read it, or the server ended the cursor that
	// read it: what was read may be a part of it, so the backup fails
	// rather than hold it as the whole. Run the backup again.
	ErrSourceChanged = errcode.New(errcode.SourceChanged, "backup: the source changed while it was read")

	// ErrDocumentTooLarge: the node holds a document larger than a restore
	// reads (archive.MaxDocumentSize); the message names its namespace and
	// _id. A MongoDB server refuses such documents; FerretDB keeps them.
	ErrDocumentTooLarge = errcode.New(errcode.Invalid, "backup: a document is too large to be restored")

	// ErrSharded: the server is a mongos, or a member of a sharded
	// cluster's shard or config server replica set. A backup holds one
	// replica set or standalone node; a cluster needs one that is
	// consistent across its shards (see docs/sharding.md).
	ErrSharded = errcode.New(errcode.Sharded, "backup: the server belongs to a sharded cluster, which keepslot does not back up: keepslot backs up one replica set or standalone node; a sharded cluster needs every shard and the config servers backed up to one common cluster time with the balancer stopped (see keepslot's docs/sharding.md), which mongodump does not do either; back up with a tool made for clusters, such as Percona Backup for MongoDB or MongoDB's Ops Manager or Atlas backups")

	// ErrNoOplog: Source.Oplog is on but the server keeps no oplog (a
	// standalone server) or an empty one. It is pitr.ErrNoOplog too.
	ErrNoOplog = oplog.ErrNoOplog
)
