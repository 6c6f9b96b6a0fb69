// Package keepslot is an SDK for encrypted, single-slot backups of a MongoDB
// node and of the secrets that belong to it.
//
// A node keeps exactly one backup at a time: a new one may be made only after
// the old one is deleted. Only a node put in the backup role may be backed up,
// and it needs free disk of at least twice the size of its data. Every backup
// is encrypted with AES-256 in CTR mode under a key derived from the
// operator's password, and authenticated, so that a wrong password or a
// single flipped bit is reported before any data is restored. A decrypted
// backup is an archive in mongodump's layout, which the stock mongorestore
// reads.
//
// keepslot is modelled on the backup CLI of a database appliance, "the
// appliance" in these docs, whose verbs were backup, backup-status,
// backup-retrieve and backup-delete, the same four for backup-sensitive,
// and set-as-backup. It adds restore, authenticated encryption,
// restorability with stock tools, progress reports and test kits.
//
// # Packages
//
// A backup flows one way, MongoDB -> archive -> cipher -> store, and a
// restore back:
//
//   - [github.com/keepslot/keepslot/backup]: the MongoDB node as a slot's
//     source, with its users and roles and the oplog written while it is
//     read, so that the backup restores consistent as of one moment.
//   - [github.com/keepslot/keepslot/slot]: the single slot's verbs (Start,
//     Status, Retrieve, Delete, Wait, Cancel, Open) over any source, the
//     backup role, the free-disk rule, and export of each backup to a
//     remote store; slot/slottest is a scripted fake for consumers' tests.
//   - [github.com/keepslot/keepslot/restore]: a retrieved backup back into
//     MongoDB, with the oplog's replay and the users' merge.
//   - [github.com/keepslot/keepslot/pitr]: point-in-time recovery: the
//     oplog copied off the node in encrypted slices beside the exported
//     backups, and a restore to any moment a base backup and the slices
//     after it cover.
//   - [github.com/keepslot/keepslot/sensitive]: secrets such as encryption
//     keys, kept out of the main backup, in a slot of their own under a
//     password of their own.
//   - [github.com/keepslot/keepslot/archive]: tar in mongodump's directory
//     layout and mongodump's --archive format, gzip, zstd or none, or an
//     embedder's own; archive/archivetest checks them.
//   - [github.com/keepslot/keepslot/cipher]: the authenticated AES-256-CTR
//     stream with scrypt-derived keys, specified in cipher/FORMAT.md.
//   - [github.com/keepslot/keepslot/store]: the slot on disk or in memory,
//     with the MD5 and SHA-256 of what it holds, remotes for off-node copies
//     and their retention; store/storetest is a conformance suite and
//     store/s3store keeps both in an S3-compatible bucket.
//   - [github.com/keepslot/keepslot/namespace] selects and renames
//     namespaces by pattern; [github.com/keepslot/keepslot/errcode] gives
//     every error a user can cause a stable code;
//     [github.com/keepslot/keepslot/conn] says how a MongoDB server is
//     reached (a client or a URI, and the timeouts).
//
// Example shows a node's whole cycle. The module needs the MongoDB driver,
// x/crypto, klauspost's compression, minio-go and, for the test kits,
// testify. The examples module (github.com/keepslot/keepslot/examples, kept
// apart so that an embedder links none of its dependencies) holds a
// quickstart, an HTTP node agent, a CLI with the appliance's verbs, and an
// embedded MongoDB-wire server for trying keepslot without mongod.
package keepslot
