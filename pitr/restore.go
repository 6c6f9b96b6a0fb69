package pitr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/restore"
)

// RestoreOptions configure [Restore]: a target, Time or Timestamp (one of
// them), and the options of the restore itself.
type RestoreOptions struct {
	// Restore are the options of the restore of the base backup and the
	// slices, restore.Run's: the target server (Conn), Filter, Renames,
	// DryRun, MaxKDFWork, Logger… Restore sets two of them, whatever they
	// hold: OplogLimit, to the target, and FurtherOplog, to the slices'
	// entries. It refuses OplogReplay restore.ReplayNever (ErrInvalid): a
	// point-in-time restore is a replay.
	Restore restore.Options

	// Time restores the node as it was at the end of this second (UTC):
	// every write it logged up to and including that second, none after.
	// It is restored whole seconds: the fraction is dropped.
	Time time.Time
	// Timestamp restores the writes logged before it, not the one at it,
	// as mongorestore's --oplogLimit takes SECONDS:ORDINAL.
	Timestamp bson.Timestamp

	// TempDir is where the slices are downloaded to be checked before
	// anything is restored; default os.TempDir().
	TempDir string
}

// limit returns the oplog limit that o's target says.
func (o *RestoreOptions) limit() (bson.Timestamp, error) {
	switch {
	case !o.Time.IsZero() && !o.Timestamp.IsZero():
		return bson.Timestamp{}, fmt.Errorf("%w: set RestoreOptions.Time or Timestamp, not both", ErrInvalid)
	case !o.Timestamp.IsZero():
		return o.Timestamp, nil
	case !o.Time.IsZero():
		sec := o.Time.Unix()
		if sec < 0 || sec >= 1<<32-1 {
			return bson.Timestamp{}, fmt.Errorf("%w: the time %s is outside what an oplog timestamp holds", ErrInvalid, o.Time.Format(time.RFC3339))
		}
		return bson.Timestamp{T: uint32(sec) + 1}, nil
	}
	return bson.Timestamp{}, fmt.Errorf("%w: set RestoreOptions.Time or Timestamp: the moment to restore to", ErrInvalid)
}

// Report is what a point-in-time restore did or, in a dry run, would do.
type Report struct {
	// Plan is the base backup and the slices used.
	Plan
	// Restore is restore.Run's report: Restore.Oplog counts the entries
	// replayed, of the base backup's oplog and of the slices.
	Restore *restore.Report
	// Refused are the objects in the node's prefix that the restore left
	// out: they do not authenticate, their name or metadata misdescribe
	// them, or they are another node's or chain's. A restore uses what
	// authenticates as this node's; it fails when what is left does not
	// reach the target.
	Refused []Refused `json:"refused,omitempty"`
}

// Restore restores the node whose copies are at at to a moment: it picks
// the newest base backup on the remote whose consistency point is before
// the target, and the slices after it, checks them all (a tampered or
// missing one fails with ErrCorruptSlice or ErrNotCovered, naming it,
// before anything is written), then restores the base backup with its own
// oplog and replays the slices' entries up to the target. A target outside
// every window fails at once with ErrNotCovered, listing those that are
// restorable. With opts.Restore.DryRun, it checks everything, writes
// nothing, and reports what it would use and replay. password is the
// backups', which the slices are encrypted with too.
func Restore(ctx context.Context, at Location, password []byte, opts *RestoreOptions) (*Report, error) {
	if opts == nil {
		opts = &RestoreOptions{}
	}
	limit, err := opts.check(password)
	if err != nil {
		return nil, err
	}
	log := opts.Restore.Logger
	if log == nil {
		log = slog.Default()
	}
	prefix, err := at.NodePrefix()
	if err != nil {
		return nil, err
	}
	cov, err := Scan(ctx, at)
	if err != nil {
		return nil, err
	}
	if _, err := cov.Plan(limit); err != nil {
		return nil, err // the listing does not reach it: no need to read anything
	}
	c := &checker{remote: at.Remote, node: nodeOf(prefix), ring: cipher.NewKeyring(password, &cipher.Options{MaxWork: opts.Restore.MaxKDFWork}),
		formats: opts.Restore.Formats, comps: opts.Restore.Compressions, dir: opts.TempDir}
	rep := &Report{}
	defer func() { rep.Refused = c.refused }()
	p, sp, err := c.plan(ctx, cov, limit)
	defer sp.remove()
	if err != nil {
		return rep, err
	}
	rep.Plan = p
	sp.plan = &rep.Plan
	for _, r := range c.refused {
		log.Warn("pitr: an object on the remote was refused", "key", r.Key, "error", r.Error)
	}
	log.Info("pitr: restore", "to", oplog.FormatTS(limit), "base", p.Base.Key, "slices", len(p.Slices), "dry_run", opts.Restore.DryRun)

	obj, err := at.Remote.Open(ctx, p.Base.Key)
	if err != nil {
		return rep, fmt.Errorf("pitr: open the base backup %s: %w", p.Base.Key, err)
	}
	defer obj.Close()
	ro := opts.Restore
	ro.OplogLimit = limit
	ro.FurtherOplog = sp
	res, err := restore.Run(ctx, obj, obj.Info().Size, password, &ro)
	rep.Restore = res
	if err != nil && sp.failed != nil && own(sp.failed) && errors.Is(err, sp.failed) {
		return rep, sp.failed // a slice's own failure, which names the package and the slice, rather than in restore's words
	}
	if err != nil {
		return rep, fmt.Errorf("pitr: restore %s: %w", p.Base.Key, err)
	}
	return rep, nil
}

// check returns the oplog limit of o's target, or ErrInvalid (or
// cipher.ErrEmptyPassword) for what cannot restore.
func (o *RestoreOptions) check(password []byte) (bson.Timestamp, error) {
	limit, err := o.limit()
	if err != nil {
		return limit, err
	}
	if o.Restore.OplogReplay == restore.ReplayNever {
		return limit, fmt.Errorf("%w: a point-in-time restore replays the oplog; OplogReplay may not be ReplayNever", ErrInvalid)
	}
	if len(password) == 0 {
		return limit, fmt.Errorf("pitr: %w", cipher.ErrEmptyPassword)
	}
	if !o.Restore.DryRun && o.Restore.Conn.Client == nil && o.Restore.Conn.URI == "" {
		return limit, fmt.Errorf("%w: set RestoreOptions.Restore.Conn: its Client or URI, or DryRun", ErrInvalid)
	}
	return limit, nil
}

// plan picks, of what cov lists, the newest authentic base backup before
// limit and the authentic slices that continue it up to limit, which it
// downloads and checks whole: the spooled slices, to remove once read
// (also on failure), and the plan. It fails with ErrNotCovered when what
// authenticates does not reach limit.
func (c *checker) plan(ctx context.Context, cov *Coverage, limit bson.Timestamp) (Plan, *spooled, error) {
	sp := &spooled{ring: c.ring}
	base, err := c.base(ctx, cov.Bases, limit)
	if err != nil {
		return Plan{}, sp, err
	}
	if base == nil {
		return Plan{}, sp, c.refusedErr(cov.notCovered(limit, "no base backup of this node on the remote is older than it"))
	}
	authentic, files, err := c.slices(ctx, cov.Slices, base, limit)
	sp.files = files
	if err != nil {
		return Plan{}, sp, err
	}
	used, err := plan(base, authentic, limit)
	if err != nil {
		return Plan{}, sp, err
	}
	ac := &Coverage{Bases: []Base{*base}, Slices: authentic}
	ac.compute()
	if used == nil {
		return Plan{}, sp, c.refusedErr(ac.notCovered(limit, fmt.Sprintf("the newest base backup before it, %s (consistent as of %s, %s), is continued by authentic slices up to %s only",
			base.Key, base.Point().Format(time.RFC3339), oplog.FormatTS(base.Oplog.End), oplog.FormatTS(ac.reach(next(base.Oplog.End))))))
	}
	if gaps := lost(base, authentic, limit); len(gaps) > 0 {
		return Plan{}, sp, ac.notCovered(limit, fmt.Sprintf("%d entries after the base backup %s and before it are in no slice; the first: %s", len(gaps), base.Key, gaps[0]))
	}
	return Plan{Base: *base, Slices: used, Limit: limit}, sp, nil
}

// spooled are a plan's slices, downloaded and checked: an
// archive.OplogSource of their entries after the base backup's point.
type spooled struct {
	plan  *Plan
	ring  *cipher.Keyring
	files map[string]string // by key: one a slice, opened only while it is read
	// failed is Oplog's own failure, such as a damaged slice: not one of
	// emit, which is the restore's.
	failed error
}

func (sp *spooled) remove() {
	for _, f := range sp.files {
		os.Remove(f)
	}
}

// opener opens a cipher stream: a Keyring's NewReader (a restore, with
// the password) or a Key's (the slicer).
type opener func(src io.ReaderAt, size int64) (*cipher.Reader, error)

// entries reads the slice listed as s from src, of size bytes, checking it
// as it goes, and calls fn for each entry, oldest first (not its record).
// It returns the slice as its own record and entries say, once it has
// checked that its name and metadata say the same; a slice that does not
// authenticate, or that its listing misdescribes, fails with
// ErrCorruptSlice (cipher.ErrWrongPassword for another password's).
func entries(ctx context.Context, s Slice, src io.ReaderAt, size int64, open opener, fn func(oplog.Entry) error) (Slice, error) {
	r, err := open(src, size)
	if errors.Is(err, cipher.ErrWrongPassword) {
		return Slice{}, fmt.Errorf("pitr: the slice %s: %w", s.Key, err)
	}
	if err != nil {
		return Slice{}, fmt.Errorf("%w: %s: %w", ErrCorruptSlice, s.Key, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorruptSlice, s.Key, fmt.Sprintf(format, args...))
	}
	// The record comes last, and says the span: the entries are checked
	// against the name's span as they come, and against the record's at
	// the end.
	var held bson.Raw // the document read before: the record, if it is the last
	var n int64
	var first, last bson.Timestamp
	for {
		if err := ctx.Err(); err != nil {
			return Slice{}, err
		}
		doc, err := readDoc(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, cipher.ErrCorrupt) {
				return Slice{}, fmt.Errorf("%w: %s: %w", ErrCorruptSlice, s.Key, err)
			}
			return Slice{}, bad("%v", err)
		}
		if held != nil {
			e, err := oplog.Parse(held, false)
			if err != nil {
				return Slice{}, bad("%v", err)
			}
			if e.TS.Before(s.From) || !e.TS.Before(s.Until) || e.TS.Before(last) {
				return Slice{}, bad("entry %s is out of order or outside the slice's span %s .. %s", oplog.FormatTS(e.TS), oplog.FormatTS(s.From), oplog.FormatTS(s.Until))
			}
			if n == 0 {
				first = e.TS
			}
			last = e.TS
			n++
			if err := fn(e); err != nil {
				return Slice{}, err
			}
		}
		held = doc
	}
	if held == nil {
		return Slice{}, bad("it is empty")
	}
	rec, err := parseTrailer(held)
	if err != nil {
		return Slice{}, bad("%v", err)
	}
	if n != rec.Entries {
		return Slice{}, bad("it holds %d entries, its record says %d", n, rec.Entries)
	}
	a := rec.slice(s.Key, first, last)
	if why := s.differs(a); why != "" {
		return Slice{}, bad("%s", why)
	}
	a.Size, a.SHA256, a.Created = s.Size, s.SHA256, s.Created
	return a, nil
}

// Oplog implements archive.OplogSource: the slices' entries after the
// base backup's point, in order, each once (slices from two slicers may
// overlap).
func (sp *spooled) Oplog(ctx context.Context, emit func([]byte) error) (archive.OplogSpan, error) {
	var span archive.OplogSpan
	cur := next(sp.plan.Base.Oplog.End)
	for _, s := range sp.plan.Slices {
		f, err := os.Open(sp.files[s.Key])
		if err != nil {
			return span, err
		}
		var emitted error
		_, err = entries(ctx, s, f, s.Size, sp.ring.NewReader, func(e oplog.Entry) error {
			if e.TS.Before(cur) {
				return nil // the base backup holds it, or the slice before
			}
			if span.Entries == 0 {
				span.Start = e.TS
			}
			span.End = e.TS
			span.Entries++
			emitted = emit(e.Raw)
			return emitted
		})
		f.Close()
		if err != nil {
			if err != emitted {
				sp.failed = err
			}
			return span, err
		}
		cur = s.Until
	}
	return span, nil
}

// readDoc reads the next BSON document of r, in a new slice; io.EOF at a
// clean end.
func readDoc(r io.Reader) (bson.Raw, error) {
	var l [4]byte
	if n, err := io.ReadFull(r, l[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("it ends in the middle of a document: %w", err)
	}
	n := binary.LittleEndian.Uint32(l[:])
	if n < 5 || n > archive.MaxDocumentSize {
		return nil, fmt.Errorf("a document's length, %d, is outside 5..%d", n, archive.MaxDocumentSize)
	}
	doc := make([]byte, n)
	copy(doc, l[:])
	if _, err := io.ReadFull(r, doc[4:]); err != nil {
		return nil, fmt.Errorf("it ends in the middle of a document: %w", err)
	}
	if err := bson.Raw(doc).Validate(); err != nil {
		return nil, fmt.Errorf("a document is not valid BSON: %w", err)
	}
	return doc, nil
}
