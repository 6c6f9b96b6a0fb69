package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// fakeOplog serves fixed entries as a captured oplog.
type fakeOplog struct {
	entries [][]byte
	span    OplogSpan
	err     error // returned after the entries
	called  int
}

func (f *fakeOplog) Oplog(ctx context.Context, emit func([]byte) error) (OplogSpan, error) {
	f.called++
	for _, e := range f.entries {
		if err := emit(e); err != nil {
			return OplogSpan{}, err
		}
	}
	return f.span, f.err
}

// oplogEntries returns n insert entries into ns with increasing timestamps.
func oplogEntries(t testing.TB, ns string, n int) *fakeOplog {
	f := &fakeOplog{span: OplogSpan{Start: bson.Timestamp{T: 1000, I: 1}, End: bson.Timestamp{T: 1000 + uint32(n), I: 1}}}
	for i := range n {
		f.entries = append(f.entries, mustDoc(t, bson.D{
			{Key: "ts", Value: bson.Timestamp{T: 1000 + uint32(i), I: 1}},
			{Key: "op", Value: "i"},
			{Key: "ns", Value: ns},
			{Key: "o", Value: bson.D{{Key: "_id", Value: int32(1000 + i)}, {Key: "during", Value: true}}},
		}))
	}
	return f
}

// TestOplogRoundTrip checks that every format stores the captured oplog
// after the collections and reads it back, last, as OplogCollection, with
// its span and stats in the manifests.
func TestOplogRoundTrip(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.Name(), func(t *testing.T) {
			cols, src := testCollections(t)
			oplog := oplogEntries(t, "shop.orders", 25)
			var out bytes.Buffer
			wm, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Format: f, Compression: NewZstd(DefaultZstdLevel), Oplog: oplog, Writer: WriterOptions{SegmentSize: 4 << 10}})
			require.NoError(t, err)
			assert.Equal(t, 1, oplog.called)
			require.NotNil(t, wm.Oplog)
			assert.Equal(t, oplog.span.Start, wm.Oplog.Start)
			assert.Equal(t, oplog.span.End, wm.Oplog.End)
			assert.EqualValues(t, 25, wm.Oplog.Entries)
			assert.EqualValues(t, len(bytes.Join(oplog.entries, nil)), wm.Oplog.Bytes)
			_, listed := wm.Stats(OplogCollection.Namespace())
			assert.False(t, listed, "the oplog is not one of the manifest's namespaces")
			plain, err := Dump(context.Background(), io.Discard, cols, src, &DumpOptions{Format: f, Compression: NoCompression{}})
			require.NoError(t, err)
			assert.Equal(t, plain.Namespaces, wm.Namespaces, "the collections' stats are those of a dump without an oplog")

			r, err := Open(bytes.NewReader(out.Bytes()), nil)
			require.NoError(t, err)
			var order []string
			var got [][]byte
			for {
				c, err := r.Next()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				order = append(order, c.Namespace())
				for {
					d, err := r.ReadDocument()
					if err == io.EOF {
						break
					}
					require.NoError(t, err)
					if c.IsOplog() {
						got = append(got, d)
					}
				}
			}
			require.NotEmpty(t, order)
			assert.Equal(t, OplogCollection.Namespace(), order[len(order)-1], "the oplog comes last")
			assert.Equal(t, oplog.entries, got)
			rm := r.Manifest()
			require.NotNil(t, rm.Oplog)
			assert.EqualValues(t, 25, rm.Oplog.Entries)
			if f.Name() == "tar" {
				assert.Equal(t, *wm.Oplog, *rm.Oplog, "manifest.json records the span")
			}
			assert.Contains(t, r.Collections(), OplogCollection)
		})
	}
}

// TestOplogLayout checks that the oplog is where mongodump --oplog puts it:
// dump/oplog.bson, without metadata, in the tar; in the archive format a
// prelude entry of database "" and collection "oplog" and segments of that
// namespace after every other collection's end block.
func TestOplogLayout(t *testing.T) {
	cols := []Collection{{DB: "d", Name: "a"}}
	src := sliceSource{"d.a": richDocs(t, 3)}
	oplog := oplogEntries(t, "d.a", 4)

	var out bytes.Buffer
	_, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Compression: NoCompression{}, Oplog: oplog})
	require.NoError(t, err)
	tr := tar.NewReader(&out)
	contents := map[string][]byte{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		names = append(names, h.Name)
		contents[h.Name] = b
	}
	assert.Equal(t, []string{"dump/d/a.metadata.json", "dump/d/a.bson", "dump/oplog.bson", "manifest.json"}, names)
	assert.Equal(t, bytes.Join(oplog.entries, nil), contents["dump/oplog.bson"])
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(contents["manifest.json"], &m))
	assert.JSONEq(t, fmt.Sprintf(`{"start":{"t":1000,"i":1},"end":{"t":1004,"i":1},"entries":4,"bytes":%d,"sha256":%q}`,
		len(contents["dump/oplog.bson"]), sha256Hex(contents["dump/oplog.bson"])), string(m["oplog"]))

	out.Reset()
	_, err = Dump(context.Background(), &out, cols, src, &DumpOptions{Format: ArchiveFormat{}, Compression: NoCompression{}, Oplog: oplog})
	require.NoError(t, err)
	b := out.Bytes()[4:]
	next := func() bson.Raw {
		n := binary.LittleEndian.Uint32(b)
		if n == terminator {
			b = b[4:]
			return nil
		}
		d := bson.Raw(b[:n])
		b = b[n:]
		return d
	}
	next() // header
	meta := next()
	assert.Equal(t, "a", meta.Lookup("collection").StringValue())
	prelude := next()
	assert.Equal(t, bson.Raw(mustDoc(t, bson.D{
		{Key: "db", Value: ""}, {Key: "collection", Value: "oplog"}, {Key: "metadata", Value: ""}, {Key: "size", Value: int32(0)}, {Key: "type", Value: ""},
	})), prelude)
	require.Nil(t, next(), "terminator ends the prelude")
	var blocks []string
	for len(b) > 0 {
		h := next()
		blocks = append(blocks, fmt.Sprintf("%s.%s eof=%v", h.Lookup("db").StringValue(), h.Lookup("collection").StringValue(), h.Lookup("EOF").Boolean()))
		for next() != nil {
		}
	}
	assert.Equal(t, []string{"d.a eof=false", "d.a eof=true", ".oplog eof=false", ".oplog eof=true"}, blocks)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestOplogFailures checks that a failing capture fails the dump and leaves
// no temporary file, and that the oplog cannot be passed as a collection.
func TestOplogFailures(t *testing.T) {
	cols := []Collection{{DB: "d", Name: "a"}}
	src := sliceSource{"d.a": richDocs(t, 3)}
	boom := errors.New("the oplog rolled over")
	for _, f := range allFormats {
		spill := t.TempDir()
		oplog := oplogEntries(t, "d.a", 50)
		oplog.err = boom
		_, err := Dump(context.Background(), io.Discard, cols, src, &DumpOptions{
			Format: f, Compression: NoCompression{}, Oplog: oplog,
			Writer: WriterOptions{Spill: Spill{Dir: spill, Threshold: 64}},
		})
		require.ErrorIs(t, err, boom, f.Name())
		left, err := os.ReadDir(spill)
		require.NoError(t, err)
		assert.Empty(t, left, "%s: no spill file is left", f.Name())
	}
	_, err := Dump(context.Background(), io.Discard, append(cols, OplogCollection), src, nil)
	assert.ErrorContains(t, err, "DumpOptions.Oplog")
}

// TestOplogTarChecks checks that the tar reader holds oplog.bson to
// manifest.json, and reads it from a tarred mongodump directory.
func TestOplogTarChecks(t *testing.T) {
	cols := []Collection{{DB: "d", Name: "a"}}
	src := sliceSource{"d.a": richDocs(t, 2)}
	entries := oplogEntries(t, "d.a", 3).entries
	build := func(oplog []byte, manifest *Manifest) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		add := func(name string, b []byte) {
			require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644}))
			_, err := tw.Write(b)
			require.NoError(t, err)
		}
		add("dump/d/a.metadata.json", []byte(`{"options":{},"indexes":[]}`))
		add("dump/d/a.bson", bytes.Join(src["d.a"], nil))
		if oplog != nil {
			add("dump/oplog.bson", oplog)
		}
		if manifest != nil {
			m, err := manifest.MarshalJSON()
			require.NoError(t, err)
			add("manifest.json", m)
		}
		require.NoError(t, tw.Close())
		return buf.Bytes()
	}
	var out bytes.Buffer
	good, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Compression: NoCompression{}, Oplog: &fakeOplog{entries: entries}})
	require.NoError(t, err)
	oplog := bytes.Join(entries, nil)

	read := func(f Format, b []byte) (*Manifest, error) {
		r, err := f.NewReader(bytes.NewReader(b))
		require.NoError(t, err)
		err = drain(r)
		return r.Manifest(), err
	}
	m, err := read(TarFormat{}, build(oplog, good))
	require.NoError(t, err)
	assert.EqualValues(t, 3, m.Oplog.Entries)

	noOplog := *good
	noOplog.Oplog = nil
	_, err = read(TarFormat{}, build(oplog, &noOplog))
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorIs(t, err, ErrUnknownNamespace)

	_, err = read(TarFormat{}, build(nil, good))
	assert.ErrorIs(t, err, ErrCorrupt, "manifest.json lists an oplog the tar lacks")

	short := oplog[:len(oplog)-len(entries[2])]
	_, err = read(TarFormat{}, build(short, good))
	assert.ErrorIs(t, err, ErrCorrupt, "an entry short")

	m, err = read(TarFormat{AllowMissingManifest: true}, build(oplog, nil))
	require.NoError(t, err, "a tarred mongodump --oplog directory")
	require.NotNil(t, m.Oplog)
	assert.EqualValues(t, 3, m.Oplog.Entries)
	assert.True(t, m.Oplog.Start.IsZero(), "a mongodump tar does not record the span")
	assert.Len(t, m.Namespaces, 1)
}

// TestOplogArchivePrelude checks that the archive reader accepts the oplog
// in a prelude once, and only under database "".
func TestOplogArchivePrelude(t *testing.T) {
	prelude := func(docs ...bson.D) []byte {
		b := binary.LittleEndian.AppendUint32(nil, archiveMagic)
		b = append(b, mustDoc(t, bson.D{{Key: "concurrent_collections", Value: int32(1)}, {Key: "version", Value: "0.1"}, {Key: "server_version", Value: "7.0.0"}, {Key: "tool_version", Value: "x"}})...)
		for _, d := range docs {
			b = append(b, mustDoc(t, d)...)
		}
		return append(b, terminatorBytes...)
	}
	oplog := bson.D{{Key: "db", Value: ""}, {Key: "collection", Value: "oplog"}, {Key: "metadata", Value: ""}, {Key: "size", Value: int32(0)}, {Key: "type", Value: ""}}
	_, err := ArchiveFormat{}.NewReader(bytes.NewReader(prelude(oplog, oplog)))
	assert.ErrorIs(t, err, ErrCorrupt, "declared twice")
	other := bson.D{{Key: "db", Value: ""}, {Key: "collection", Value: "other"}, {Key: "metadata", Value: ""}}
	_, err = ArchiveFormat{}.NewReader(bytes.NewReader(prelude(other)))
	assert.ErrorIs(t, err, ErrCorrupt, "no other namespace lives outside a database")

	// Declared but never ended: the archive is cut short.
	r, err := ArchiveFormat{}.NewReader(bytes.NewReader(prelude(oplog)))
	require.NoError(t, err)
	assert.ErrorIs(t, drain(r), ErrCorrupt)
}

// mongodumpTar builds a tarred mongodump --oplog directory without
// manifest.json, its oplog.bson at entry index oplogAt among the
// collection entries.
func mongodumpTar(t testing.TB, oplog []byte, oplogAt int, colls map[string][][]byte) []byte {
	var entries []entry
	for _, name := range []string{"d/a", "d/b", "e/c"} {
		entries = append(entries,
			entry{name: "dump/" + name + ".metadata.json", data: []byte(`{"options":{},"indexes":[]}`)},
			entry{name: "dump/" + name + ".bson", data: bytes.Join(colls[strings.Replace(name, "/", ".", 1)], nil)})
	}
	entries = append(entries[:oplogAt:oplogAt], append([]entry{{name: "dump/oplog.bson", data: oplog}}, entries[oplogAt:]...)...)
	return makeTar(t, append([]entry{{name: "dump/", typ: tar.TypeDir}}, entries...)...)
}

// TestOplogAnyPositionInMongodumpTar: in a tar without manifest.json, as
// `tar czf dump.tgz dump/` may order it, oplog.bson may come first, in the
// middle or last; the reader holds it (in memory, or in a temporary file
// past Spill.Threshold) and returns it last, and no temporary file is left.
func TestOplogAnyPositionInMongodumpTar(t *testing.T) {
	colls := map[string][][]byte{"d.a": richDocs(t, 4), "d.b": richDocs(t, 1), "e.c": richDocs(t, 3)}
	entries := oplogEntries(t, "d.a", 5).entries
	oplog := bytes.Join(entries, nil)
	for _, at := range []int{0, 1, 3, 6} {
		for _, threshold := range []int64{0, 1} { // the default (in memory), and 1 byte (a file)
			t.Run(fmt.Sprintf("at %d, threshold %d", at, threshold), func(t *testing.T) {
				spill := t.TempDir()
				tb := mongodumpTar(t, oplog, at, colls)
				r, err := TarFormat{AllowMissingManifest: true, Spill: Spill{Dir: spill, Threshold: threshold}}.NewReader(bytes.NewReader(tb))
				require.NoError(t, err)
				var order []string
				docs := map[string][][]byte{}
				for {
					c, err := r.Next()
					if err == io.EOF {
						break
					}
					require.NoError(t, err)
					order = append(order, c.Namespace())
					for {
						d, err := r.ReadDocument()
						if err == io.EOF {
							break
						}
						require.NoError(t, err)
						docs[c.Namespace()] = append(docs[c.Namespace()], d)
					}
				}
				ns := OplogCollection.Namespace()
				assert.Equal(t, []string{"d.a", "d.b", "e.c", ns}, order, "the oplog comes last")
				for n, want := range colls {
					assert.Equal(t, want, docs[n], n)
				}
				assert.Equal(t, entries, docs[ns])
				m := r.Manifest()
				require.NotNil(t, m.Oplog)
				assert.EqualValues(t, len(entries), m.Oplog.Entries)
				assert.Equal(t, sha256Hex(oplog), m.Oplog.SHA256)
				assert.Len(t, m.Namespaces, 3)
				assert.True(t, r.Collections()[len(r.Collections())-1].IsOplog())
				left, err := os.ReadDir(spill)
				require.NoError(t, err)
				assert.Empty(t, left, "no temporary file is left")
			})
		}
	}
}

// TestOplogSpoolCleanup: the oplog held from the start of a tar is dropped,
// its temporary file with it, when a later entry fails, when the Reader is
// closed before the end, and when a second oplog.bson turns up; a
// temporary file that cannot be created is reported with the option to set.
func TestOplogSpoolCleanup(t *testing.T) {
	entries := oplogEntries(t, "d.a", 3).entries
	oplog := bytes.Join(entries, nil)
	doc := mustDoc(t, bson.D{{Key: "a", Value: int32(1)}})
	lenient := func(spill string) TarFormat {
		return TarFormat{AllowMissingManifest: true, Spill: Spill{Dir: spill, Threshold: 1}}
	}
	assertEmpty := func(t *testing.T, dir string) {
		t.Helper()
		left, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, left, "no temporary file is left")
	}

	for name, tc := range map[string]struct {
		tar  []byte
		want error
	}{
		"corrupt entry after it":       {makeTar(t, entry{name: "dump/oplog.bson", data: oplog}, entry{name: "dump/d/a.bson", data: doc[:len(doc)-1]}), ErrCorrupt},
		"large foreign entry after it": {makeTar(t, entry{name: "dump/oplog.bson", data: oplog}, entry{name: "dump/notes.txt", data: make([]byte, maxSkipped)}), ErrTooLarge},
		"second oplog":                 {makeTar(t, entry{name: "dump/oplog.bson", data: oplog}, entry{name: "oplog.bson", data: oplog}), ErrCorrupt},
		"corrupt oplog":                {makeTar(t, entry{name: "dump/oplog.bson", data: oplog[:len(oplog)-1]}, entry{name: "dump/d/a.bson", data: doc}), ErrCorrupt},
		"zeros as oplog":               {makeTar(t, entry{name: "dump/oplog.bson", data: make([]byte, 1<<20)}), ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			spill := t.TempDir()
			r, err := lenient(spill).NewReader(bytes.NewReader(tc.tar))
			require.NoError(t, err)
			require.ErrorIs(t, drain(r), tc.want)
			assertEmpty(t, spill)
			assert.Nil(t, r.(*tarReader).spool, "the held oplog is released")
		})
	}

	t.Run("closed before the end", func(t *testing.T) {
		spill := t.TempDir()
		tb := makeTar(t, entry{name: "dump/oplog.bson", data: oplog}, entry{name: "dump/d/a.bson", data: doc}, entry{name: "dump/d/b.bson", data: doc})
		r, err := lenient(spill).NewReader(bytes.NewReader(tb))
		require.NoError(t, err)
		c, err := r.Next()
		require.NoError(t, err)
		require.Equal(t, "d.a", c.Namespace())
		sp := r.(*tarReader).spool
		require.NotNil(t, sp, "the oplog is held")
		require.NotNil(t, sp.file, "in a file, past Spill.Threshold")
		require.NoError(t, r.(io.Closer).Close())
		assert.Nil(t, r.(*tarReader).spool, "Close releases the held oplog")
		assert.Nil(t, sp.file, "and closes its file")
		assertEmpty(t, spill)
		_, err = r.Next()
		assert.Error(t, err, "a closed Reader reads no more")
	})

	t.Run("Open's Reader closes it too", func(t *testing.T) {
		spill := t.TempDir()
		tb := makeTar(t, entry{name: "dump/oplog.bson", data: oplog}, entry{name: "dump/d/a.bson", data: doc})
		r, err := Open(bytes.NewReader(tb), &OpenOptions{Formats: []Format{lenient(spill)}})
		require.NoError(t, err)
		_, err = r.Next()
		require.NoError(t, err)
		inner := r.(*openedReader).Reader.(*tarReader)
		require.NotNil(t, inner.spool)
		require.NoError(t, r.(io.Closer).Close())
		assert.Nil(t, inner.spool)
		assertEmpty(t, spill)
	})

	t.Run("no temporary directory", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		tb := makeTar(t, entry{name: "dump/oplog.bson", data: oplog}, entry{name: "dump/d/a.bson", data: doc})
		r, err := lenient(missing).NewReader(bytes.NewReader(tb))
		require.NoError(t, err)
		err = drain(r)
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.ErrorContains(t, err, "TarFormat.Spill.Dir")
	})
}

// TestOplogSpanJSON checks that a span survives JSON, as a slot's status
// carries it, with its timestamps as in manifest.json.
func TestOplogSpanJSON(t *testing.T) {
	s := OplogSpan{Start: bson.Timestamp{T: 1, I: 2}, End: bson.Timestamp{T: 3, I: 4}, Entries: 5}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"start":{"t":1,"i":2},"end":{"t":3,"i":4},"entries":5}`, string(b))
	var back OplogSpan
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, s, back)
}
