package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ArchiveFormat is mongodump's --archive format, as specified in
// mongo-tools' common/archive/spec.md. Its zero value has the default
// settings.
type ArchiveFormat struct {
	// ConcurrentCollections is recorded in the archive header; mongorestore
	// restores at least that many collections at once. Default 4.
	ConcurrentCollections int
}

// Name returns "archive".
func (ArchiveFormat) Name() string { return "archive" }

// Extension returns ".archive".
func (ArchiveFormat) Extension() string { return ".archive" }

// Match reports whether head starts with the archive format's magic number.
func (ArchiveFormat) Match(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head) == archiveMagic
}

const (
	archiveMagic   uint32 = 0x8199e26d
	archiveVersion        = "0.1"
	// maxPrelude bounds the prelude (header and metadata documents) read.
	maxPrelude = 128 << 20
	// defaultServerVersion is recorded when the Header has none:
	// mongorestore parses the field as a version.
	defaultServerVersion = "0.0.0"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

var terminatorBytes = []byte{0xff, 0xff, 0xff, 0xff}

// archiveHeader is the header document of the prelude.
type archiveHeader struct {
	ConcurrentCollections int32  `bson:"concurrent_collections"`
	Version               string `bson:"version"`
	ServerVersion         string `bson:"server_version"`
	ToolVersion           string `bson:"tool_version"`
}

// archiveMetadata is a metadata document of the prelude.
type archiveMetadata struct {
	DB         string `bson:"db"`
	Collection string `bson:"collection"`
	Metadata   string `bson:"metadata"`
	Size       int64  `bson:"size"`
	Type       string `bson:"type"`
}

// namespaceHeader starts a segment or, with EOF set, ends a namespace.
type namespaceHeader struct {
	DB         string `bson:"db"`
	Collection string `bson:"collection"`
	EOF        bool   `bson:"EOF"`
	CRC        int64  `bson:"CRC"`
}

func marshalNamespaceHeader(c Collection, eof bool, crc uint64) ([]byte, error) {
	return bson.Marshal(bson.D{
		{Key: "db", Value: c.DB},
		{Key: "collection", Value: c.Name},
		{Key: "EOF", Value: eof},
		{Key: "CRC", Value: int64(crc)},
	})
}

func appendDoc(buf []byte, d bson.D) ([]byte, error) {
	b, err := bson.Marshal(d)
	return append(buf, b...), err
}

// NewWriter writes the magic number and the prelude (the header and the
// metadata of every collection of h) to w.
func (f ArchiveFormat) NewWriter(w io.Writer, h Header, opts *WriterOptions) (Writer, error) {
	idx, err := declared(h)
	if err != nil {
		return nil, err
	}
	h = headerDefaults(h)
	conc := f.ConcurrentCollections
	if conc <= 0 {
		conc = 4
	}
	server := h.ServerVersion
	if server == "" {
		server = defaultServerVersion
	}
	buf := binary.LittleEndian.AppendUint32(nil, archiveMagic)
	buf, err = appendDoc(buf, bson.D{
		{Key: "concurrent_collections", Value: int32(min(conc, 1<<20))},
		{Key: "version", Value: archiveVersion},
		{Key: "server_version", Value: server},
		{Key: "tool_version", Value: h.ToolVersion},
	})
	if err != nil {
		return nil, fmt.Errorf("archive: encoding archive header: %w", err)
	}
	for _, c := range h.Collections {
		if c.IsOplog() {
			if buf, err = appendOplogPrelude(buf); err != nil {
				return nil, err
			}
			continue
		}
		meta, err := c.metadataJSON()
		if err != nil {
			return nil, err
		}
		buf, err = appendDoc(buf, bson.D{
			{Key: "db", Value: c.DB},
			{Key: "collection", Value: c.Name},
			{Key: "metadata", Value: string(meta)},
			{Key: "size", Value: int32(0)},
			{Key: "type", Value: c.typ()},
		})
		if err != nil {
			return nil, fmt.Errorf("archive: encoding prelude of %s: %w", c.Namespace(), err)
		}
	}
	buf = append(buf, terminatorBytes...)
	if _, err := w.Write(buf); err != nil {
		return nil, fmt.Errorf("archive: writing archive prelude: %w", err)
	}
	return &archWriter{
		w:       w,
		hdr:     h,
		idx:     idx,
		state:   make([]collState, len(h.Collections)),
		stats:   make([]NamespaceStats, len(h.Collections)),
		open:    make(map[*archColl]struct{}),
		segSize: opts.segmentSize(),
	}, nil
}

type archWriter struct {
	mu       sync.Mutex
	w        io.Writer
	err      error
	hdr      Header
	idx      map[string]int
	state    []collState
	stats    []NamespaceStats
	open     map[*archColl]struct{}
	closed   bool
	manifest *Manifest
	segSize  int

	oplogSpan OplogSpan // set by Dump (oplog.go)
}

// write writes one whole block; the caller holds mu.
func (w *archWriter) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("archive: writing archive: %w", err)
	}
	return w.err
}

// writeSegment writes a segment: header, documents, terminator; the
// caller holds mu.
func (w *archWriter) writeSegment(hdr []byte, docs *chunkBuf) error {
	if err := w.write(hdr); err != nil {
		return err
	}
	if w.err == nil {
		if _, err := docs.WriteTo(w.w); err != nil {
			w.err = fmt.Errorf("archive: writing archive: %w", err)
			return w.err
		}
	}
	return w.write(terminatorBytes)
}

func (w *archWriter) Collection(c Collection) (CollectionWriter, error) {
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
	hdr, err := marshalNamespaceHeader(w.hdr.Collections[i], false, 0)
	if err != nil {
		return nil, fmt.Errorf("archive: encoding segment header of %s: %w", c.Namespace(), err)
	}
	w.state[i] = collOpen
	cw := &archColl{w: w, i: i, ns: c.Namespace(), hdr: hdr}
	w.open[cw] = struct{}{}
	return cw, nil
}

// Close writes the end blocks of the views not written, and fails with
// ErrIncomplete if any other collection of the header was not written and
// closed.
func (w *archWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("archive: Writer closed twice")
	}
	w.closed = true
	var missing []string
	for cw := range w.open {
		cw.buf.Reset()
		cw.done = true
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
	for i, c := range w.hdr.Collections {
		if w.state[i] != collPending {
			continue
		}
		eof, err := marshalNamespaceHeader(c, true, 0)
		if err != nil {
			return fmt.Errorf("archive: encoding end block of %s: %w", c.Namespace(), err)
		}
		if err := w.write(append(eof, terminatorBytes...)); err != nil {
			return err
		}
		w.state[i] = collDone
		w.stats[i] = NamespaceStats{Namespace: c.Namespace()}
	}
	if w.err != nil {
		return w.err
	}
	w.manifest = &Manifest{
		FormatVersion: ManifestVersion,
		ToolVersion:   w.hdr.ToolVersion,
		ServerVersion: w.hdr.ServerVersion,
		Created:       w.hdr.Created,
		Namespaces:    append([]NamespaceStats{}, w.stats...),
	}
	splitOplog(w.manifest, w.oplogSpan)
	return nil
}

func (w *archWriter) Manifest() *Manifest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.manifest
}

// archColl buffers the documents of one segment of a collection.
type archColl struct {
	w    *archWriter
	i    int
	ns   string
	hdr  []byte // the segment header
	buf  chunkBuf
	crc  uint64
	docs int64
	size int64
	done bool
}

func (c *archColl) WriteDocument(doc []byte) error {
	if c.done {
		return fmt.Errorf("archive: WriteDocument on closed collection %s", c.ns)
	}
	if err := checkDocument(doc); err != nil {
		return fmt.Errorf("archive: collection %s, document %d: %w", c.ns, c.docs, err)
	}
	if c.buf.Len() > 0 && len(c.hdr)+c.buf.Len()+len(doc)+len(terminatorBytes) > c.w.segSize {
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.crc = crc64.Update(c.crc, crcTable, doc)
	c.docs++
	c.size += int64(len(doc))
	c.buf.Write(doc)
	return nil
}

// flush writes the buffered segment.
func (c *archColl) flush() error {
	c.w.mu.Lock()
	err := c.w.writeSegment(c.hdr, &c.buf)
	c.w.mu.Unlock()
	c.buf.Reset()
	return err
}

func (c *archColl) Close() error {
	if c.done {
		return fmt.Errorf("archive: collection %s closed twice", c.ns)
	}
	c.done = true
	defer c.buf.Reset()
	w := c.w
	eof, err := marshalNamespaceHeader(w.hdr.Collections[c.i], true, c.crc)
	if err != nil {
		return fmt.Errorf("archive: encoding end block of %s: %w", c.ns, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.open, c)
	if w.closed {
		return fmt.Errorf("archive: collection %s closed after its Writer", c.ns)
	}
	if c.buf.Len() > 0 {
		if err := w.writeSegment(c.hdr, &c.buf); err != nil {
			return err
		}
	}
	if err := w.write(append(eof, terminatorBytes...)); err != nil {
		return err
	}
	w.state[c.i] = collDone
	w.stats[c.i] = NamespaceStats{Namespace: c.ns, Documents: c.docs, Bytes: c.size}
	return nil
}

// NewReader reads the magic number and prelude of an uncompressed archive.
func (ArchiveFormat) NewReader(r io.Reader) (Reader, error) {
	ar := &archReader{br: bufio.NewReaderSize(r, 64<<10), idx: make(map[string]int), cur: -1}
	if err := ar.readPrelude(); err != nil {
		return nil, err
	}
	return ar, nil
}

type archReader struct {
	br      *bufio.Reader
	hdr     archiveHeader
	cols    []Collection
	idx     map[string]int // namespace (and system.buckets namespace of timeseries) -> index
	status  []collState
	crc     []uint64
	stats   []NamespaceStats
	cur     int // index of the current segment's collection, -1 when none
	curName string
	final   *Manifest
	err     error
	lenBuf  [4]byte
}

func (r *archReader) fail(err error) error {
	r.err = err
	return err
}

// readBlockDoc reads a document of a block, or reports the terminator.
func (r *archReader) readBlockDoc(where position) (doc []byte, isTerminator bool, err error) {
	n, err := readLength(r.br, &r.lenBuf, where)
	if err != nil {
		return nil, false, err
	}
	if n == terminator {
		return nil, true, nil
	}
	doc, err = readDocumentBody(r.br, n, where)
	return doc, false, err
}

func (r *archReader) readPrelude() error {
	var magic [4]byte
	if _, err := io.ReadFull(r.br, magic[:]); err != nil {
		return fmt.Errorf("%w: input too short for an archive magic number: %w", ErrUnknownFormat, err)
	}
	if binary.LittleEndian.Uint32(magic[:]) != archiveMagic {
		return fmt.Errorf("%w: no mongodump archive magic number", ErrUnknownFormat)
	}
	doc, term, err := r.readBlockDoc(at("archive header"))
	if err == io.EOF || term {
		return fmt.Errorf("%w: archive has no header document", ErrCorrupt)
	}
	if err != nil {
		return err
	}
	if err := bson.Unmarshal(doc, &r.hdr); err != nil {
		return fmt.Errorf("%w: archive header: %w", ErrCorrupt, err)
	}
	if r.hdr.Version != archiveVersion {
		return fmt.Errorf("%w: archive format version %q, this reader knows %q", ErrUnknownFormat, r.hdr.Version, archiveVersion)
	}
	total := len(doc)
	for {
		doc, term, err := r.readBlockDoc(at("archive prelude"))
		if err == io.EOF {
			return fmt.Errorf("%w: archive ends inside its prelude", ErrCorrupt)
		}
		if err != nil {
			return err
		}
		if term {
			return nil
		}
		if total += len(doc); total > maxPrelude {
			return fmt.Errorf("%w: %w: archive prelude is above %d bytes", ErrCorrupt, ErrTooLarge, maxPrelude)
		}
		var m archiveMetadata
		if err := bson.Unmarshal(doc, &m); err != nil {
			return fmt.Errorf("%w: archive prelude metadata: %w", ErrCorrupt, err)
		}
		if m.DB == "" && m.Collection == oplogName {
			if err := r.addOplog(); err != nil {
				return err
			}
			continue
		}
		if err := checkNames(m.DB, m.Collection); err != nil {
			return fmt.Errorf("%w: archive prelude: %w", ErrCorrupt, err)
		}
		c, err := parseMetadata(m.DB, m.Collection, []byte(m.Metadata))
		if err != nil {
			return err
		}
		c.DB, c.Name = m.DB, m.Collection
		if m.Type != "" && m.Type != "collection" {
			c.Type = m.Type
		}
		ns := c.Namespace()
		if _, dup := r.idx[ns]; dup {
			return fmt.Errorf("%w: %w: archive prelude declares %s twice", ErrCorrupt, ErrUnknownNamespace, ns)
		}
		i := len(r.cols)
		r.idx[ns] = i
		if c.Type == "timeseries" {
			// mongodump stores a time-series collection's data as its buckets.
			r.idx[c.DB+".system.buckets."+c.Name] = i
		}
		r.cols = append(r.cols, c)
		r.status = append(r.status, collPending)
		r.crc = append(r.crc, 0)
		r.stats = append(r.stats, NamespaceStats{Namespace: ns})
	}
}

func (r *archReader) Next() (*Collection, error) {
	if r.err != nil {
		return nil, r.err
	}
	for r.cur >= 0 {
		if _, err := r.ReadDocument(); err != nil && err != io.EOF {
			return nil, err
		}
	}
	for {
		doc, term, err := r.readBlockDoc(at("namespace header"))
		if err == io.EOF {
			return nil, r.fail(r.finish())
		}
		if err != nil {
			return nil, r.fail(err)
		}
		if term {
			return nil, r.fail(fmt.Errorf("%w: a terminator where a namespace header belongs", ErrCorrupt))
		}
		var h namespaceHeader
		if err := bson.Unmarshal(doc, &h); err != nil {
			return nil, r.fail(fmt.Errorf("%w: namespace header: %w", ErrCorrupt, err))
		}
		ns := h.DB + "." + h.Collection
		i, ok := r.idx[ns]
		if !ok {
			return nil, r.fail(fmt.Errorf("%w: %w: archive holds a block of %s, which its prelude does not declare", ErrCorrupt, ErrUnknownNamespace, ns))
		}
		if r.status[i] == collDone {
			return nil, r.fail(fmt.Errorf("%w: archive holds a block of %s after its end block", ErrCorrupt, ns))
		}
		if h.EOF {
			if _, term, err := r.readBlockDoc(at("end block of " + ns)); err != nil || !term {
				if err == nil || err == io.EOF {
					err = fmt.Errorf("%w: end block of %s is not followed by a terminator", ErrCorrupt, ns)
				}
				return nil, r.fail(err)
			}
			if uint64(h.CRC) != r.crc[i] {
				return nil, r.fail(fmt.Errorf("%w: CRC-64 of %s is %d, its end block says %d", ErrCorrupt, ns, int64(r.crc[i]), h.CRC))
			}
			r.status[i] = collDone
			continue
		}
		r.status[i] = collOpen
		if head, err := r.br.Peek(4); err == nil && binary.LittleEndian.Uint32(head) == terminator {
			r.br.Discard(4) // an empty segment
			continue
		}
		r.cur, r.curName = i, ns
		c := r.cols[i].clone()
		if ns != c.Namespace() {
			c.Name = strings.TrimPrefix(ns, c.DB+".")
		}
		return &c, nil
	}
}

func (r *archReader) ReadDocument() ([]byte, error) {
	if r.cur < 0 {
		if r.err != nil && r.err != io.EOF {
			return nil, r.err
		}
		return nil, io.EOF
	}
	i := r.cur
	where := position{what: "segment of ", name: r.curName, doc: r.stats[i].Documents}
	doc, term, err := r.readBlockDoc(where)
	if err == io.EOF {
		err = fmt.Errorf("%w: %s: archive ends inside a segment", ErrCorrupt, where)
	}
	if err != nil {
		r.cur = -1
		return nil, r.fail(err)
	}
	if term {
		r.cur = -1
		return nil, io.EOF
	}
	r.crc[i] = crc64.Update(r.crc[i], crcTable, doc)
	r.stats[i].Documents++
	r.stats[i].Bytes += int64(len(doc))
	return doc, nil
}

// finish checks that every namespace (views aside) got its end block.
func (r *archReader) finish() error {
	m := &Manifest{
		FormatVersion: ManifestVersion,
		ToolVersion:   r.hdr.ToolVersion,
		ServerVersion: r.hdr.ServerVersion,
		Namespaces:    []NamespaceStats{},
	}
	for i, c := range r.cols {
		if r.status[i] != collDone && !c.isView() {
			return fmt.Errorf("%w: archive ends before the end block of %s", ErrCorrupt, c.Namespace())
		}
		m.Namespaces = append(m.Namespaces, r.stats[i])
	}
	splitOplog(m, OplogSpan{})
	r.final = m
	return io.EOF
}

func (r *archReader) Collections() []Collection {
	out := make([]Collection, len(r.cols))
	for i, c := range r.cols {
		out[i] = c.clone()
	}
	return out
}

func (r *archReader) Manifest() *Manifest { return r.final }
