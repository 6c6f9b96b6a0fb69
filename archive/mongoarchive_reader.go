package archive

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"io"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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
