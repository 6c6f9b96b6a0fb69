// Package store is the single slot that holds a node's backup.
//
// A slot holds at most one object: a stream of bytes with a name, its size,
// the MD5 and SHA-256 of its bytes (computed by the store while they are
// written, so every implementation reports them the same way), its creation
// time and a small map of metadata chosen by the caller. A new object can be
// written only after the stored one has been deleted, and only one write can
// be under way at a time.
//
// Writing is a two-step affair. [Store.Create] starts the write and returns a
// [Pending], an [io.Writer]; [Pending.Commit] makes the object visible
// atomically, [Pending.Abort] throws it away. Until Commit returns, readers
// see the slot as it was before: [Store.Stat] and [Store.Open] report
// [ErrEmpty].
//
// Two implementations are provided. [Dir] keeps the slot in a directory and is
// safe against crashes, against concurrent callers in one process and against
// other processes (an agent and a command-line tool on the same node), through
// an operating-system file lock held for the whole write. [Memory] keeps it in
// memory, with the same semantics, for tests and embedders.
//
// A new implementation is its byte sink and nothing more: its Create takes the
// slot and returns [NewPending] over a [Backend] (Append, Commit, Abort), and
// NewPending does the hashing, the context handling and the state machine.
// Package store/s3store keeps the slot in an S3-compatible bucket this way.
//
// Optional capabilities, such as [SpaceReporter], are found with [As], which
// looks through stores that decorate others and say so with Unwrap
// ([Wrapper]).
//
// A [Remote] holds many objects by key, off the node, where backups are
// exported ([MemoryRemote] for tests; store/s3store for S3).
//
// Package store/storetest holds a conformance suite that any implementation of
// [Store] can run, in the spirit of testing/fstest.
//
// # Errors
//
// Failures are reported with the sentinels [ErrSlotOccupied], [ErrBusy],
// [ErrEmpty], [ErrInvalid], [ErrClosed] and [ErrCorrupt], wrapped with
// context; test for them with [errors.Is].
package store
