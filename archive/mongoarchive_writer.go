package archive

import (
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// NewWriter writes the magic number and the prelude (the header and the
// metadata of every collection of h) to w.
func (f ArchiveFormat) NewWriter(w io.Writer, h Header, opts *WriterOptions) (Writer, error) {
	aw := &archWriter{w: w, segSize: opts.segmentSize()}
	if err := aw.init(h); err != nil {
		return nil, err
	}
	h = aw.hdr
	conc := f.ConcurrentCollections
	if conc <= 0 {
		conc = 4
	}
	server := h.ServerVersion
	if server == "" {
		server = defaultServerVersion
	}
	buf := binary.LittleEndian.AppendUint32(nil, archiveMagic)
	buf, err := appendDoc(buf, bson.D{
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
	return aw, nil
}

type archWriter struct {
	book[*archColl]
	w       io.Writer
	err     error
	segSize int
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
	i, err := w.claim(c)
	if err != nil {
		return nil, err
	}
	hdr, err := marshalNamespaceHeader(w.hdr.Collections[i], false, 0)
	if err != nil {
		return nil, fmt.Errorf("archive: encoding segment header of %s: %w", c.Namespace(), err)
	}
	cw := &archColl{w: w, i: i, ns: c.Namespace(), hdr: hdr}
	w.opened(i, cw)
	return cw, nil
}

// Close writes the end blocks of the views not written, and fails with
// ErrIncomplete if any other collection of the header was not written and
// closed.
func (w *archWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	discard := func(cw *archColl) {
		cw.buf.Reset()
		cw.done = true
	}
	if err := w.closing(discard); err != nil {
		return err
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
		w.done(i, NamespaceStats{Namespace: c.Namespace()})
	}
	if w.err != nil {
		return w.err
	}
	w.manifest = w.newManifest()
	return nil
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
		return fmt.Errorf("%w (collection %s, document %d)", err, c.ns, c.docs)
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
	w.done(c.i, NamespaceStats{Namespace: c.ns, Documents: c.docs, Bytes: c.size})
	return nil
}
