package archive

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keepslot/keepslot/internal/chunk"
)

// TarFormat is the tar format: mongodump's directory layout under "dump/"
// plus a closing manifest.json. Tar is its default value.
type TarFormat struct {
	// AllowMissingManifest lets the reader accept a tar without
	// manifest.json, such as a tarred mongodump directory. Such a tar has
	// no integrity check: a cut at an entry boundary goes unnoticed. And
	// where a .bson entry precedes its .metadata.json (this package writes
	// all metadata first), the Collection that Next returns for it has
	// only its database and name; Collections has the rest at the end.
	AllowMissingManifest bool

	// SpillDir and SpillThreshold apply to a Reader with
	// AllowMissingManifest, which returns oplog.bson last, wherever the tar
	// has it (`tar czf` orders a dump directory as the file system lists
	// it): the reader holds the oplog until the end of the tar, in memory
	// if it is at most SpillThreshold bytes (default
	// DefaultSpillThreshold), else in a temporary file (mode 0600) in
	// SpillDir ("" = os.TempDir()), removed once the oplog is read, on an
	// error, and on Close (the Reader implements io.Closer). A Writer
	// takes these from WriterOptions instead.
	SpillDir       string
	SpillThreshold int64
}

// Name returns "tar".
func (TarFormat) Name() string { return "tar" }

// Extension returns ".tar".
func (TarFormat) Extension() string { return ".tar" }

// Match reports whether head starts with a POSIX (ustar) tar header.
func (TarFormat) Match(head []byte) bool {
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

const (
	tarRoot      = "dump"
	manifestName = "manifest.json"
	bsonExt      = ".bson"
	metadataExt  = ".metadata.json"
	spillPattern = "keepslot-archive-*.bson.tmp"
	preludeFile  = "prelude.json" // written by mongodump 100.x, not read
)

func tarBase(c Collection) string {
	if c.IsOplog() {
		return tarRoot + "/" + oplogName
	}
	return tarRoot + "/" + c.DB + "/" + escapeName(c.Name)
}

// collState tracks a declared collection in a Writer.
type collState int

const (
	collPending collState = iota
	collOpen
	collDone
)

// declared indexes and checks the collections of a Header.
func declared(h Header) (map[string]int, error) {
	idx := make(map[string]int, len(h.Collections))
	for i, c := range h.Collections {
		if err := checkNames(c.DB, c.Name); err != nil && !c.IsOplog() {
			return nil, fmt.Errorf("archive: collection %d of the header: %w", i, err)
		}
		if _, dup := idx[c.Namespace()]; dup {
			return nil, fmt.Errorf("%w: %s is declared twice in the header", ErrUnknownNamespace, c.Namespace())
		}
		idx[c.Namespace()] = i
	}
	return idx, nil
}

func headerDefaults(h Header) Header {
	out := h
	if out.Created.IsZero() {
		out.Created = time.Now()
	}
	out.Created = out.Created.UTC().Truncate(time.Second)
	out.Collections = make([]Collection, len(h.Collections))
	for i, c := range h.Collections {
		out.Collections[i] = c.clone()
	}
	return out
}

// NewWriter starts a tar archive on w and writes the metadata.json entry of
// every collection of h.
func (TarFormat) NewWriter(w io.Writer, h Header, opts *WriterOptions) (Writer, error) {
	tw, err := newTarWriter(w, h, opts, nil)
	if err != nil {
		return nil, err
	}
	return tw, nil
}

// newPartWriter starts a tar archive compressed by pc on out, one part per
// collection, compressed while the collection is written (see parts.go).
func (TarFormat) newPartWriter(out io.Writer, h Header, opts *WriterOptions, pc partCompression) (Writer, error) {
	tw, err := newTarWriter(out, h, opts, pc)
	if err != nil {
		return nil, err
	}
	return tw, nil
}

func newTarWriter(w io.Writer, h Header, opts *WriterOptions, pc partCompression) (*tarWriter, error) {
	idx, err := declared(h)
	if err != nil {
		return nil, err
	}
	h = headerDefaults(h)
	tw := &tarWriter{
		hdr:       h,
		idx:       idx,
		state:     make([]collState, len(h.Collections)),
		stats:     make([]NamespaceStats, len(h.Collections)),
		open:      make(map[*tarColl]struct{}),
		threshold: opts.spillThreshold(),
		dir:       opts.spillDir(),
		parts:     pc,
		out:       w,
	}
	if pc == nil {
		tw.tw = tar.NewWriter(w)
	}
	// Every metadata entry goes in the first part.
	err = tw.writeTar(func(t *tar.Writer) error {
		for _, c := range h.Collections {
			if c.IsOplog() {
				continue // no metadata
			}
			meta, err := c.metadataJSON()
			if err != nil {
				return err
			}
			if err := tw.writeEntry(t, tarBase(c)+metadataExt, meta); err != nil {
				return err
			}
		}
		return t.Flush()
	})
	if err != nil {
		return nil, err
	}
	return tw, nil
}

type tarWriter struct {
	mu        sync.Mutex
	tw        *tar.Writer     // the archive's tar stream, when compressed as one stream
	parts     partCompression // else the compression of its parts
	out       io.Writer       // where the archive goes: the compressed stream, or the raw output of parts
	err       error           // sticky write error
	hdr       Header
	idx       map[string]int
	state     []collState
	stats     []NamespaceStats
	open      map[*tarColl]struct{}
	closed    bool
	manifest  *Manifest
	threshold int64        // of inMem
	inMem     atomic.Int64 // bytes held in memory by open collections (compressed, with parts)
	dir       string

	oplogSpan OplogSpan // set by Dump (oplog.go)
}

func (w *tarWriter) header(name string, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  w.hdr.Created,
	}
}

// writeTar calls fill with the tar stream: the archive's own, or one over a
// new part, which it ends. The caller holds mu or owns w alone.
func (w *tarWriter) writeTar(fill func(*tar.Writer) error) error {
	if w.err != nil {
		return w.err
	}
	if w.parts == nil {
		if err := fill(w.tw); err != nil {
			w.err = err
		}
		return w.err
	}
	part, err := w.parts.newPart(w.out)
	if err != nil {
		w.err = err
		return err
	}
	err = fill(tar.NewWriter(part))
	if cerr := part.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("archive: writing the archive: %w", cerr)
	}
	if err != nil {
		w.err = err
	}
	return w.err
}

// writeEntry writes a whole entry to t.
func (w *tarWriter) writeEntry(t *tar.Writer, name string, data []byte) error {
	if err := t.WriteHeader(w.header(name, int64(len(data)))); err != nil {
		return fmt.Errorf("archive: writing tar header of %s: %w", name, err)
	}
	if _, err := t.Write(data); err != nil {
		return fmt.Errorf("archive: writing tar entry %s: %w", name, err)
	}
	return nil
}

func (w *tarWriter) Collection(c Collection) (CollectionWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("archive: Collection called after Close")
	}
	i, ok := w.idx[c.Namespace()]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not in the header given to NewWriter", ErrUnknownNamespace, c.Namespace())
	}
	if w.state[i] != collPending {
		return nil, fmt.Errorf("archive: collection %s is already being written", c.Namespace())
	}
	cw := &tarColl{
		w:    w,
		i:    i,
		name: tarBase(w.hdr.Collections[i]) + bsonExt,
		ns:   c.Namespace(),
		sum:  sha256.New(),
	}
	cw.buf = spillBuf{w: w, ns: cw.ns}
	if w.parts != nil {
		z, err := w.parts.newPart(&cw.buf)
		if err != nil {
			return nil, err
		}
		cw.z = z
	}
	w.state[i] = collOpen
	w.open[cw] = struct{}{}
	return cw, nil
}

// Close writes manifest.json and the tar trailer. It fails with
// ErrIncomplete, writing neither, if a collection of the header (other than
// a view) was not written and closed; the temporary files of collections
// left open are removed.
func (w *tarWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("archive: Writer closed twice")
	}
	w.closed = true
	var missing []string
	for cw := range w.open {
		cw.discard()
		missing = append(missing, cw.ns)
	}
	for i, c := range w.hdr.Collections {
		if w.state[i] == collPending && !c.isView() {
			missing = append(missing, c.Namespace())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %d collections not written and closed (%s)", ErrIncomplete, len(missing), strings.Join(first(missing, 5), ", "))
	}
	if w.err != nil {
		return w.err
	}
	m := &Manifest{
		FormatVersion: ManifestVersion,
		ToolVersion:   w.hdr.ToolVersion,
		ServerVersion: w.hdr.ServerVersion,
		Created:       w.hdr.Created,
		Namespaces:    []NamespaceStats{},
		Node:          w.hdr.Node,
	}
	for i := range w.hdr.Collections {
		if w.state[i] == collDone {
			m.Namespaces = append(m.Namespaces, w.stats[i])
		}
	}
	splitOplog(m, w.oplogSpan)
	data, err := m.MarshalJSON()
	if err != nil {
		return fmt.Errorf("archive: encoding manifest: %w", err)
	}
	err = w.writeTar(func(t *tar.Writer) error {
		if err := w.writeEntry(t, manifestName, data); err != nil {
			return err
		}
		if err := t.Close(); err != nil {
			return fmt.Errorf("archive: closing tar: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.manifest = m
	return nil
}

func (w *tarWriter) Manifest() *Manifest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.manifest
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

// tarColl holds one collection until it is complete, when its size is
// known and it is written as one tar entry: its documents, or with parts
// their compressed part, in a spillBuf.
type tarColl struct {
	w      *tarWriter
	i      int
	name   string
	ns     string
	sum    hash.Hash
	docs   int64
	size   int64
	z      io.WriteCloser // with parts: compresses the documents into buf
	buf    spillBuf
	done   bool
	failed error
}

func (c *tarColl) WriteDocument(doc []byte) error {
	if c.done {
		return fmt.Errorf("archive: WriteDocument on closed collection %s", c.ns)
	}
	if c.failed != nil {
		return c.failed
	}
	if err := checkDocument(doc); err != nil {
		return fmt.Errorf("archive: collection %s, document %d: %w", c.ns, c.docs, err)
	}
	c.sum.Write(doc)
	c.docs++
	c.size += int64(len(doc))
	var err error
	if c.z != nil {
		_, err = c.z.Write(doc)
	} else {
		_, err = c.buf.Write(doc)
	}
	if err != nil {
		c.failed = err
	}
	return err
}

// discard drops what the collection holds and removes its temporary file.
func (c *tarColl) discard() {
	c.z = nil // a part left unfinished is garbage
	c.buf.discard()
	c.done = true
}

func (c *tarColl) Close() error {
	if c.done {
		return fmt.Errorf("archive: collection %s closed twice", c.ns)
	}
	defer c.discard()
	if c.failed != nil {
		return c.failed
	}
	if c.z != nil {
		// The part ends where the entry does: at its padding to a block.
		pad := make([]byte, (blockSize-c.size%blockSize)%blockSize)
		_, err := c.z.Write(pad)
		if cerr := c.z.Close(); err == nil {
			err = cerr
		}
		c.z = nil
		if err != nil {
			return fmt.Errorf("archive: compressing %s: %w", c.ns, err)
		}
	}
	if err := c.buf.finish(); err != nil {
		return err
	}
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.open, c)
	if w.closed {
		return fmt.Errorf("archive: collection %s closed after its Writer", c.ns)
	}
	if w.err != nil {
		return w.err
	}
	hdr := w.header(c.name, c.size)
	err := w.writeTar(func(t *tar.Writer) error {
		if err := t.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive: writing tar header of %s: %w", c.name, err)
		}
		if w.parts != nil {
			return nil // the entry's bytes follow, in a part of their own
		}
		return c.buf.writeTo(t, c.name)
	})
	if err == nil && w.parts != nil {
		if err = c.buf.writeTo(w.out, c.name); err != nil {
			w.err = err
		}
	}
	if err != nil {
		return err
	}
	w.state[c.i] = collDone
	w.stats[c.i] = NamespaceStats{
		Namespace: c.ns,
		Documents: c.docs,
		Bytes:     c.size,
		SHA256:    hex.EncodeToString(c.sum.Sum(nil)),
	}
	return nil
}

// blockSize is tar's: every entry is padded to a multiple of it.
const blockSize = 512

// spillBuf holds the bytes of a tar entry in memory while its Writer's
// budget (SpillThreshold, shared by the open collections) allows, then in a
// temporary file.
type spillBuf struct {
	w    *tarWriter
	ns   string
	mem  chunkBuf
	file *os.File
	bw   *bufio.Writer
}

func (b *spillBuf) Write(p []byte) (int, error) {
	if b.file == nil {
		if b.w.hold(len(p)) {
			b.mem.Write(p)
			return len(p), nil
		}
		if err := b.spill(); err != nil {
			return 0, err
		}
	}
	if _, err := b.bw.Write(p); err != nil {
		return 0, fmt.Errorf("archive: spilling %s to %s: %w", b.ns, b.file.Name(), err)
	}
	return len(p), nil
}

// hold reserves n bytes of the Writer's memory budget, and reports whether
// there were that many left.
func (w *tarWriter) hold(n int) bool {
	if w.inMem.Add(int64(n)) <= w.threshold {
		return true
	}
	w.inMem.Add(-int64(n))
	return false
}

// dropMem empties the in-memory buffer and gives its bytes back to the
// Writer's budget.
func (b *spillBuf) dropMem() {
	b.w.inMem.Add(-int64(b.mem.Len()))
	b.mem.Reset()
}

// spill moves the in-memory buffer to a new temporary file.
func (b *spillBuf) spill() error {
	f, err := os.CreateTemp(b.w.dir, spillPattern) // mode 0600
	if err != nil {
		return fmt.Errorf("archive: collection %s exceeds the %d-byte spill threshold and no temporary file could be created (set WriterOptions.SpillDir to a writable directory with free space): %w", b.ns, b.w.threshold, err)
	}
	b.file = f
	b.bw = bufio.NewWriterSize(f, 256<<10)
	if _, err := b.mem.WriteTo(b.bw); err != nil {
		return fmt.Errorf("archive: spilling %s to %s: %w", b.ns, f.Name(), err)
	}
	b.dropMem()
	return nil
}

// finish makes what was written ready to be read by writeTo.
func (b *spillBuf) finish() error {
	if b.file == nil {
		return nil
	}
	if err := b.bw.Flush(); err != nil {
		return fmt.Errorf("archive: spilling %s to %s: %w", b.ns, b.file.Name(), err)
	}
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("archive: rewinding spill file of %s: %w", b.ns, err)
	}
	return nil
}

// writeTo copies what was written to dst, the entry called name.
func (b *spillBuf) writeTo(dst io.Writer, name string) error {
	var err error
	if b.file != nil {
		buf := chunk.Get()
		_, err = io.CopyBuffer(dst, onlyReader{b.file}, buf.B[:chunk.Size])
		buf.Release()
	} else {
		_, err = b.mem.WriteTo(dst)
	}
	if err != nil {
		return fmt.Errorf("archive: writing tar entry %s: %w", name, err)
	}
	return nil
}

// discard drops the buffered data and removes the temporary file.
func (b *spillBuf) discard() {
	b.dropMem()
	if b.file != nil {
		b.file.Close()
		os.Remove(b.file.Name())
		b.file = nil
	}
}

// onlyReader hides an *os.File's WriterTo and ReaderFrom, so that
// io.CopyBuffer uses the given buffer.
type onlyReader struct{ io.Reader }

// NewReader reads an uncompressed tar archive.
func (f TarFormat) NewReader(r io.Reader) (Reader, error) {
	spill := &WriterOptions{SpillDir: f.SpillDir, SpillThreshold: f.SpillThreshold}
	return &tarReader{
		tr:           tar.NewReader(bufio.NewReaderSize(r, 64<<10)),
		allowMissing: f.AllowMissingManifest,
		spillDir:     spill.spillDir(),
		threshold:    spill.spillThreshold(),
		byStem:       make(map[string]int),
		bsonSeen:     make(map[string]bool),
		stats:        make(map[string]*NamespaceStats),
	}, nil
}

type tarReader struct {
	tr           *tar.Reader
	allowMissing bool
	spillDir     string      // for spool
	threshold    int64       // of spool's memory
	spool        *oplogSpool // oplog.bson held until the end of the tar (AllowMissingManifest)

	cols     []Collection   // in order of first appearance
	byStem   map[string]int // "db/escaped-name" -> index in cols
	hasMeta  []bool
	bsonSeen map[string]bool
	order    []string // namespaces with a .bson entry, in order
	stats    map[string]*NamespaceStats

	cur      *tarRun
	manifest *Manifest // manifest.json once read
	final    *Manifest // after io.EOF
	err      error     // sticky; io.EOF at the end
	lenBuf   [4]byte
}

type tarRun struct {
	entry string
	body  io.Reader   // the tar entry, or the spool that holds it
	spool *oplogSpool // released at the end of the run
	st    *NamespaceStats
	sum   hash.Hash
	done  bool
}

func (r *tarReader) fail(err error) error {
	r.err = err
	r.release()
	return err
}

// release drops the oplog the reader holds, if any, and its temporary file.
func (r *tarReader) release() {
	if r.spool != nil {
		r.spool.release()
		r.spool = nil
	}
	if r.cur != nil && r.cur.spool != nil {
		r.cur.spool.release()
		r.cur.spool = nil
	}
}

// errReaderClosed is what a Reader returns once closed.
var errReaderClosed = errors.New("archive: Reader used after Close")

// Close releases what the reader holds: an oplog.bson kept until the end
// of a tar read with AllowMissingManifest, and its temporary file. Reading
// ends with io.EOF or an error, which release it too; Close is for a reader
// given up before that. Next and ReadDocument fail after Close.
func (r *tarReader) Close() error {
	r.release()
	if r.err == nil || r.err == io.EOF {
		r.err = errReaderClosed
	}
	return nil
}

// tarError types an error of archive/tar: malformed headers and early ends
// are ErrCorrupt; errors already typed (by a decompressor) keep their type.
func tarError(err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, tar.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, tar.ErrFieldTooLong):
		return fmt.Errorf("%w: tar: %w", ErrCorrupt, err)
	case strings.HasPrefix(err.Error(), "archive/tar"):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("archive: reading tar: %w", err)
}

// cleanEntryName checks a tar entry name and returns it cleaned of "./"
// prefixes and a trailing "/".
func cleanEntryName(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: tar entry with an empty name", ErrUnsafePath)
	case strings.ContainsRune(name, 0), strings.ContainsRune(name, '\\'):
		return "", fmt.Errorf("%w: tar entry %q has a NUL or backslash in its name", ErrUnsafePath, name)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: tar entry %q has an absolute path", ErrUnsafePath, name)
	}
	els := strings.Split(name, "/")
	if len(els[0]) == 2 && els[0][1] == ':' {
		return "", fmt.Errorf("%w: tar entry %q starts with a drive letter", ErrUnsafePath, name)
	}
	for _, el := range els {
		if el == ".." {
			return "", fmt.Errorf("%w: tar entry %q has a \"..\" element", ErrUnsafePath, name)
		}
	}
	return path.Clean(name), nil
}

func (r *tarReader) Next() (*Collection, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.cur != nil {
		for !r.cur.done {
			if _, err := r.ReadDocument(); err != nil && err != io.EOF {
				return nil, err
			}
		}
		r.cur = nil
	}
	for {
		hdr, err := r.tr.Next()
		if err == io.EOF && r.spool != nil {
			sp := r.spool
			r.spool = nil
			return r.startOplogRun(sp.entry, sp), nil
		}
		if err == io.EOF {
			return nil, r.fail(r.finish())
		}
		if err != nil {
			return nil, r.fail(tarError(err))
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return nil, r.fail(err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeSymlink, tar.TypeLink:
			return nil, r.fail(fmt.Errorf("%w: tar entry %q is a link to %q", ErrUnsafePath, hdr.Name, hdr.Linkname))
		default:
			return nil, r.fail(fmt.Errorf("%w: tar entry %q has type %q, not a regular file", ErrUnsafePath, hdr.Name, hdr.Typeflag))
		}
		if r.manifest != nil {
			return nil, r.fail(fmt.Errorf("%w: tar entry %q follows manifest.json, which must be last", ErrCorrupt, hdr.Name))
		}
		if name == manifestName {
			data, err := r.readEntry(hdr, maxManifestSize)
			if err != nil {
				return nil, r.fail(err)
			}
			m, err := parseManifest(data)
			if err != nil {
				return nil, r.fail(err)
			}
			r.manifest = m
			continue
		}
		parts := strings.Split(name, "/")
		if parts[0] == tarRoot {
			parts = parts[1:]
		}
		if len(parts) == 1 && parts[0] == oplogFile {
			if err := r.claimOplog(); err != nil {
				return nil, r.fail(err)
			}
			if !r.allowMissing {
				return r.startOplogRun(hdr.Name, nil), nil
			}
			// A tarred mongodump directory may have it anywhere.
			if err := r.spoolOplog(hdr); err != nil {
				return nil, r.fail(err)
			}
			continue
		}
		if len(parts) == 2 && strings.HasSuffix(parts[1], metadataExt) {
			if err := r.readMetadata(hdr, parts[0], strings.TrimSuffix(parts[1], metadataExt)); err != nil {
				return nil, r.fail(err)
			}
			continue
		}
		if len(parts) == 2 && strings.HasSuffix(parts[1], bsonExt) {
			c, err := r.startRun(hdr, parts[0], strings.TrimSuffix(parts[1], bsonExt))
			if err != nil {
				return nil, r.fail(err)
			}
			return c, nil
		}
		if err := skipForeign(hdr, parts); err != nil {
			return nil, r.fail(err)
		}
	}
}

// skipForeign decides, from its header alone, on an entry that is not a
// collection file of mongodump's layout: the small prelude.json that
// mongodump writes at the root of a dump or of a database directory is
// passed over; anything else is refused before its body is read, so that
// an entry claiming gigabytes costs nothing.
func skipForeign(hdr *tar.Header, parts []string) error {
	if len(parts) > 0 && len(parts) <= 2 && parts[len(parts)-1] == preludeFile {
		if hdr.Size > maxMetadataSize {
			return fmt.Errorf("%w: %w: tar entry %q is %d bytes, above the %d limit of a prelude.json", ErrCorrupt, ErrTooLarge, hdr.Name, hdr.Size, maxMetadataSize)
		}
		return nil // archive/tar skips its body on the next call
	}
	return fmt.Errorf("%w: tar entry %q (%d bytes) is not part of a mongodump layout (%s/<db>/<collection>.bson and .metadata.json, %s/%s, %s); only a tarred dump directory can be read: re-pack it with nothing else (and without mongodump --gzip)",
		ErrCorrupt, hdr.Name, hdr.Size, tarRoot, tarRoot, oplogFile, manifestName)
}

func (r *tarReader) readEntry(hdr *tar.Header, limit int64) ([]byte, error) {
	if hdr.Size > limit {
		return nil, fmt.Errorf("%w: %w: tar entry %q is %d bytes, above the %d limit", ErrCorrupt, ErrTooLarge, hdr.Name, hdr.Size, limit)
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(r.tr, data); err != nil {
		return nil, truncated(err, at("tar entry "+hdr.Name))
	}
	return data, nil
}

// collectionFor returns the index of the collection of file stem in db,
// adding a bare one when none is known yet.
func (r *tarReader) collectionFor(db, stem string) (int, error) {
	key := db + "/" + stem
	if i, ok := r.byStem[key]; ok {
		return i, nil
	}
	name, err := unescapeName(stem)
	if err != nil {
		return 0, fmt.Errorf("%w: file name %q is not an escaped collection name: %w", ErrCorrupt, stem, err)
	}
	if err := checkNames(db, name); err != nil {
		return 0, err
	}
	r.cols = append(r.cols, Collection{DB: db, Name: name})
	r.hasMeta = append(r.hasMeta, false)
	r.byStem[key] = len(r.cols) - 1
	return len(r.cols) - 1, nil
}

func (r *tarReader) readMetadata(hdr *tar.Header, db, stem string) error {
	i, err := r.collectionFor(db, stem)
	if err != nil {
		return err
	}
	if r.hasMeta[i] {
		return fmt.Errorf("%w: metadata of %s appears twice", ErrCorrupt, r.cols[i].Namespace())
	}
	data, err := r.readEntry(hdr, maxMetadataSize)
	if err != nil {
		return err
	}
	c, err := parseMetadata(db, r.cols[i].Name, data)
	if err != nil {
		return err
	}
	if c.Name != r.cols[i].Name && r.bsonSeen[r.cols[i].Namespace()] {
		return fmt.Errorf("%w: metadata of %s names collection %q after its documents were read", ErrCorrupt, r.cols[i].Namespace(), c.Name)
	}
	r.cols[i] = c
	r.hasMeta[i] = true
	return nil
}

func (r *tarReader) startRun(hdr *tar.Header, db, stem string) (*Collection, error) {
	i, err := r.collectionFor(db, stem)
	if err != nil {
		return nil, err
	}
	ns := r.cols[i].Namespace()
	if r.bsonSeen[ns] {
		return nil, fmt.Errorf("%w: documents of %s appear twice", ErrCorrupt, ns)
	}
	r.bsonSeen[ns] = true
	r.order = append(r.order, ns)
	st := &NamespaceStats{Namespace: ns}
	r.stats[ns] = st
	r.cur = &tarRun{entry: hdr.Name, body: r.tr, st: st, sum: sha256.New()}
	c := r.cols[i].clone()
	return &c, nil
}

func (r *tarReader) ReadDocument() ([]byte, error) {
	if r.err != nil && r.err != io.EOF {
		return nil, r.err
	}
	if r.cur == nil || r.cur.done {
		return nil, io.EOF
	}
	where := position{what: "tar entry ", name: r.cur.entry, doc: r.cur.st.Documents}
	n, err := readLength(r.cur.body, &r.lenBuf, where)
	if err == io.EOF {
		r.cur.done = true
		r.cur.st.SHA256 = hex.EncodeToString(r.cur.sum.Sum(nil))
		if r.cur.spool != nil {
			r.cur.spool.release()
			r.cur.spool = nil
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, r.fail(tarError(err))
	}
	doc, err := readDocumentBody(r.cur.body, n, where)
	if err != nil {
		return nil, r.fail(tarError(err))
	}
	r.cur.sum.Write(doc)
	r.cur.st.Documents++
	r.cur.st.Bytes += int64(len(doc))
	return doc, nil
}

// finish checks what was read against manifest.json.
func (r *tarReader) finish() error {
	m := r.manifest
	if m == nil {
		if !r.allowMissing {
			return fmt.Errorf("%w: the tar has no manifest.json: it was cut short, or not written by this package (TarFormat.AllowMissingManifest reads such tars)", ErrCorrupt)
		}
		m = &Manifest{FormatVersion: ManifestVersion, Namespaces: []NamespaceStats{}}
		for _, ns := range r.order {
			m.Namespaces = append(m.Namespaces, *r.stats[ns])
		}
		splitOplog(m, OplogSpan{})
	} else {
		for _, want := range m.Namespaces {
			got, ok := r.stats[want.Namespace]
			if !ok {
				return fmt.Errorf("%w: manifest.json lists %s but the tar has no documents entry for it", ErrCorrupt, want.Namespace)
			}
			if got.Documents != want.Documents || got.Bytes != want.Bytes || !strings.EqualFold(got.SHA256, want.SHA256) {
				return fmt.Errorf("%w: %s holds %d documents, %d bytes, sha256 %s; manifest.json says %d, %d, %s",
					ErrCorrupt, want.Namespace, got.Documents, got.Bytes, got.SHA256, want.Documents, want.Bytes, want.SHA256)
			}
		}
		if err := checkOplog(m, r.stats[OplogCollection.Namespace()]); err != nil {
			return err
		}
		for _, ns := range r.order {
			if _, ok := m.Stats(ns); !ok && ns != OplogCollection.Namespace() {
				return fmt.Errorf("%w: %w: the tar holds documents of %s, which manifest.json does not list", ErrCorrupt, ErrUnknownNamespace, ns)
			}
		}
	}
	r.final = m
	return io.EOF
}

func (r *tarReader) Collections() []Collection {
	out := make([]Collection, len(r.cols))
	for i, c := range r.cols {
		out[i] = c.clone()
	}
	return out
}

func (r *tarReader) Manifest() *Manifest { return r.final }
