package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

const (
	oplogName = "oplog"
	oplogFile = oplogName + bsonExt // dump/oplog.bson
)

// OplogCollection is the pseudo-collection that holds the oplog captured
// with an archive, where mongodump --oplog puts it, so that
// mongorestore --oplogReplay finds it: the entry dump/oplog.bson, next to
// the database directories, in the tar layout, and the namespace of
// database "" and collection "oplog" in the archive format (declared in
// the prelude with empty metadata). It has no metadata, options or
// indexes. A Reader returns it from Next like a collection, last; use
// IsOplog to tell it apart. Dump writes it when DumpOptions.Oplog is set;
// a Writer accepts it in its Header.
var OplogCollection = Collection{Name: oplogName}

// IsOplog reports whether c is OplogCollection.
func (c Collection) IsOplog() bool { return c.DB == "" && c.Name == oplogName }

// OplogSource supplies the oplog entries that Dump captures.
type OplogSource interface {
	// Oplog is called once, after every collection has been written. It
	// emits the entries to capture, oldest first (emit's argument is only
	// valid during the call), and returns the span of timestamps they
	// cover; Dump counts the entries itself.
	Oplog(ctx context.Context, emit func(entry []byte) error) (OplogSpan, error)
}

// OplogSpan is an oplog capture: the entries with Start <= ts <= End, of
// which Entries are kept. Restored with the replay of all of them, a
// backup is consistent as of End. In JSON its timestamps are objects
// {"t": seconds, "i": ordinal}, as in manifest.json.
type OplogSpan struct {
	Start, End bson.Timestamp
	Entries    int64
}

// OplogStats is what an archive holds of its oplog: the capture's span, and
// the size and SHA-256 of its entries (of oplog.bson in the tar format;
// empty in the archive format). A Reader of the archive format, which has
// no manifest, or of a tar written by mongodump leaves Start and End zero.
type OplogStats struct {
	OplogSpan
	Bytes  int64
	SHA256 string
}

// spanJSON is the JSON shape of an OplogSpan, and with Bytes and SHA256 of
// the oplog in manifest.json.
type spanJSON struct {
	Start   tsJSON `json:"start"`
	End     tsJSON `json:"end"`
	Entries int64  `json:"entries"`
	Bytes   int64  `json:"bytes,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// tsJSON is the JSON shape of a timestamp.
type tsJSON struct {
	T uint32 `json:"t"`
	I uint32 `json:"i"`
}

func (s OplogSpan) json() spanJSON {
	return spanJSON{Start: tsJSON{s.Start.T, s.Start.I}, End: tsJSON{s.End.T, s.End.I}, Entries: s.Entries}
}

func (j spanJSON) span() OplogSpan {
	return OplogSpan{Start: bson.Timestamp{T: j.Start.T, I: j.Start.I}, End: bson.Timestamp{T: j.End.T, I: j.End.I}, Entries: j.Entries}
}

// MarshalJSON encodes s with its timestamps as {"t":…,"i":…}.
func (s OplogSpan) MarshalJSON() ([]byte, error) { return json.Marshal(s.json()) }

// UnmarshalJSON decodes what MarshalJSON encodes.
func (s *OplogSpan) UnmarshalJSON(b []byte) error {
	var j spanJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = j.span()
	return nil
}

func (s *OplogStats) toJSON() *spanJSON {
	if s == nil {
		return nil
	}
	j := s.json()
	j.Bytes, j.SHA256 = s.Bytes, s.SHA256
	return &j
}

func (j *spanJSON) stats() *OplogStats {
	if j == nil {
		return nil
	}
	return &OplogStats{OplogSpan: j.span(), Bytes: j.Bytes, SHA256: j.SHA256}
}

func oplogStats(st NamespaceStats, span OplogSpan) *OplogStats {
	span.Entries = st.Documents
	return &OplogStats{OplogSpan: span, Bytes: st.Bytes, SHA256: st.SHA256}
}

// headerCollections is what Dump declares: cols, and the oplog after them
// when one is captured.
func headerCollections(cols []Collection, oplog bool) ([]Collection, error) {
	for _, c := range cols {
		if c.IsOplog() {
			return nil, errors.New("archive: the oplog is not a collection to dump: set DumpOptions.Oplog to capture one")
		}
	}
	if !oplog {
		return cols, nil
	}
	return append(cols[:len(cols):len(cols)], OplogCollection), nil
}

// oplogSpanner is implemented by the built-in writers, whose manifests
// record the span of the oplog.
type oplogSpanner interface{ setOplogSpan(OplogSpan) }

// oplog writes the entries of src into the archive's oplog namespace.
func (d *dumper) oplog(ctx context.Context, src OplogSource) error {
	w, err := d.fw.Collection(OplogCollection)
	if err != nil {
		return err
	}
	f := d.feed(ctx, OplogCollection.Namespace(), w)
	span, err := src.Oplog(ctx, f.emit)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		if f.failed(err) {
			return err
		}
		return fmt.Errorf("archive: capturing the oplog: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if s, ok := d.fw.(oplogSpanner); ok {
		s.setOplogSpan(span)
	}
	f.flush(false)
	return nil
}

// claimOplog notes that the tar holds an oplog.bson, which it may only once.
func (r *tarReader) claimOplog() error {
	ns := OplogCollection.Namespace()
	if r.bsonSeen[ns] {
		return fmt.Errorf("%w: the tar holds %s twice", ErrCorrupt, oplogFile)
	}
	r.bsonSeen[ns] = true
	return nil
}

// startOplogRun starts reading a tar's oplog.bson, entry, from the tar or
// from the spool that holds it.
func (r *tarReader) startOplogRun(entry string, sp *oplogSpool) *Collection {
	ns := OplogCollection.Namespace()
	r.order = append(r.order, ns)
	r.cols = append(r.cols, OplogCollection)
	r.hasMeta = append(r.hasMeta, true)
	st := &NamespaceStats{Namespace: ns}
	r.stats[ns] = st
	r.cur = &tarRun{entry: entry, body: r.tr, st: st, sum: sha256.New()}
	if sp != nil {
		r.cur.body, r.cur.spool = sp.reader(), sp
	}
	c := OplogCollection
	return &c
}

// oplogSpool holds a tar's oplog.bson from its entry to the end of the tar:
// in memory (chunks from the pool) when it is at most the reader's
// Spill.Threshold, else in a temporary file.
type oplogSpool struct {
	entry string
	mem   chunkBuf
	file  *os.File
	name  string // of file, until removed
}

// spoolOplog reads the oplog.bson entry hdr into a new spool, checking
// each document as ReadDocument will, so that a body of zeros is refused
// at its first length rather than stored.
func (r *tarReader) spoolOplog(hdr *tar.Header) error {
	sp := &oplogSpool{entry: hdr.Name}
	r.spool = sp // released by fail
	var file *bufio.Writer
	if hdr.Size > r.threshold {
		f, err := os.CreateTemp(r.spillDir, spillPattern) // mode 0600
		if err != nil {
			return fmt.Errorf("archive: %s must be held until the end of the tar, which has it before other entries; it is above the %d-byte TarFormat.Spill.Threshold and no temporary file could be created (set TarFormat.Spill.Dir to a writable directory with free space): %w", hdr.Name, r.threshold, err)
		}
		sp.file, sp.name = f, f.Name()
		if os.Remove(sp.name) == nil {
			sp.name = "" // gone from the directory already; the file lives until closed
		}
		file = bufio.NewWriterSize(f, 256<<10)
	}
	where := position{what: "tar entry ", name: hdr.Name}
	for {
		n, err := readLength(r.tr, &r.lenBuf, where)
		if err == io.EOF {
			break
		}
		if err != nil {
			return tarError(err)
		}
		doc, err := readDocumentBody(r.tr, n, where)
		if err != nil {
			return tarError(err)
		}
		if file == nil {
			sp.mem.Write(doc)
		} else if _, err := file.Write(doc); err != nil {
			return sp.writeError(err)
		}
		where.doc++
	}
	if file != nil {
		if err := file.Flush(); err != nil {
			return sp.writeError(err)
		}
		if _, err := sp.file.Seek(0, io.SeekStart); err != nil {
			return sp.writeError(err)
		}
	}
	return nil
}

func (sp *oplogSpool) writeError(err error) error {
	return fmt.Errorf("archive: holding %s in a temporary file until the end of the tar (TarFormat.Spill.Dir sets where): %w", sp.entry, err)
}

// reader reads back what the spool holds.
func (sp *oplogSpool) reader() io.Reader {
	if sp.file != nil {
		return bufio.NewReaderSize(sp.file, 64<<10)
	}
	rs := make([]io.Reader, len(sp.mem.chunks))
	for i, c := range sp.mem.chunks {
		rs[i] = bytes.NewReader(c.B)
	}
	return io.MultiReader(rs...)
}

// release drops what the spool holds and removes its file.
func (sp *oplogSpool) release() {
	sp.mem.Reset()
	if sp.file != nil {
		sp.file.Close()
		sp.file = nil
	}
	if sp.name != "" {
		os.Remove(sp.name)
		sp.name = ""
	}
}

// checkOplog checks a tar's oplog.bson against manifest.json.
func checkOplog(m *Manifest, got *NamespaceStats) error {
	want := m.Oplog
	switch {
	case want == nil && got == nil:
		return nil
	case want == nil:
		return fmt.Errorf("%w: %w: the tar holds an %s, which manifest.json does not list", ErrCorrupt, ErrUnknownNamespace, oplogFile)
	case got == nil:
		return fmt.Errorf("%w: manifest.json lists an oplog but the tar has no %s", ErrCorrupt, oplogFile)
	case got.Documents != want.Entries || got.Bytes != want.Bytes || !strings.EqualFold(got.SHA256, want.SHA256):
		return fmt.Errorf("%w: %s holds %d entries, %d bytes, sha256 %s; manifest.json says %d, %d, %s",
			ErrCorrupt, oplogFile, got.Documents, got.Bytes, got.SHA256, want.Entries, want.Bytes, want.SHA256)
	}
	return nil
}

// addOplog declares the oplog found in an archive's prelude.
func (r *archReader) addOplog() error {
	ns := OplogCollection.Namespace()
	if _, dup := r.idx[ns]; dup {
		return fmt.Errorf("%w: %w: archive prelude declares the oplog twice", ErrCorrupt, ErrUnknownNamespace)
	}
	r.idx[ns] = len(r.cols)
	r.cols = append(r.cols, OplogCollection)
	r.status = append(r.status, collPending)
	r.crc = append(r.crc, 0)
	r.stats = append(r.stats, NamespaceStats{Namespace: ns})
	return nil
}

// appendOplogPrelude appends the prelude document that declares the oplog,
// as mongodump writes it.
func appendOplogPrelude(buf []byte) ([]byte, error) {
	buf, err := appendDoc(buf, bson.D{
		{Key: "db", Value: ""},
		{Key: "collection", Value: oplogName},
		{Key: "metadata", Value: ""},
		{Key: "size", Value: int32(0)},
		{Key: "type", Value: ""},
	})
	if err != nil {
		return nil, fmt.Errorf("archive: encoding prelude of the oplog: %w", err)
	}
	return buf, nil
}

// splitOplog moves the oplog's stats out of a manifest's namespaces.
func splitOplog(m *Manifest, span OplogSpan) {
	ns := m.Namespaces[:0]
	for _, s := range m.Namespaces {
		if s.Namespace == OplogCollection.Namespace() {
			m.Oplog = oplogStats(s, span)
			continue
		}
		ns = append(ns, s)
	}
	m.Namespaces = ns
}
