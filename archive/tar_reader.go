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
	"path"
	"strings"
)

// NewReader reads an uncompressed tar archive.
func (f TarFormat) NewReader(r io.Reader) (Reader, error) {
	spill := f.Spill.withDefaults()
	return &tarReader{
		tr:           tar.NewReader(bufio.NewReaderSize(r, 64<<10)),
		allowMissing: f.AllowMissingManifest,
		spillDir:     spill.Dir,
		threshold:    spill.Threshold,
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

	started  bool           // an entry was read
	skips    []SkippedEntry // entries passed over (AllowMissingManifest)
	skipCost int64          // what they cost, bounded by maxSkipped

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
var errReaderClosed = errors.New("archive: read after the Reader was closed")

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
		c, err := r.entry(hdr)
		if err != nil {
			return nil, r.fail(err)
		}
		if c != nil {
			return c, nil
		}
	}
}

// entry takes one tar entry: it returns the Collection of a .bson entry,
// whose documents follow, or nil for an entry it read or passed over.
func (r *tarReader) entry(hdr *tar.Header) (*Collection, error) {
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return nil, err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeXGlobalHeader:
	case tar.TypeSymlink, tar.TypeLink:
		return nil, fmt.Errorf("%w: tar entry %q is a link to %q", ErrUnsafePath, hdr.Name, hdr.Linkname)
	default:
		return nil, fmt.Errorf("%w: tar entry %q has type %q, not a regular file", ErrUnsafePath, hdr.Name, hdr.Typeflag)
	}
	first := !r.started
	r.started = true
	if first && !r.allowMissing && !writtenFirst(hdr, name) {
		return nil, fmt.Errorf("%w: the tar starts with %q, where a tar of this package starts with a collection's metadata, %s/%s or %s: it has no manifest.json to check it against, such as a tarred mongodump directory, and nothing of it was read; read it with TarFormat.AllowMissingManifest (keepslotctl restore --allow-missing-manifest)",
			ErrCorrupt, hdr.Name, tarRoot, oplogFile, manifestName)
	}
	parts := strings.Split(name, "/")
	if parts[0] == tarRoot || parts[0] == "." {
		parts = parts[1:]
	}
	switch {
	case hdr.Typeflag == tar.TypeXGlobalHeader:
		return nil, nil
	case hdr.Typeflag == tar.TypeDir:
		if len(parts) <= 1 {
			return nil, nil // the dump root or a database directory
		}
		return nil, r.skipForeign(hdr, parts)
	case r.manifest != nil:
		return nil, fmt.Errorf("%w: tar entry %q follows manifest.json, which must be last", ErrCorrupt, hdr.Name)
	case name == manifestName:
		return nil, r.readManifest(hdr)
	case len(parts) == 1 && parts[0] == oplogFile:
		return r.oplogEntry(hdr)
	case len(parts) == 2 && strings.HasSuffix(parts[1], metadataExt):
		return nil, r.readMetadata(hdr, parts[0], strings.TrimSuffix(parts[1], metadataExt))
	case len(parts) == 2 && strings.HasSuffix(parts[1], bsonExt):
		return r.startRun(hdr, parts[0], strings.TrimSuffix(parts[1], bsonExt))
	}
	return nil, r.skipForeign(hdr, parts)
}

func (r *tarReader) readManifest(hdr *tar.Header) error {
	data, err := r.readEntry(hdr, maxManifestSize)
	if err != nil {
		return err
	}
	m, err := parseManifest(data)
	if err != nil {
		return err
	}
	r.manifest = m
	return nil
}

// oplogEntry takes dump/oplog.bson: its run starts now, or with
// AllowMissingManifest at the end of the tar, since a tarred mongodump
// directory may have it anywhere.
func (r *tarReader) oplogEntry(hdr *tar.Header) (*Collection, error) {
	if err := r.claimOplog(); err != nil {
		return nil, err
	}
	if !r.allowMissing {
		return r.startOplogRun(hdr.Name, nil), nil
	}
	return nil, r.spoolOplog(hdr)
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
