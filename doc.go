// Package keepslot is an SDK for encrypted, single-slot backups of a MongoDB
// node and of the secrets that belong to it.
//
// A node keeps exactly one backup at a time: a new one may be made only after
// the old one is deleted. Only a node put in the backup role may be backed up,
// and it needs free disk of at least twice the size of its data. Every backup
// is encrypted with AES-256 in CTR mode under a key derived from the
// operator's password, and authenticated, so that a wrong password or a
// single flipped bit is reported before any data is restored.
//
// # Packages
//
// Data flows one way, MongoDB -> archive -> cipher -> hash -> store:
//
//   - backup: the Backupper interface (the appliance's Start, Status,
//     Retrieve and Delete, with Wait, Cancel and Open) over a MongoDB node,
//     Restore, the backup role and the free-disk rule; backups consistent
//     as of their end on a replica set, by capturing and replaying the
//     oplog; export to a remote store with retention. backup/backuptest has
//     a scripted fake for consumers' unit tests.
//   - sensitive: a Backupper for secrets such as encryption keys, kept out of
//     the main backup, with its own slot and password.
//   - archive: streaming archive writers and readers, tar in mongodump's
//     directory layout (the default) and mongodump's --archive format, with
//     gzip, zstd or no compression, so the stock mongorestore can read them.
//   - cipher: the authenticated AES-256-CTR stream with scrypt-derived keys;
//     cipher/FORMAT.md specifies it, down to recovery with stock openssl.
//   - store: the single slot, on disk (Dir) or in memory (Memory), with the
//     md5 and sha256 of what it holds; store/storetest is a conformance suite
//     for any implementation; store/s3store keeps the slot, or off-node
//     copies, in an S3-compatible bucket.
//
// # Usage
//
// A program embeds a Backupper, puts its node in the backup role once, and
// then drives the verbs:
//
//	b, err := backup.New(backup.Config{
//		Client:     client,
//		SlotConfig: backup.SlotConfig{Store: slot, StateDir: dir},
//	})
//	...
//	err = b.Start(ctx, password)    // returns at once; the backup runs on
//	st, err := b.Status(ctx)        // in progress, ready (name, md5), failed
//	st, err = b.Wait(ctx)           // or wait for it to end (b.Cancel stops it)
//	info, err := b.Retrieve(ctx, f) // the encrypted bytes, as stored
//	obj, err := b.Open(ctx)         // or ranged reads of them
//	err = b.Delete(ctx)             // frees the slot for the next backup
//
// backup.Restore reads a retrieved file back into MongoDB. The examples
// module (github.com/keepslot/keepslot/examples, kept apart so that this
// module needs no more than the MongoDB driver, x/crypto, compression and
// S3) holds a quickstart, an HTTP node agent, a CLI with the appliance's
// verbs, and an embedded MongoDB-wire server for trying keepslot without
// mongod.
package keepslot
