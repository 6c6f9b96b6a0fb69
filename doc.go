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
//   - backup: the Backupper interface (Start, Status, Retrieve, Delete) over
//     a MongoDB node, Restore, the backup role and the free-disk rule.
//     backup/backuptest has a scripted fake for consumers' unit tests.
//   - sensitive: a Backupper for secrets such as encryption keys, kept out of
//     the main backup, with its own slot and password.
//   - archive: streaming archive writers and readers, tar in mongodump's
//     directory layout (the default) and mongodump's --archive format, with
//     gzip, zstd or no compression, so the stock mongorestore can read them.
//   - cipher: the authenticated AES-256-CTR stream with scrypt-derived keys;
//     cipher/FORMAT.md specifies it, down to recovery with stock openssl.
//   - store: the single slot, on disk (Dir) or in memory (Memory), with the
//     md5 and sha256 of what it holds; store/storetest is a conformance suite
//     for any implementation.
//
// # Usage
//
// A program embeds a Backupper, puts its node in the backup role once, and
// then drives the four verbs:
//
//	b, err := backup.New(backup.Config{
//		Client:     client,
//		SlotConfig: backup.SlotConfig{Store: slot, StateDir: dir},
//	})
//	...
//	err = b.Start(ctx, password)   // returns at once; the backup runs on
//	st, err := b.Status(ctx)       // in progress, ready (name, md5), failed
//	info, err := b.Retrieve(ctx, f) // the encrypted bytes, as stored
//	err = b.Delete(ctx)            // frees the slot for the next backup
//
// backup.Restore reads a retrieved file back into MongoDB. The examples
// module (github.com/keepslot/keepslot/examples, kept apart so that this
// module needs no more than the MongoDB driver, x/crypto, compression and
// S3) holds a quickstart, an HTTP node agent, a CLI with the appliance's
// verbs, and an embedded MongoDB-wire server for trying keepslot without
// mongod.
package keepslot
