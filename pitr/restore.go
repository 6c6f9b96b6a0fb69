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
	"github.com/keepslot/keepslot/internal/ctxio"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// RestoreOptions configure [Restore]: a target, Time or Timestamp (one of
// them), and the options of the restore itself.
type RestoreOptions struct {
	// Options are those of restore.Run: the target server, Filter,
	// Renames, DryRun, …; OplogLimit and FurtherOplog are set by Restore,
	// and OplogReplay may not be off.
	restore.Options

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
}

// Restore restores the node that at (an ExportConfig: Remote, Prefix, Node)
// names to a moment: it picks the newest base backup on the remote whose
// consistency point is before the target, and the slices after it, checks
// them all (a tampered or missing one fails with ErrCorruptSlice or
// ErrNotCovered, naming it, before anything is written), then restores the
// base backup with its own oplog and replays the slices' entries up to the
// target. A target outside every window fails at once with ErrNotCovered,
// listing those that are restorable. With opts.DryRun, it checks
// everything, writes nothing, and reports what it would use and replay.
// password is the backups', which the slices are encrypted with too.
func Restore(ctx context.Context, at slot.ExportConfig, password []byte, opts *RestoreOptions) (*Report, error) {
	if opts == nil {
		opts = &RestoreOptions{}
	}
	limit, err := opts.limit()
	if err != nil {
		return nil, err
	}
	if opts.OplogReplay == slot.ToggleOff {
		return nil, fmt.Errorf("%w: a point-in-time restore replays the oplog; OplogReplay may not be off", ErrInvalid)
	}
	if len(password) == 0 {
		return nil, fmt.Errorf("pitr: %w", cipher.ErrEmptyPassword)
	}
	if !opts.DryRun && opts.Client == nil && opts.URI == "" {
		return nil, fmt.Errorf("%w: set RestoreOptions.Client or URI, or DryRun", ErrInvalid)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cov, err := Scan(ctx, at)
	if err != nil {
		return nil, err
	}
	plan, err := cov.Plan(limit)
	if err != nil {
		return nil, err
	}
	rep := &Report{Plan: *plan}
	log.Info("pitr: restore", "to", oplog.FormatTS(limit), "base", plan.Base.Key, "slices", len(plan.Slices), "dry_run", opts.DryRun)

	ring := cipher.NewKeyring(password, &cipher.Options{MaxWork: opts.MaxKDFWork})
	spool, err := fetch(ctx, at.Remote, plan, ring, opts.TempDir)
	defer spool.remove()
	if err != nil {
		return rep, err
	}
	base, err := at.Remote.Open(ctx, plan.Base.Key)
	if err != nil {
		return rep, fmt.Errorf("pitr: open the base backup %s: %w", plan.Base.Key, err)
	}
	defer base.Close()
	ro := opts.Options
	ro.OplogLimit = limit
	ro.FurtherOplog = spool
	res, err := restore.Run(ctx, base, base.Info().Size, password, &ro)
	rep.Restore = res
	if err != nil {
		return rep, fmt.Errorf("pitr: restore %s: %w", plan.Base.Key, err)
	}
	return rep, nil
}

// spooled are a plan's slices, downloaded and checked: an
// archive.OplogSource of their entries after the base backup's point.
type spooled struct {
	plan  *Plan
	ring  *cipher.Keyring
	files []string // one a slice, opened only while it is read
}

func (sp *spooled) remove() {
	for _, f := range sp.files {
		os.Remove(f)
	}
}

// fetch downloads the plan's slices into temporary files and checks each
// whole: it authenticates, and holds what its name and metadata say.
func fetch(ctx context.Context, remote store.Remote, plan *Plan, ring *cipher.Keyring, dir string) (*spooled, error) {
	sp := &spooled{plan: plan, ring: ring}
	for _, s := range plan.Slices {
		f, err := os.CreateTemp(dir, "keepslot-slice-*")
		if err != nil {
			return sp, fmt.Errorf("pitr: a file for the slice %s: %w", s.Key, err)
		}
		sp.files = append(sp.files, f.Name())
		err = download(ctx, remote, s, f)
		if err == nil {
			err = entries(ctx, s, f, ring, func(oplog.Entry) error { return nil })
		}
		f.Close()
		if err != nil {
			return sp, err
		}
	}
	return sp, nil
}

func download(ctx context.Context, remote store.Remote, s Slice, f *os.File) error {
	obj, err := remote.Open(ctx, s.Key)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: the slice %s is no longer on the remote: %w", ErrNotCovered, s.Key, err)
	}
	if err != nil {
		return fmt.Errorf("pitr: open the slice %s: %w", s.Key, err)
	}
	defer obj.Close()
	n, err := io.Copy(f, ctxio.NewReader(ctx, obj))
	if err != nil {
		return fmt.Errorf("pitr: download the slice %s: %w", s.Key, err)
	}
	if n != obj.Info().Size {
		return fmt.Errorf("%w: %s: %d bytes read, %d stored", ErrCorruptSlice, s.Key, n, obj.Info().Size)
	}
	return nil
}

// entries reads the slice s from f, checking it as it goes, and calls fn
// for each entry, oldest first (not the trailer).
func entries(ctx context.Context, s Slice, f *os.File, ring *cipher.Keyring, fn func(oplog.Entry) error) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	r, err := ring.NewReader(f, fi.Size())
	if errors.Is(err, cipher.ErrWrongPassword) {
		return fmt.Errorf("pitr: the slice %s: %w", s.Key, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorruptSlice, s.Key, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorruptSlice, s.Key, fmt.Sprintf(format, args...))
	}
	var held bson.Raw // the document read before: the trailer, if it is the last
	var n int64
	var last bson.Timestamp
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		doc, err := readDoc(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, cipher.ErrCorrupt) {
				return fmt.Errorf("%w: %s: %w", ErrCorruptSlice, s.Key, err)
			}
			return bad("%v", err)
		}
		if held != nil {
			e, err := oplog.Parse(held, false)
			if err != nil {
				return bad("%v", err)
			}
			if e.TS.Before(s.From) || !e.TS.Before(s.Until) || e.TS.Before(last) {
				return bad("entry %s is out of order or outside the slice's span %s .. %s", oplog.FormatTS(e.TS), oplog.FormatTS(s.From), oplog.FormatTS(s.Until))
			}
			last = e.TS
			n++
			if err := fn(e); err != nil {
				return err
			}
		}
		held = doc
	}
	if held == nil {
		return bad("it is empty")
	}
	if n != s.Entries {
		return bad("it holds %d entries, its metadata says %d", n, s.Entries)
	}
	if err := s.checkTrailer(held); err != nil {
		return bad("%v", err)
	}
	return nil
}

// Oplog implements archive.OplogSource: the slices' entries after the
// base backup's point, in order, each once (slices from two slicers may
// overlap).
func (sp *spooled) Oplog(ctx context.Context, emit func([]byte) error) (archive.OplogSpan, error) {
	var span archive.OplogSpan
	cur := next(sp.plan.Base.Oplog.End)
	for i, s := range sp.plan.Slices {
		f, err := os.Open(sp.files[i])
		if err != nil {
			return span, err
		}
		err = entries(ctx, s, f, sp.ring, func(e oplog.Entry) error {
			if e.TS.Before(cur) {
				return nil // the base backup holds it, or the slice before
			}
			if span.Entries == 0 {
				span.Start = e.TS
			}
			span.End = e.TS
			span.Entries++
			return emit(e.Raw)
		})
		f.Close()
		if err != nil {
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
