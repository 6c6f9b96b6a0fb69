// Package pitr gives point-in-time recovery: it copies a node's oplog off
// the node, continuously, in encrypted slices beside the node's exported
// backups, and restores the node to any moment that a base backup and the
// slices after it cover.
//
// A [Slicer] reads the oplog from the newest base backup's consistency
// point on (a tailable cursor on MongoDB; queries on FerretDB) and keeps
// the entries of the namespaces the backups hold, as a backup's capture
// does. Each slice closes after [Config].Interval or [Config].MaxSize and
// goes to the remote as one object, whole or not at all, under
// Prefix/Node/oplog/<from>-<until>.bson: the span of the oplog it holds,
// every entry in scope with from <= ts < until, in mongodump's oplog.bson
// form and encrypted with the package cipher under a [cipher.Key], the
// standing secret that a slicer needs. After a restart or an outage it
// resumes where the last slice on the remote ends, if the oplog still
// holds that point, and otherwise records the gap in its next slice.
//
// [Scan] lists what a remote holds and works out the windows a restore
// can reach, and the gaps; [Restore] restores the node to a time or an
// oplog timestamp within one: the newest base backup before it, with its
// own oplog, then the slices' entries up to it, every slice authenticated
// first. [Prune] deletes the slices no base backup needs.
package pitr
