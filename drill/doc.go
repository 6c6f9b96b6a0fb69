// Package drill proves that a backup restores: it restores a retrieved
// backup for real, into a target that is not the node it protects, checks
// what was restored against what the backup holds, measures the time to
// restore (RTO), and removes what it restored, whatever happens.
//
// [Run] drills a main backup. Its target is a scratch server
// ([Options].Conn) that holds no database but admin, config and
// local, or scratch databases of a given server under [Options].Prefix:
// each database db of the backup is restored into Prefix+db, with restore's
// namespace renaming. A drill never reuses a prefix (a database that starts
// with it fails the drill before anything is written, ErrTargetInUse), never
// writes a namespace of the backup or of the server's own (admin, local,
// config: ErrSourceNamespace), and drops afterwards every database it owns
// (those under the prefix, or all but the server's own on a scratch
// server), on success, failure or cancellation alike, with a context of its
// own bounded by [Options].CleanupTimeout.
//
// While the restore reads the backup, the drill counts each namespace's
// documents and sums their digests: the SHA-256 of each raw BSON document,
// added modulo 2^256, a digest that does not depend on the order of the
// documents. Once the collections are restored and indexed, and before
// the oplog is replayed (which changes them), it reads every collection
// back from the target, streaming, to count and digest it in the same
// way, and lists its indexes. Then the restore replays the oplog, if the
// backup holds one.
//
// A drill passes when, for every namespace the restore wrote:
//
//   - the target holds as many documents as the backup, and the same
//     ones, byte for byte (the digests are equal);
//   - every index of the backup's metadata exists on the target, by name,
//     with the same key and the same uniqueness;
//   - the restore itself succeeded: the backup authenticated, its archive
//     matched its own manifest (counts and sha256 of each namespace),
//     every document was accepted, and the restored counts matched the
//     manifest;
//   - the oplog, when the backup holds one, replayed with no conflict and
//     no transaction left unapplied ([ReplayReport]).
//
// A pass does not prove:
//
//   - that the data after the oplog's replay is right: nothing records
//     what it should be; the replay is proven to apply, not its result;
//   - anything of views' contents (a view holds no documents; it is
//     created, not read back), of users and roles (a drill leaves them
//     out), or of index options other than the key and uniqueness (sparse,
//     TTL, partial, collation are not compared: FerretDB keeps only name,
//     key and unique);
//   - that the production server would accept the backup: a scratch
//     server of another kind or version (FerretDB, say) may refuse a
//     document or an index that MongoDB stores, or store one it refuses;
//   - anything of the production server's capacity: the time to restore is
//     that of the target, on its hardware and under its load;
//   - that the backup matches the node as it is now: it proves the backup
//     is what it was when it was written, and restores.
//
// A drill whose restore fails on the backup (a corrupt file, counts that
// differ from the manifest, a document the target refuses), or that finds a
// difference, returns the [Report] and a [*Failure], which matches
// ErrFailed (errcode.DrillFailed) and lists each namespace that differs and
// how ([Kind]: count, digest, index, replay, restore). A drill that cannot
// run (a wrong password, a target that is not scratch, a server that does
// not answer, a cancelled context) returns that error, classified as
// restore and cipher classify it.
//
// [RunSensitive] drills a sensitive backup: it restores its secrets into a
// new directory (0700), reads each file back and compares its size and
// SHA-256 with the backup's manifest (sensitive.ManifestCollection), then
// removes the directory, whatever happens.
//
// Memory stays bounded as for a restore: the digests are 32 bytes per
// namespace and the read-back streams documents through the driver's
// cursor batches; no namespace is held in memory. Every drill takes a
// context, and reports progress as [archive.Progress].
package drill
