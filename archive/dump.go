package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Source yields the documents of one collection, calling emit for each raw
// BSON document (emit's argument is only valid during the call).
type Source interface {
	Documents(ctx context.Context, c Collection, emit func(doc []byte) error) error
}

// DumpOptions configure Dump. A nil *DumpOptions means the defaults.
type DumpOptions struct {
	Format                     Format      // default TarFormat{}
	Compression                Compression // default NewGzip(DefaultGzipLevel)
	Parallel                   int         // collections dumped at once, default 4
	Writer                     WriterOptions
	ToolVersion, ServerVersion string
	// Node names the node that writes the archive (Header.Node).
	Node string
	// Progress is called after each collection and periodically (every
	// 1000 documents or 8 MiB of a collection); may be nil. Calls are
	// serialized.
	Progress func(Progress)
	// Oplog, if set, captures an oplog with the collections: the archive
	// gets OplogCollection, filled by Oplog.Oplog once every collection is
	// written, and its manifest the span and stats (Manifest.Oplog).
	Oplog OplogSource
}

// Progress is how far a backup or a restore has come: the collections
// done of those it works on, and the documents and their BSON bytes so far.
// Namespace is the one last worked on. A Dump's totals leave out views,
// which have no documents.
type Progress struct {
	Namespace       string `json:"namespace,omitempty"`
	NamespacesDone  int    `json:"namespaces_done"`
	NamespacesTotal int    `json:"namespaces_total"`
	Documents       int64  `json:"documents"`
	Bytes           int64  `json:"bytes"`
}

// Progress report intervals of Dump.
const (
	progressDocs  = 1000
	progressBytes = 8 << 20
)

// Dump writes an archive of cols, read through src, compressed, to w. It
// returns the manifest. Views get their metadata only; src is not asked for
// their documents. With opts.Oplog, the captured oplog follows once every
// collection is written. On error or cancellation, the temporary files are
// removed and what was written to w is not a valid archive.
func Dump(ctx context.Context, w io.Writer, cols []Collection, src Source, opts *DumpOptions) (*Manifest, error) {
	o := dumpDefaults(opts)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	declared, err := headerCollections(cols, o.Oplog != nil)
	if err != nil {
		return nil, err
	}
	h := Header{
		ToolVersion:   o.ToolVersion,
		ServerVersion: o.ServerVersion,
		Collections:   declared,
		Node:          o.Node,
	}
	fw, finish, err := newDumpWriter(w, h, &o)
	if err != nil {
		return nil, err
	}

	total := 0
	for _, c := range cols {
		if !c.isView() {
			total++
		}
	}
	d := &dumper{src: src, fw: fw, progress: o.Progress, total: total}
	if err := d.run(ctx, cols, o.Parallel, o.Oplog); err != nil {
		fw.Close() // removes the temporary files of unfinished collections
		finish()
		return nil, err
	}
	if err := fw.Close(); err != nil {
		finish()
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return fw.Manifest(), nil
}

// dumpDefaults returns opts with the defaults filled in.
func dumpDefaults(opts *DumpOptions) DumpOptions {
	var o DumpOptions
	if opts != nil {
		o = *opts
	}
	if o.Format == nil {
		o.Format = TarFormat{}
	}
	if o.Compression == nil {
		o.Compression = NewGzip(DefaultGzipLevel)
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if af, ok := o.Format.(ArchiveFormat); ok && af.ConcurrentCollections == 0 {
		af.ConcurrentCollections = o.Parallel
		o.Format = af
	}
	return o
}

// run dumps the collections of cols, parallel at once, then the oplog of
// oplog if set; it stops at the first error, which it returns.
func (d *dumper) run(ctx context.Context, cols []Collection, parallel int, oplog OplogSource) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan Collection)
	var wg sync.WaitGroup
	for range min(parallel, max(len(cols), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				if err := d.collection(ctx, c); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, c := range cols {
		if c.isView() {
			continue
		}
		select {
		case jobs <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if oplog != nil && context.Cause(ctx) == nil {
		if err := d.oplog(ctx, oplog); err != nil {
			cancel(err)
		}
	}
	return context.Cause(ctx)
}

// newDumpWriter starts the archive on w, and returns with it the function
// that ends its compression once the Writer is closed. A tar compressed by a
// built-in gzip or zstd is compressed one collection at a time, as each is
// read (see parts.go); anything else goes through one compressed stream.
func newDumpWriter(w io.Writer, h Header, o *DumpOptions) (Writer, func() error, error) {
	if tf, ok := o.Format.(TarFormat); ok {
		if pc, ok := o.Compression.(partCompression); ok {
			fw, err := tf.newPartWriter(w, h, &o.Writer, pc)
			return fw, func() error { return nil }, err
		}
	}
	cw, err := o.Compression.NewWriter(w)
	if err != nil {
		return nil, nil, err
	}
	fw, err := o.Format.NewWriter(cw, h, &o.Writer)
	if err != nil {
		cw.Close()
		return nil, nil, err
	}
	finish := func() error {
		if err := cw.Close(); err != nil {
			return fmt.Errorf("archive: finishing %s compression: %w", o.Compression.Name(), err)
		}
		return nil
	}
	return fw, finish, nil
}

type dumper struct {
	src      Source
	fw       Writer
	progress func(Progress)
	total    int

	mu    sync.Mutex
	done  int
	docs  int64
	bytes int64
}

func (d *dumper) report(ns string, docs, bytes int64, finished bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs += docs
	d.bytes += bytes
	if finished {
		d.done++
	}
	if d.progress != nil {
		d.progress(Progress{Namespace: ns, NamespacesDone: d.done, NamespacesTotal: d.total, Documents: d.docs, Bytes: d.bytes})
	}
}

// errStop ends a Source's iteration when the dump is cancelled.
var errStop = errors.New("archive: dump cancelled")

func (d *dumper) collection(ctx context.Context, c Collection) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	w, err := d.fw.Collection(c)
	if err != nil {
		return err
	}
	// Not closed on error: the Writer's Close discards unfinished collections.
	f := d.feed(ctx, c.Namespace(), w)
	err = d.src.Documents(ctx, c, f.emit)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		if f.failed(err) {
			return err
		}
		return fmt.Errorf("archive: dumping %s: %w", c.Namespace(), err)
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if err := w.Close(); err != nil {
		return err
	}
	f.flush(true)
	return nil
}

// feed passes the documents of one namespace to its CollectionWriter and
// reports progress every progressDocs documents or progressBytes bytes.
type feed struct {
	d           *dumper
	ctx         context.Context
	ns          string
	w           CollectionWriter
	docs, bytes int64 // since the last report
	err         error // the CollectionWriter's, which emit returned
}

func (d *dumper) feed(ctx context.Context, ns string, w CollectionWriter) *feed {
	return &feed{d: d, ctx: ctx, ns: ns, w: w}
}

func (f *feed) emit(doc []byte) error {
	if err := f.w.WriteDocument(doc); err != nil {
		f.err = err
		return err
	}
	f.docs++
	f.bytes += int64(len(doc))
	if f.docs >= progressDocs || f.bytes >= progressBytes {
		if f.ctx.Err() != nil {
			return errStop
		}
		f.flush(false)
	}
	return nil
}

// failed reports whether err, which the Source returned, is the
// CollectionWriter's that emit gave it: it says what happened, and that it
// is this package's, itself.
func (f *feed) failed(err error) bool { return f.err != nil && errors.Is(err, f.err) }

// flush reports what was fed since the last report; finished when the
// namespace is complete.
func (f *feed) flush(finished bool) {
	f.d.report(f.ns, f.docs, f.bytes, finished)
	f.docs, f.bytes = 0, 0
}
