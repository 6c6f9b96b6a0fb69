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
// standing secret that a slicer needs. The slice ends with its record,
// authenticated with its entries: its span, the node's name, the previous
// slice's end and SHA-256 (its chain), the base backup a chain's first
// slice continues, and the entries read but stored in no slice. After a
// restart or an outage the slicer resumes where the newest slice on the
// remote that authenticates under its key ends, if the oplog still holds
// that point, and otherwise records the gap in its next slice; objects it
// cannot authenticate it passes over and reports ([Status].Ignored).
//
// The bucket is not trusted: its writers may delete objects, which a
// restore then reports (not covered, or refused), but cannot make a
// restore use another node's or chain's object, a planted one or a
// renamed one. [Scan] lists what a remote holds, from names and metadata,
// and works out the windows a restore can reach, and the gaps; [Restore]
// restores the node to a time or an oplog timestamp within one: the newest
// base backup of this node before it (its manifest names the node,
// archive.Manifest.Node), with its own oplog, then the slices' entries up
// to it, planned on what authenticates, with what it refused in
// [Report].Refused. [Prune] deletes the slices no base backup needs.
package pitr
