package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

// DefaultCleanupTimeout bounds the clean-up after a drill: dropping what it
// restored, or removing a sensitive drill's directory.
const DefaultCleanupTimeout = time.Minute

// Options configure a drill. For Run, Conn.Client or Conn.URI is required.
type Options struct {
	// Conn is the target server (Client, or URI connected to for the
	// drill), with the timeouts of the restore. It must not be the
	// protected node unless Prefix is set, and even then a scratch server
	// is the better target: a drill loads it as a restore does.
	Conn conn.Config
	// Prefix, if set, restores into scratch databases of the server: each
	// database db of the backup into Prefix+db. It is letters, digits, "_"
	// and "-". Run refuses a prefix that a database of the server starts
	// with already (ErrTargetInUse), and one that a database of the backup
	// starts with (ErrSourceNamespace). Without Prefix, the server must
	// hold no database but admin, config and local (ErrTargetInUse), and
	// a backup that holds collections of admin drills under a Prefix only
	// (ErrSourceNamespace).
	Prefix string

	// Parallel is how many insert batches run at once, and how many
	// namespaces are read back at once; default 4.
	Parallel int
	// MaxKDFWork is restore.Options'.
	MaxKDFWork uint64
	// CleanupTimeout bounds the clean-up, which runs whatever happened,
	// cancellation included; default DefaultCleanupTimeout.
	CleanupTimeout time.Duration
	// TempDir is where RunSensitive makes its temporary directory; default
	// os.TempDir().
	TempDir string

	// Progress, if set, is called with the restore's progress, then, while
	// the drill reads the restored namespaces back, with Namespace the
	// namespace read, Documents the documents read back so far, and
	// NamespacesDone and NamespacesTotal the namespaces read back of those
	// restored. It is called from several goroutines, at times at once.
	Progress func(archive.Progress)
	// Logger; default slog.Default().
	Logger *slog.Logger

	// checkHook, if set, runs once the restore is in and before the drill
	// reads it back (tests: a target that changes under the drill).
	checkHook func(ctx context.Context, client *mongo.Client) error
	// secretsHook is checkHook's for RunSensitive, given the directory.
	secretsHook func(dir string) error
}

func (o *Options) defaults() {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = DefaultCleanupTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Run drills a retrieved main backup of size bytes from src (the encrypted
// file, as slot's Retrieve gives it): it restores the backup into the
// target that opts name, checks it (see the package documentation), drops
// what it restored, and returns the report. A drill that finds a
// difference, or whose restore fails on the backup, returns the report and
// a *Failure (ErrFailed); one that cannot run (a wrong password, a target
// that is not scratch, an unreachable server, a cancelled ctx) returns the
// report so far and that error.
func Run(ctx context.Context, src io.ReaderAt, size int64, password []byte, opts *Options) (_ *Report, err error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.defaults()
	rep := &Report{Backup: "main", Started: time.Now(), FileBytes: size}
	defer func() {
		if err != nil {
			rep.Error = err.Error()
		}
	}()
	if o.Prefix != "" && !validPrefix(o.Prefix) {
		return rep, fmt.Errorf("%w: Prefix %q: use letters, digits, \"_\" and \"-\"", ErrInvalid, o.Prefix)
	}
	if o.Conn.Client == nil && o.Conn.URI == "" {
		return rep, fmt.Errorf("drill: %w: set Options.Conn: its Client or URI, a scratch server", ErrInvalid)
	}
	lazy := mongodb.NewLazy(o.Conn)
	defer lazy.Close(context.WithoutCancel(ctx))
	client, err := lazy.Client()
	if err != nil {
		return rep, fmt.Errorf("drill: %w", err)
	}

	d := &driller{opts: o, client: client, rep: rep, byTo: map[string]*nsCheck{}}
	if err := d.checkScratch(ctx); err != nil {
		return rep, err
	}
	defer func() {
		if cerr := d.cleanup(ctx); cerr != nil && err == nil {
			err = cerr
		}
	}()

	ropts := &restore.Options{
		Conn:              conn.Config{Client: client, Timeout: o.Conn.Timeout, OperationTimeout: o.Conn.OperationTimeout},
		Parallel:          o.Parallel,
		MaxKDFWork:        o.MaxKDFWork,
		SkipUsersAndRoles: true,
		Observer:          d,
		Progress:          o.Progress,
		Logger:            o.Logger,
	}
	if o.Prefix != "" {
		ropts.Renames = namespace.Renames{{From: "*", To: o.Prefix + "*"}}
	}
	start := time.Now()
	rrep, rerr := restore.Run(ctx, src, size, password, ropts)
	rep.RestoreTime = time.Since(start) - d.checkTime
	rep.CheckTime = d.checkTime
	rep.Notes = append(rep.Notes, "users and roles are not restored by a drill, and not checked")
	if rrep != nil {
		rep.Replay = replayReport(rrep.Oplog)
		rep.Notes = append(rep.Notes, rrep.Notes...)
	}
	for _, c := range d.order {
		rep.Documents += c.expected.docs
		rep.Bytes += c.bytes
		switch c.col.Type {
		case "view":
			rep.Notes = append(rep.Notes, c.col.Namespace()+" is a view: created, not read back")
		case "timeseries":
			rep.Notes = append(rep.Notes, c.col.Namespace()+" is a time series: its count is compared, not its digest (the server returns its measurements reshaped)")
		}
	}
	rep.rates()
	if rerr == nil {
		d.compare()
		d.replayCheck(rrep.Oplog)
	}
	return d.end(ctx, rerr)
}

// driller is one drill of a main backup; it is the restore's Observer.
type driller struct {
	opts   Options
	client *mongo.Client
	rep    *Report

	byTo  map[string]*nsCheck
	order []*nsCheck
	// checkTime is what Restored took: the drill's, not the restore's.
	checkTime time.Duration
	checked   bool
	diffs     []Difference
}

// count is a number of documents and their digest.
type count struct {
	docs   int64
	digest digest
}

// nsCheck is one namespace being drilled.
type nsCheck struct {
	col              archive.Collection
	to               string
	bytes            int64
	expected, found  count
	expectedIndexes  []string
	foundIndexes     []string
	checked          bool
	indexDifferences []string
}

// Namespace records a namespace of the backup and its target, refusing a
// target that is a namespace of the backup or of the server itself.
func (d *driller) Namespace(ctx context.Context, c archive.Collection, to string) (func([]byte), error) {
	db, _, _ := mongodb.Split(to)
	if d.opts.Prefix != "" && strings.HasPrefix(c.DB, d.opts.Prefix) {
		return nil, fmt.Errorf("%w: database %s of the backup starts with the prefix %q, so the drill could write into a namespace of the backup", ErrSourceNamespace, c.DB, d.opts.Prefix)
	}
	if db == "admin" || mongodb.ServerDatabase(db) {
		return nil, fmt.Errorf("%w: %s would be restored into the server's own database %s; drill it under a Prefix", ErrSourceNamespace, c.Namespace(), db)
	}
	n := &nsCheck{col: c, to: to}
	for _, ix := range c.Indexes {
		if name, ok := bson.Raw(ix).Lookup("name").StringValueOK(); ok {
			n.expectedIndexes = append(n.expectedIndexes, name)
		}
	}
	d.byTo[to] = n
	d.order = append(d.order, n)
	return func(doc []byte) {
		n.expected.docs++
		n.expected.digest.add(doc)
		n.bytes += int64(len(doc))
	}, nil
}

// Restored reads every restored namespace back, before the oplog is
// replayed: the documents then are the backup's, which the oplog's
// replay changes.
func (d *driller) Restored(ctx context.Context) error {
	start := time.Now()
	defer func() { d.checkTime += time.Since(start) }()
	if h := d.opts.checkHook; h != nil {
		if err := h(ctx, d.client); err != nil {
			return err
		}
	}
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, d.opts.Parallel)
		mu    sync.Mutex
		errs  []error
		prog  archive.Progress
		total = len(d.order)
	)
	prog.NamespacesTotal = total
	for _, n := range d.order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := d.readBack(ctx, n, func(docs int64) {
				if d.opts.Progress == nil {
					return
				}
				mu.Lock()
				prog.Namespace, prog.Documents = n.to, prog.Documents+docs
				p := prog
				mu.Unlock()
				d.opts.Progress(p)
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			prog.NamespacesDone++
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	d.checked = true
	return nil
}

// readBack reads n's documents and indexes back from the target.
func (d *driller) readBack(ctx context.Context, n *nsCheck, progress func(int64)) error {
	db, name, _ := mongodb.Split(n.to)
	coll := d.client.Database(db).Collection(name)
	if n.col.Type != "view" {
		var cur *mongo.Cursor
		err := mongodb.Ask(ctx, d.opts.Conn.OperationTimeout, func(ctx context.Context) (err error) {
			cur, err = coll.Find(ctx, bson.D{})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", n.to, err)
		}
		defer mongodb.CloseCursor(ctx, d.opts.Conn.OperationTimeout, cur)
		var since int64
		for {
			ok, err := mongodb.Next(ctx, d.opts.Conn.OperationTimeout, cur)
			if err != nil {
				return fmt.Errorf("%s: %w", n.to, err)
			}
			if !ok {
				break
			}
			n.found.docs++
			n.found.digest.add(cur.Current)
			if since++; since == 1000 {
				progress(since)
				since = 0
			}
		}
		if err := cur.Err(); err != nil {
			return fmt.Errorf("%s: %w", n.to, err)
		}
		progress(since)
	}
	if len(n.col.Indexes) == 0 {
		n.checked = true
		return nil
	}
	var cur *mongo.Cursor
	err := mongodb.Ask(ctx, d.opts.Conn.OperationTimeout, func(ctx context.Context) (err error) {
		cur, err = coll.Indexes().List(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: list indexes: %w", n.to, err)
	}
	var found []bson.Raw
	err = mongodb.Ask(ctx, d.opts.Conn.OperationTimeout, func(ctx context.Context) error {
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			found = append(found, slices.Clone(cur.Current))
		}
		return cur.Err()
	})
	if err != nil {
		return fmt.Errorf("%s: list indexes: %w", n.to, err)
	}
	n.foundIndexes, n.indexDifferences = compareIndexes(n.col.Indexes, found)
	n.checked = true
	return nil
}

// compare records, per namespace, what differs between the backup and the
// target.
func (d *driller) compare() {
	for _, n := range d.order {
		ns := n.col.Namespace()
		if !n.checked {
			continue
		}
		if n.col.Type != "view" {
			if n.expected.docs != n.found.docs {
				d.diffs = append(d.diffs, Difference{Namespace: ns, Kind: KindCount,
					Detail: fmt.Sprintf("the backup holds %d documents, %s holds %d", n.expected.docs, n.to, n.found.docs)})
			} else if n.expected.digest != n.found.digest && n.col.Type != "timeseries" {
				d.diffs = append(d.diffs, Difference{Namespace: ns, Kind: KindDigest,
					Detail: fmt.Sprintf("%s holds as many documents as the backup (%d) but others: digest %s, the backup's %s", n.to, n.found.docs, n.found.digest, n.expected.digest)})
			}
		}
		for _, msg := range n.indexDifferences {
			d.diffs = append(d.diffs, Difference{Namespace: ns, Kind: KindIndex, Detail: msg})
		}
	}
}

// replayCheck records a replay that did not apply the whole oplog cleanly.
func (d *driller) replayCheck(o *restore.OplogReport) {
	if o == nil {
		return
	}
	if o.Conflicts > 0 {
		d.diffs = append(d.diffs, Difference{Namespace: "oplog", Kind: KindReplay,
			Detail: fmt.Sprintf("%d updates did not fit the documents they replayed onto", o.Conflicts)})
	}
	if o.Uncommitted > 0 || o.Incomplete > 0 {
		d.diffs = append(d.diffs, Difference{Namespace: "oplog", Kind: KindReplay,
			Detail: fmt.Sprintf("%d transactions were not committed by the end of the oplog and %d were missing their first entries: not applied", o.Uncommitted, o.Incomplete)})
	}
}

// end fills the report's namespaces and outcome, and turns a restore's
// failure on the backup into a Failure.
func (d *driller) end(ctx context.Context, err error) (*Report, error) {
	rep := d.rep
	for _, n := range d.order {
		nr := NamespaceReport{
			Namespace: n.col.Namespace(), Target: n.to, Type: n.col.Type,
			ExpectedDocuments: n.expected.docs, ExpectedDigest: n.expected.digest.String(), Bytes: n.bytes,
			ExpectedIndexes: nonNil(n.expectedIndexes), FoundIndexes: nonNil(n.foundIndexes), Checked: n.checked,
		}
		if nr.Type == "" {
			nr.Type = "collection"
		}
		if n.checked {
			nr.FoundDocuments, nr.FoundDigest = n.found.docs, n.found.digest.String()
		}
		rep.Namespaces = append(rep.Namespaces, nr)
	}
	if err != nil && failedOnBackup(err) && ctx.Err() == nil {
		d.diffs = append(d.diffs, Difference{Kind: KindRestore, Detail: err.Error()})
		err = &Failure{Differences: d.diffs, Restore: err}
	} else if err == nil && len(d.diffs) > 0 {
		err = &Failure{Differences: d.diffs}
	}
	rep.Differences = d.diffs
	rep.Passed = err == nil
	if err != nil && !own(err) {
		err = fmt.Errorf("drill: %w", err)
	}
	return rep, err
}

// own reports whether err is one of this package's, which says so first:
// a Failure, or a refusal of the Observer that the restore wrapped.
func own(err error) bool {
	return errors.Is(err, ErrFailed) || errors.Is(err, ErrTargetInUse) || errors.Is(err, ErrInvalid)
}

// failedOnBackup reports whether a restore's error is the backup's doing
// (damage, counts, documents the target refuses) rather than the
// operator's or the target's (a password, a target not scratch, a server
// that does not answer or refuses the credentials, a cancellation).
func failedOnBackup(err error) bool {
	if errors.Is(err, ErrTargetInUse) || errors.Is(err, ErrInvalid) {
		return false
	}
	switch errcode.Of(err) {
	case errcode.Corrupt, errcode.CountMismatch, errcode.DuplicateKey, errcode.Internal:
		return true
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// validPrefix reports whether p is a prefix of database names that needs
// no escaping in a namespace pattern: letters, digits, "_" and "-".
func validPrefix(p string) bool {
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// systemDatabase reports whether db is one a server has of its own.
func systemDatabase(db string) bool { return db == "admin" || mongodb.ServerDatabase(db) }

// scratch lists the databases of the server that the drill owns: those
// under the prefix, or, on a scratch server, all but the server's own.
func (d *driller) scratch(ctx context.Context) ([]string, error) {
	var names []string
	err := mongodb.Ask(ctx, d.opts.Conn.OperationTimeout, func(ctx context.Context) (err error) {
		names, err = d.client.ListDatabaseNames(ctx, bson.D{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("drill: list the target's databases: %w", mongodb.Classify(err))
	}
	var out []string
	for _, n := range names {
		if d.opts.Prefix != "" && strings.HasPrefix(n, d.opts.Prefix) || d.opts.Prefix == "" && !systemDatabase(n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// checkScratch refuses a target that holds databases the drill would own.
func (d *driller) checkScratch(ctx context.Context) error {
	in, err := d.scratch(ctx)
	if err != nil {
		return err
	}
	if len(in) == 0 {
		return nil
	}
	if d.opts.Prefix != "" {
		return fmt.Errorf("%w: databases %s start with the prefix %q: a drill never reuses a prefix; choose another, or drop them if an earlier drill left them",
			ErrTargetInUse, strings.Join(in, ", "), d.opts.Prefix)
	}
	return fmt.Errorf("%w: the scratch server holds databases %s: a drill restores into an empty server; give one, or drill under a Prefix",
		ErrTargetInUse, strings.Join(in, ", "))
}

// cleanup drops the databases the drill owns, with a context of its own so
// that it runs after a cancellation too.
func (d *driller) cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.CleanupTimeout)
	defer cancel()
	names, err := d.scratch(ctx)
	if err == nil {
		for _, n := range names {
			if err = mongodb.Ask(ctx, d.opts.Conn.OperationTimeout, d.client.Database(n).Drop); err != nil {
				err = fmt.Errorf("drill: clean up: drop %s: %w", n, err)
				break
			}
			d.rep.Dropped = append(d.rep.Dropped, n)
		}
	}
	if err != nil {
		d.rep.Notes = append(d.rep.Notes, "clean-up failed, drop the drill's databases by hand: "+err.Error())
		d.opts.Logger.Error("drill: clean-up failed", "err", err)
	}
	return err
}
