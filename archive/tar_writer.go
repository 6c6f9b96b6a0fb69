package archive

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync/atomic"
)

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
	tw := &tarWriter{
		threshold: opts.spill().Threshold,
		dir:       opts.spill().Dir,
		parts:     pc,
		out:       w,
	}
	if err := tw.init(h); err != nil {
		return nil, err
	}
	if pc == nil {
		tw.tw = tar.NewWriter(w)
	}
	// Every metadata entry goes in the first part.
	err := tw.writeTar(func(t *tar.Writer) error {
		for _, c := range tw.hdr.Collections {
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
	book[*tarColl]
	tw        *tar.Writer     // the archive's tar stream, when compressed as one stream
	parts     partCompression // else the compression of its parts
	out       io.Writer       // where the archive goes: the compressed stream, or the raw output of parts
	err       error           // sticky write error
	threshold int64           // of inMem
	inMem     atomic.Int64    // bytes held in memory by open collections (compressed, with parts)
	dir       string
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
	i, err := w.claim(c)
	if err != nil {
		return nil, err
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
	w.opened(i, cw)
	return cw, nil
}

// Close writes manifest.json and the tar trailer. It fails with
// ErrIncomplete, writing neither, if a collection of the header (other than
// a view) was not written and closed; the temporary files of collections
// left open are removed.
func (w *tarWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.closing((*tarColl).discard); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	m := w.newManifest()
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
		return fmt.Errorf("%w (collection %s, document %d)", err, c.ns, c.docs)
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
	w.done(c.i, NamespaceStats{
		Namespace: c.ns,
		Documents: c.docs,
		Bytes:     c.size,
		SHA256:    hex.EncodeToString(c.sum.Sum(nil)),
	})
	return nil
}

// blockSize is tar's: every entry is padded to a multiple of it.
const blockSize = 512
