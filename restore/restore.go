// Package restore reads a retrieved keepslot backup back into MongoDB: it
// authenticates the whole file first, so that a wrong password or a
// corrupt file writes nothing, then recreates each collection with its
// options, inserts its documents in parallel batches, builds its indexes,
// merges the users and roles, and replays the captured oplog, so that the
// data is consistent as of the backup's consistency point.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/namespace"
)

// Options configure Run. Conn.Client or Conn.URI is required unless
// DryRun; every other field has a default.
type Options struct {
	// Conn is the target server: Client, or URI connected to for the
	// restore. Its OperationTimeout bounds the wait for each request of
	// the restore (a batch of documents or of replayed writes, a command)
	// before it fails with ErrUnreachable; an index build runs as long as
	// the server answers pings within it.
	Conn conn.Config

	// Formats and Compressions the backup may have been written with
	// beyond the built-in ones, recognised by their Match methods.
	Formats      []archive.Format
	Compressions []archive.Compression

	// Filter selects source namespaces; default all.
	Filter namespace.Filter
	// Renames map source namespaces to target ones.
	Renames namespace.Renames
	// Drop drops each target collection before restoring into it.
	Drop bool
	// DryRun authenticates and reads the whole backup and reports what
	// would be restored, writing nothing.
	DryRun bool
	// Parallel is how many insert batches run at once; default 4.
	Parallel int
	// BatchSize is the most documents per insert; default 1000.
	BatchSize int

	// OplogReplay says whether the oplog a backup captured is replayed,
	// once its collections are restored and indexed, as mongorestore
	// --oplogReplay does, honouring Filter and Renames; default
	// ReplayAuto, when the backup holds one (see [Replay]).
	OplogReplay Replay
	// OplogLimit, if set, stops the replay before the first entry at or
	// after it, as mongorestore --oplogLimit does; the data is then
	// consistent as of no moment, unless the limit is after the backup's
	// capture and FurtherOplog continues it (a point-in-time restore).
	OplogLimit bson.Timestamp
	// FurtherOplog, if set, is replayed after the backup's own oplog, as
	// its continuation, by the same rules and up to OplogLimit: its entries
	// must come after the backup's last, oldest first. Package pitr gives
	// the oplog it copied off the node after the backup.
	FurtherOplog archive.OplogSource
	// SkipUsersAndRoles leaves out the users and roles a backup holds;
	// otherwise they are merged into the server's (see [Report].Notes).
	SkipUsersAndRoles bool
	// SkipDuplicates goes on past documents whose _id, or value of a
	// unique index, the target already holds, as mongorestore does by
	// default, and counts them in [NamespaceReport].Duplicates; by default
	// the first such document fails the restore with ErrDuplicateKey.
	SkipDuplicates bool

	// MaxKDFWork caps the scrypt work N·r·p the backup's header may ask
	// for; default [cipher.DefaultMaxWork]. Raise it only for a file from
	// a source you trust.
	MaxKDFWork uint64

	// Observer, if set, is told what the restore reads and when its
	// collections are in, before the oplog is replayed: package drill
	// proves a restore with one. See [Observer].
	Observer Observer

	// Progress, if set, is called as the restore advances.
	Progress func(archive.Progress)
	// Logger; default slog.Default().
	Logger *slog.Logger

	// replayTimedOut, if set, is called when a replayed write got no
	// answer within Conn.OperationTimeout, before the server is pinged to tell
	// a slow server from one that is down (tests set it).
	replayTimedOut func()
}

// Run restores a retrieved backup of size bytes from src. It first
// authenticates the whole file, so that a wrong password
// (cipher.ErrWrongPassword) or a corrupt file (ErrCorrupt) writes nothing;
// then it recreates each selected collection with its options, inserts its
// documents in parallel batches, builds its indexes, and checks the counts
// against the backup's manifest (ErrCountMismatch). Input that cannot seek
// can be spooled to a file first.
//
// Run never writes the server's own namespaces (local, config, and system
// collections but the users and roles, which it merges): a backup that
// holds them has them skipped, with a note. A target that already holds a
// document of the backup fails the restore with ErrDuplicateKey, unless
// Options.SkipDuplicates. A restore that fails leaves what it wrote before:
// the collections it created and the documents it inserted; it never drops
// or changes anything else (Drop aside). Restore again with Drop, or into
// new namespaces with Renames.
func Run(ctx context.Context, src io.ReaderAt, size int64, password []byte, opts *Options) (*Report, error) {
	start := time.Now()
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ar, err := openBackup(ctx, src, size, password, &o)
	if err != nil {
		return nil, err
	}
	if c, ok := ar.(io.Closer); ok {
		defer c.Close() // what a reader holds when a restore stops early, such as a tar's oplog
	}

	client := o.Conn.Client
	if client == nil && !o.DryRun {
		if o.Conn.URI == "" {
			return nil, fmt.Errorf("%w: set Options.Conn: its Client or URI, or DryRun", ErrInvalid)
		}
		lazy := mongodb.NewLazy(o.Conn)
		defer lazy.Close(context.WithoutCancel(ctx))
		if client, err = lazy.Client(); err != nil {
			return nil, fmt.Errorf("restore: connect to the server: %w", err)
		}
	}

	r := &restorer{opts: o, client: client, byFrom: map[string]*target{}}
	defer r.dropTemps(context.WithoutCancel(ctx))
	err = r.run(ctx, ar)
	rep := r.report(time.Since(start))
	if err != nil {
		return rep, named("", corrupt(err))
	}
	o.Logger.Info("restore done", "namespaces", len(rep.Namespaces), "documents", rep.Documents,
		"indexes", rep.Indexes, "dry_run", o.DryRun, "duration", rep.Duration.Round(time.Millisecond))
	return rep, nil
}

// withDefaults returns a copy of the options (the zero Options for nil)
// with the defaults set, or ErrInvalid (or namespace's error) for options
// that cannot work.
func (opts *Options) withDefaults() (Options, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := o.Filter.Validate(); err != nil {
		return o, fmt.Errorf("restore: Options.Filter: %w", err)
	}
	if err := o.Renames.Validate(); err != nil {
		return o, fmt.Errorf("restore: Options.Renames: %w", err)
	}
	if o.FurtherOplog != nil && o.OplogReplay == ReplayNever {
		return o, fmt.Errorf("%w: Options.FurtherOplog continues the backup's oplog, which OplogReplay ReplayNever leaves out: replay both or neither", ErrInvalid)
	}
	return o, nil
}

// openBackup authenticates the whole backup of size bytes from src, then opens
// the archive it holds, in a format and compression that Run knows or o
// adds.
func openBackup(ctx context.Context, src io.ReaderAt, size int64, password []byte, o *Options) (archive.Reader, error) {
	plain, err := cipher.NewReader(src, size, password, &cipher.Options{MaxWork: o.MaxKDFWork})
	if errors.Is(err, cipher.ErrKDFTooExpensive) {
		return nil, fmt.Errorf("restore: decrypt the backup: %w: for a restore the option is Options.MaxKDFWork", err)
	}
	if err != nil {
		return nil, named("decrypt the backup", corrupt(err))
	}
	if err := plain.Verify(ctx); err != nil {
		return nil, named("decrypt the backup", corrupt(err))
	}
	ar, err := archive.Open(plain, &archive.OpenOptions{Formats: o.Formats, Compressions: o.Compressions})
	if err != nil {
		return nil, named("read the backup", corrupt(err))
	}
	return ar, nil
}

// run reads the archive into the server, its batches inserted by parallel
// workers, then finishes the restore: indexes, users and roles, the
// oplog's replay, the counts' check.
func (r *restorer) run(ctx context.Context, ar archive.Reader) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.startWorkers(ctx, cancel)
	err := r.read(ctx, ar)
	r.stopWorkers()
	switch {
	case parent.Err() != nil && err == nil:
		// The caller gave up while the last batches were inserted: what
		// the workers did not write is the caller's doing, not a count
		// that differs from the manifest.
		err = context.Cause(parent)
	case parent.Err() == nil && context.Cause(ctx) != nil:
		// A worker's insert failed and stopped the rest: what failed
		// after it only saw the cancellation.
		err = context.Cause(ctx)
	}
	if err == nil {
		err = r.finish(ctx, ar)
	}
	return err
}
