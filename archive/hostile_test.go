package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

type entry struct {
	name string
	typ  byte
	data []byte
	link string
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.link}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		require.NoError(t, tw.WriteHeader(h))
		if typ == tar.TypeReg {
			_, err := tw.Write(e.data)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func validDump(t testing.TB, f Format, comp Compression) []byte {
	t.Helper()
	cols := []Collection{{DB: "d", Name: "a"}, {DB: "d", Name: "b"}}
	src := sliceSource{"d.a": richDocs(t, 5), "d.b": richDocs(t, 3)}
	var out bytes.Buffer
	_, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Format: f, Compression: comp})
	require.NoError(t, err)
	return out.Bytes()
}

func TestHostileTarEntries(t *testing.T) {
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	// What a tar of this package starts with, so that the reader goes on
	// to the entry at fault.
	lead := entry{name: "dump/d/a.metadata.json", data: []byte(`{"options":{},"indexes":[]}`)}
	cases := []struct {
		name string
		tar  []byte
		want error
	}{
		{"dotdot", makeTar(t, entry{name: "dump/../../etc/x.bson", data: doc}), ErrUnsafePath},
		{"dotdot db", makeTar(t, entry{name: "dump/../x.bson", data: doc}), ErrUnsafePath},
		{"absolute", makeTar(t, entry{name: "/etc/passwd", data: doc}), ErrUnsafePath},
		{"backslash", makeTar(t, entry{name: "dump\\..\\x.bson", data: doc}), ErrUnsafePath},
		{"drive", makeTar(t, entry{name: "C:/x.bson", data: doc}), ErrUnsafePath},
		{"symlink", makeTar(t, entry{name: "dump/d/a.bson", typ: tar.TypeSymlink, link: "/etc/passwd"}), ErrUnsafePath},
		{"hardlink", makeTar(t, entry{name: "dump/d/a.bson", typ: tar.TypeLink, link: "dump/d/b.bson"}), ErrUnsafePath},
		{"char device", makeTar(t, entry{name: "dump/d/a.bson", typ: tar.TypeChar}), ErrUnsafePath},
		{"block device", makeTar(t, entry{name: "dump/d/a.bson", typ: tar.TypeBlock}), ErrUnsafePath},
		{"fifo", makeTar(t, entry{name: "dump/d/a.bson", typ: tar.TypeFifo}), ErrUnsafePath},
		{"bad db name", makeTar(t, lead, entry{name: "dump/a.b/c.bson", data: doc}), ErrUnsafePath},
		{"length 4", makeTar(t, lead, entry{name: "dump/d/a.bson", data: []byte{4, 0, 0, 0}}), ErrTooLarge},
		{"length huge", makeTar(t, lead, entry{name: "dump/d/a.bson", data: []byte{0, 0, 0, 0x7f, 0}}), ErrTooLarge},
		{"length negative", makeTar(t, lead, entry{name: "dump/d/a.bson", data: []byte{0xff, 0xff, 0xff, 0xff}}), ErrTooLarge},
		{"truncated document", makeTar(t, lead, entry{name: "dump/d/a.bson", data: doc[:len(doc)-1]}), ErrCorrupt},
		{"partial length", makeTar(t, lead, entry{name: "dump/d/a.bson", data: append(append([]byte{}, doc...), 1, 2)}), ErrCorrupt},
		{"invalid bson", makeTar(t, lead, entry{name: "dump/d/a.bson", data: []byte{6, 0, 0, 0, 0x42, 0}}), ErrCorrupt},
		{"bad escape", makeTar(t, lead, entry{name: "dump/d/a%zz.bson", data: doc}), ErrCorrupt},
		{"bad metadata", makeTar(t, entry{name: "dump/d/a.metadata.json", data: []byte("{nope")}), ErrCorrupt},
		{"no manifest", makeTar(t, lead, entry{name: "dump/d/a.bson", data: doc}), ErrCorrupt},
		{"bad manifest", makeTar(t, entry{name: "manifest.json", data: []byte("[")}), ErrCorrupt},
		{"manifest version", makeTar(t, entry{name: "manifest.json", data: []byte(`{"formatVersion":99}`)}), ErrUnknownFormat},
		{"manifest lists missing", makeTar(t, entry{name: "manifest.json", data: []byte(`{"formatVersion":1,"namespaces":[{"namespace":"d.a","documents":1}]}`)}), ErrCorrupt},
		{"unlisted namespace", makeTar(t, lead,
			entry{name: "dump/d/a.bson", data: doc},
			entry{name: "manifest.json", data: []byte(`{"formatVersion":1,"namespaces":[]}`)}), ErrUnknownNamespace},
		{"entry after manifest", makeTar(t,
			entry{name: "manifest.json", data: []byte(`{"formatVersion":1,"namespaces":[]}`)},
			entry{name: "dump/d/a.bson", data: doc}), ErrCorrupt},
		{"duplicate bson", makeTar(t, lead,
			entry{name: "dump/d/a.bson", data: doc},
			entry{name: "./dump/d/a.bson", data: doc}), ErrCorrupt},
		{"count mismatch", makeTar(t, lead,
			entry{name: "dump/d/a.bson", data: doc},
			entry{name: "manifest.json", data: []byte(`{"formatVersion":1,"namespaces":[{"namespace":"d.a","documents":2,"bytes":` + itoa(len(doc)) + `}]}`)}), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := TarFormat{}.NewReader(bytes.NewReader(tc.tar))
			require.NoError(t, err)
			err = drain(r)
			require.ErrorIs(t, err, tc.want)
			// Open (detection) gives the same answer.
			assert.ErrorIs(t, openBytes(tc.tar), tc.want)
		})
	}
}

func itoa(n int) string {
	b, _ := bson.MarshalExtJSON(bson.D{{Key: "n", Value: int64(n)}}, false, false)
	return string(bytes.TrimSuffix(bytes.TrimPrefix(b, []byte(`{"n":`)), []byte("}")))
}

// TestTarWithoutManifestAllowed reads a tarred mongodump directory.
func TestTarWithoutManifestAllowed(t *testing.T) {
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	meta := []byte(`{"options":{},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"uuid":"abcd","collectionName":"a/b"}`)
	tb := makeTar(t,
		entry{name: "dump/", typ: tar.TypeDir},
		entry{name: "dump/d/", typ: tar.TypeDir},
		entry{name: "dump/d/a%2Fb.metadata.json", data: meta},
		entry{name: "dump/d/a%2Fb.bson", data: append(append([]byte{}, doc...), doc...)},
		entry{name: "dump/oplog.bson", data: doc},
	)
	r, err := TarFormat{AllowMissingManifest: true}.NewReader(bytes.NewReader(tb))
	require.NoError(t, err)
	docs, meta2 := readAll(t, r)
	assert.Len(t, docs["d.a/b"], 2)
	assert.Equal(t, "abcd", meta2["d.a/b"].UUID)
	require.Len(t, meta2["d.a/b"].Indexes, 1)
	assert.EqualValues(t, 2, r.Manifest().Namespaces[0].Documents)
}

// TestTamperedTar flips one byte of each document entry: the sha256 check
// of the manifest catches it.
func TestTamperedTar(t *testing.T) {
	b := validDump(t, TarFormat{}, NoCompression{})
	// Find the "d.a" documents: the first .bson entry's payload.
	tr := tar.NewReader(bytes.NewReader(b))
	var off int64 = -1
	for {
		h, err := tr.Next()
		require.NoError(t, err)
		if h.Name == "dump/d/a.bson" {
			// payload starts after this header; locate it by content.
			p := make([]byte, 64)
			_, err := io.ReadFull(tr, p)
			require.NoError(t, err)
			off = int64(bytes.Index(b, p))
			break
		}
	}
	require.Positive(t, off)
	// Change a string byte inside the first document (its "s" value).
	i := bytes.Index(b[off:], []byte("string 0")) + int(off)
	bad := append([]byte{}, b...)
	bad[i+7] = '9'
	err := openBytes(bad)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "sha256")
}

func TestHostileArchive(t *testing.T) {
	good := validDump(t, ArchiveFormat{}, NoCompression{})
	require.NoError(t, openBytes(good))

	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	hdr := func(db, c string, eof bool, crc int64) []byte {
		return mustDoc(t, bson.D{{Key: "db", Value: db}, {Key: "collection", Value: c}, {Key: "EOF", Value: eof}, {Key: "CRC", Value: crc}})
	}
	term := []byte{0xff, 0xff, 0xff, 0xff}
	prelude := func(meta ...[]byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, archiveMagic)
		b = append(b, mustDoc(t, bson.D{{Key: "version", Value: "0.1"}, {Key: "server_version", Value: "7.0.0"}})...)
		for _, m := range meta {
			b = append(b, m...)
		}
		return append(b, term...)
	}
	metaA := mustDoc(t, bson.D{{Key: "db", Value: "d"}, {Key: "collection", Value: "a"}, {Key: "metadata", Value: ""}})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown namespace in EOF", cat(prelude(metaA), hdr("d", "a", true, 0), term, hdr("d", "zzz", true, 0), term), ErrUnknownNamespace},
		{"unknown namespace segment", cat(prelude(metaA), hdr("x", "y", false, 0), doc, term), ErrUnknownNamespace},
		{"crc mismatch", cat(prelude(metaA), hdr("d", "a", false, 0), doc, term, hdr("d", "a", true, 12345), term), ErrCorrupt},
		{"missing EOF", cat(prelude(metaA), hdr("d", "a", false, 0), doc, term), ErrCorrupt},
		{"data after EOF", cat(prelude(metaA), hdr("d", "a", true, 0), term, hdr("d", "a", false, 0), doc, term), ErrCorrupt},
		{"docs in EOF block", cat(prelude(metaA), hdr("d", "a", true, 0), doc, term), ErrCorrupt},
		{"double terminator", cat(prelude(metaA), term), ErrCorrupt},
		{"length too small", cat(prelude(metaA), hdr("d", "a", false, 0), []byte{3, 0, 0, 0}), ErrTooLarge},
		{"length too big", cat(prelude(metaA), hdr("d", "a", false, 0), []byte{0, 0, 0, 2}), ErrTooLarge},
		{"duplicate prelude", prelude(metaA, metaA), ErrUnknownNamespace},
		{"bad version", cat(binary.LittleEndian.AppendUint32(nil, archiveMagic), mustDoc(t, bson.D{{Key: "version", Value: "9"}}), term), ErrUnknownFormat},
		{"no header", cat(binary.LittleEndian.AppendUint32(nil, archiveMagic), term), ErrCorrupt},
		{"bad metadata json", prelude(mustDoc(t, bson.D{{Key: "db", Value: "d"}, {Key: "collection", Value: "a"}, {Key: "metadata", Value: "{"}})), ErrCorrupt},
		{"bad db name", prelude(mustDoc(t, bson.D{{Key: "db", Value: "../x"}, {Key: "collection", Value: "a"}})), ErrUnsafePath},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := openBytes(tc.in)
			require.ErrorIs(t, err, tc.want)
			if !errors.Is(tc.want, ErrUnknownFormat) {
				assert.ErrorIs(t, err, ErrCorrupt)
			}
		})
	}
}

// TestTruncationEverywhere cuts valid archives at every length: reading
// must fail (never succeed, never panic), except at the very end.
func TestTruncationEverywhere(t *testing.T) {
	for _, f := range allFormats {
		for _, comp := range []Compression{NoCompression{}, NewGzip(DefaultGzipLevel), NewZstd(DefaultZstdLevel)} {
			t.Run(f.Name()+"/"+comp.Name(), func(t *testing.T) {
				b := validDump(t, f, comp)
				require.NoError(t, openBytes(b))
				end := len(b)
				if comp.Name() == "none" && f.Name() == "tar" {
					// A cut in the zero padding after manifest.json loses
					// no data; archive/tar does not require the trailer.
					end = bytes.LastIndex(b, []byte("}]}")) + 3
				}
				for n := 0; n < end; n++ {
					require.Error(t, openBytes(b[:n]), "cut at %d of %d", n, len(b))
				}
			})
		}
	}
}

func TestDetectUnknown(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("hello world"), bytes.Repeat([]byte{0}, 2000)} {
		_, _, _, err := detect(bytes.NewReader(in), nil, nil)
		require.ErrorIs(t, err, ErrUnknownFormat)
	}
	// gzip of garbage
	var buf bytes.Buffer
	w, err := NewGzip(DefaultGzipLevel).NewWriter(&buf)
	require.NoError(t, err)
	w.Write([]byte("not an archive at all"))
	require.NoError(t, w.Close())
	_, _, c, err := detect(&buf, nil, nil)
	require.ErrorIs(t, err, ErrUnknownFormat)
	assert.Equal(t, "gzip", c.Name())
	// A corrupt gzip trailer is caught at the end.
	b := validDump(t, ArchiveFormat{}, NewGzip(DefaultGzipLevel))
	b[len(b)-6] ^= 0xff // CRC-32 of the gzip trailer
	assert.ErrorIs(t, openBytes(b), ErrCorrupt)
	b = validDump(t, TarFormat{}, NewGzip(DefaultGzipLevel))
	b[len(b)-6] ^= 0xff
	assert.ErrorIs(t, openBytes(b), ErrCorrupt)
}

func TestWriterMisuse(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.Name(), func(t *testing.T) {
			cols := []Collection{{DB: "d", Name: "a"}, {DB: "d", Name: "b"}, {DB: "d", Name: "v", Type: "view"}}
			_, err := f.NewWriter(io.Discard, Header{Collections: append(cols, cols[0])}, nil)
			require.ErrorIs(t, err, ErrUnknownNamespace)
			_, err = f.NewWriter(io.Discard, Header{Collections: []Collection{{DB: "a/b", Name: "c"}}}, nil)
			require.ErrorIs(t, err, ErrUnsafePath)

			w, err := f.NewWriter(io.Discard, Header{Collections: cols}, nil)
			require.NoError(t, err)
			_, err = w.Collection(Collection{DB: "d", Name: "zzz"})
			require.ErrorIs(t, err, ErrUnknownNamespace)
			cw, err := w.Collection(cols[0])
			require.NoError(t, err)
			_, err = w.Collection(cols[0])
			require.Error(t, err)
			require.ErrorIs(t, cw.WriteDocument([]byte{1, 2}), ErrTooLarge)
			require.Error(t, cw.WriteDocument([]byte{6, 0, 0, 0, 0, 0, 0}))
			require.NoError(t, cw.WriteDocument(mustDoc(t, bson.D{{Key: "x", Value: int32(1)}})))
			require.NoError(t, cw.Close())
			require.Error(t, cw.Close())
			assert.Nil(t, w.Manifest())
			require.ErrorIs(t, w.Close(), ErrIncomplete) // d.b never written
			assert.Nil(t, w.Manifest())
		})
	}
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestForeignEntryRefusedAtHeader: an entry outside mongodump's layout is
// refused when its header is read, without its body being read or skipped,
// so that a small file claiming gigabytes of zeros costs nothing.
func TestForeignEntryRefusedAtHeader(t *testing.T) {
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	const claimed = 10 << 30
	const body = 4 << 20 // present but short of the claim; reading it would take it all
	for _, name := range []string{
		"zeros.bin",
		"dump/zeros.bin",
		"dump/d/zeros.bin",
		"dump/d/a.bson.gz",
		"dump/d/sub/a.bson",
		"other/d/a.bson",
		"dump/prelude.json", // mongodump's, but not this big
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			meta := []byte(`{"options":{},"indexes":[]}`)
			require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "dump/d/a.metadata.json", Size: int64(len(meta)), Mode: 0o644}))
			_, err := tw.Write(meta)
			require.NoError(t, err)
			require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "dump/d/a.bson", Size: int64(len(doc)), Mode: 0o644}))
			_, err = tw.Write(doc)
			require.NoError(t, err)
			// WriteHeader writes the header block at once; the body that
			// follows is far short of the size it claims.
			require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: claimed, Mode: 0o644}))
			headerEnd := int64(buf.Len())
			buf.Write(make([]byte, body))

			for _, f := range []Format{TarFormat{}, TarFormat{AllowMissingManifest: true}} {
				src := &countingReader{r: bytes.NewReader(buf.Bytes())}
				r, err := f.NewReader(src)
				require.NoError(t, err)
				err = drain(r)
				require.ErrorIs(t, err, ErrCorrupt)
				assert.ErrorContains(t, err, name)
				assert.NotErrorIs(t, err, io.ErrUnexpectedEOF, "refused at the header, not at the end of a body read through")
				assert.LessOrEqual(t, src.n, headerEnd+64<<10, "read %d bytes: at most the headers and one buffer", src.n)
			}
		})
	}
}

// TestForeignEntryNamesAccepted: what mongodump puts in a dump directory
// besides collections (a small prelude.json, at the root or in a database
// directory) and directory entries are passed over.
func TestForeignEntryNamesAccepted(t *testing.T) {
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	prelude := []byte(`{"ServerVersion":"7.0.0","ToolVersion":"100.9.0"}`)
	tb := makeTar(t,
		entry{name: "dump/", typ: tar.TypeDir},
		entry{name: "dump/prelude.json", data: prelude},
		entry{name: "dump/d/", typ: tar.TypeDir},
		entry{name: "dump/d/prelude.json", data: prelude},
		entry{name: "dump/d/a.bson", data: doc},
	)
	r, err := TarFormat{AllowMissingManifest: true}.NewReader(bytes.NewReader(tb))
	require.NoError(t, err)
	docs, _ := readAll(t, r)
	assert.Len(t, docs["d.a"], 1)
}
