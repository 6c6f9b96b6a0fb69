// Package archive writes and reads streaming archives of MongoDB collections
// that the stock mongorestore can restore.
//
// Two formats are built in, and others can be plugged in through the Format
// interface:
//
//   - [TarFormat] (the default, ".tar"): entries in mongodump's directory layout,
//     dump/<db>/<collection>.metadata.json (canonical Extended JSON with the
//     collection's options, indexes, uuid, name and type) and
//     dump/<db>/<collection>.bson (the raw documents, concatenated), with
//     collection names escaped as mongodump escapes them, followed by a
//     manifest.json that records, per namespace, the document count, the
//     byte size and the sha256 of its .bson entry. After `tar xzf`,
//     `mongorestore --dir dump` restores it.
//   - [ArchiveFormat] (".archive"): the stream that `mongodump --archive`
//     writes (magic number, prelude, interleaved segments of at most 16 MiB,
//     an end block per namespace carrying the CRC-64 (ECMA) of its
//     documents). `mongorestore --archive` (with --gzip when gzip-compressed)
//     restores it.
//
// An archive may also carry the oplog captured while its collections were
// read (DumpOptions.Oplog), where mongodump --oplog puts it, so that
// `mongorestore --oplogReplay` applies it: dump/oplog.bson at the dump root
// of the tar layout, and the namespace of database "" and collection
// "oplog" in the archive format. Readers return it last, as
// [OplogCollection]; the manifest records its span and stats
// ([Manifest].Oplog). Package restore replays it.
//
// Compression is a separate, equally pluggable piece: [NewGzip] (parallel,
// from klauspost/pgzip), [NewZstd] (klauspost/compress) and [NoCompression].
//
// [Dump] writes an archive of many collections, dumped in parallel from a
// [Source], to any io.Writer; [Open] reads one back, detecting compression and
// format from the first bytes. A tar entry needs its size first, so the tar
// writer holds each collection until it is complete; with the built-in gzip
// or zstd, Dump has it compress each collection on its own, while the
// collection is read, as a gzip member or zstd frame of its own: the
// concatenated stream decompresses to the same tar, which `tar xzf` reads
// as usual. Memory stays bounded whatever the size of the data: the tar
// writer holds at most WriterOptions.Spill.Threshold bytes in memory across
// the collections it writes at once, and spills the collection that would
// pass it to a temporary file, removed afterwards; the archive format needs
// no spill and buffers one segment (1 MiB by default) per collection.
//
// Readers treat their input as hostile. Paths that could escape the
// extraction directory, links and devices, tar entries outside mongodump's
// layout (refused at their header, before their body is read, unless a
// tarred mongodump directory is read with TarFormat.AllowMissingManifest,
// which passes over at most 1 MiB of them), BSON
// lengths out of range, CRC, sha256 and count mismatches, truncation and
// undeclared namespaces are reported as the typed errors ErrUnsafePath,
// ErrTooLarge, ErrCorrupt and ErrUnknownNamespace, never as panics.
package archive
