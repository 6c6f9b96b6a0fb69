package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// fuzzSeeds returns small valid archives of every format and compression.
func fuzzSeeds(tb testing.TB, f Format, comps ...Compression) [][]byte {
	cols := []Collection{
		{DB: "d", Name: "a", Indexes: []bson.Raw{indexDoc(tb, "_id_", bson.D{{Key: "_id", Value: int32(1)}})}},
		{DB: "d", Name: "e/%"},
		{DB: "d", Name: "v", Type: "view"},
	}
	src := sliceSource{"d.a": richDocs(tb, 2), "d.e/%": richDocs(tb, 1)[:1]}
	var out [][]byte
	for _, c := range comps {
		var buf bytes.Buffer
		if _, err := Dump(context.Background(), &buf, cols, src, &DumpOptions{Format: f, Compression: c, Writer: WriterOptions{SegmentSize: 512}}); err != nil {
			tb.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// fuzzOplogSeeds returns small valid archives that carry an oplog.
func fuzzOplogSeeds(tb testing.TB, f Format, comps ...Compression) [][]byte {
	cols := []Collection{{DB: "d", Name: "a"}}
	src := sliceSource{"d.a": richDocs(tb, 1)}
	var out [][]byte
	for _, c := range comps {
		var buf bytes.Buffer
		if _, err := Dump(context.Background(), &buf, cols, src, &DumpOptions{Format: f, Compression: c, Oplog: oplogEntries(tb, "d.a", 2), Writer: WriterOptions{SegmentSize: 512}}); err != nil {
			tb.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// fuzzForeignSeeds returns tars with entries outside the collection files
// of mongodump's layout: stray files that a reader with
// AllowMissingManifest skips (and one without refuses), mongodump's own
// prelude.json, passed over, a tarred dump directory as tar(1) makes it,
// which a reader without AllowMissingManifest refuses at its first entry,
// and strays that pass the bound of what is skipped.
func fuzzForeignSeeds(tb testing.TB) [][]byte {
	doc := mustDoc(tb, bson.D{{Key: "a", Value: int32(1)}})
	meta := []byte(`{"options":{},"indexes":[]}`)
	return [][]byte{
		makeTar(tb, entry{name: "dump/d/a.bson", data: doc}, entry{name: "dump/README", data: []byte("hello")}),
		makeTar(tb, entry{name: "dump/prelude.json", data: []byte(`{"ServerVersion":"7.0.0"}`)}, entry{name: "dump/d/a.bson", data: doc}),
		makeTar(tb, entry{name: "README", data: []byte("hello")}, entry{name: "dump/", typ: tar.TypeDir},
			entry{name: "dump/d/a.metadata.json", data: meta}, entry{name: "dump/d/notes.txt", data: []byte("notes")},
			entry{name: "dump/d/a.bson", data: doc}, entry{name: "dump/d/empty/", typ: tar.TypeDir}),
		append(untrailed(makeTar(tb, entry{name: "dump/d/a.metadata.json", data: meta}, entry{name: "dump/d/x.txt", data: make([]byte, 4096)})),
			claimingHeader(tb, "dump/d/y.txt", maxSkipped)...),
	}
}

// untrailed returns a tar without its trailer of two zero blocks.
func untrailed(tb []byte) []byte { return tb[: len(tb)-2*blockSize : len(tb)-2*blockSize] }

// claimingHeader returns the header block of a regular file entry that
// claims size bytes, without them.
func claimingHeader(tb testing.TB, name string, size int64) []byte {
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// fuzzSpoolSeeds returns tarred mongodump directories without a manifest
// whose oplog.bson comes first or in the middle, which a reader with
// AllowMissingManifest holds until the end.
func fuzzSpoolSeeds(tb testing.TB) [][]byte {
	colls := map[string][][]byte{"d.a": richDocs(tb, 1), "e.c": richDocs(tb, 2)[1:]}
	oplog := bytes.Join(oplogEntries(tb, "d.a", 2).entries, nil)
	return [][]byte{mongodumpTar(tb, oplog, 0, colls), mongodumpTar(tb, oplog, 3, colls)}
}

// checkReadErr fails on errors that are not of this package's types.
func checkReadErr(t *testing.T, err error) {
	if err == nil {
		return
	}
	for _, e := range []error{ErrCorrupt, ErrUnsafePath, ErrTooLarge, ErrUnknownFormat, ErrUnknownNamespace} {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("untyped error: %v", err)
}

// FuzzTarReader reads each input as a tar of this package's and as a
// tarred mongodump directory, whose oplog.bson may be held in a temporary
// file; none may be left.
func FuzzTarReader(f *testing.F) {
	seeds := append(fuzzSeeds(f, TarFormat{}, NoCompression{}), fuzzOplogSeeds(f, TarFormat{}, NoCompression{})...)
	seeds = append(append(seeds, fuzzForeignSeeds(f)...), fuzzSpoolSeeds(f)...)
	for _, s := range seeds {
		f.Add(s)
	}
	spill := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fm := range []Format{TarFormat{}, TarFormat{AllowMissingManifest: true, Spill: Spill{Dir: spill, Threshold: 64}}} {
			r, err := fm.NewReader(bytes.NewReader(b))
			if err != nil {
				checkReadErr(t, err)
				continue
			}
			checkReadErr(t, drain(r))
			if left, _ := os.ReadDir(spill); len(left) > 0 {
				t.Fatalf("%d temporary files left", len(left))
			}
		}
	})
}

func FuzzArchiveReader(f *testing.F) {
	for _, s := range append(fuzzSeeds(f, ArchiveFormat{}, NoCompression{}), fuzzOplogSeeds(f, ArchiveFormat{}, NoCompression{})...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ArchiveFormat{}.NewReader(bytes.NewReader(b))
		if err != nil {
			checkReadErr(t, err)
			return
		}
		checkReadErr(t, drain(r))
	})
}

func FuzzOpen(f *testing.F) {
	for _, fm := range allFormats {
		for _, s := range append(fuzzSeeds(f, fm, NoCompression{}, NewGzip(DefaultGzipLevel), NewZstd(DefaultZstdLevel)), fuzzOplogSeeds(f, fm, NewGzip(DefaultGzipLevel))...) {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkReadErr(t, openBytes(b))
	})
}

// TestWriteFuzzSeeds writes the seed corpus under testdata/fuzz when
// KEEPSLOT_WRITE_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KEEPSLOT_WRITE_SEEDS") == "" {
		t.Skip("set KEEPSLOT_WRITE_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	write := func(target string, seeds [][]byte, prefix ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%sseed-%d", strings.Join(prefix, ""), i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzTarReader", fuzzSeeds(t, TarFormat{}, NoCompression{}))
	write("FuzzArchiveReader", fuzzSeeds(t, ArchiveFormat{}, NoCompression{}))
	var open [][]byte
	for _, fm := range allFormats {
		open = append(open, fuzzSeeds(t, fm, NewGzip(DefaultGzipLevel), NewZstd(DefaultZstdLevel))...)
	}
	write("FuzzOpen", open)
	write("FuzzTarReader", fuzzOplogSeeds(t, TarFormat{}, NoCompression{}), "oplog-")
	write("FuzzArchiveReader", fuzzOplogSeeds(t, ArchiveFormat{}, NoCompression{}), "oplog-")
	var openOplog [][]byte
	for _, fm := range allFormats {
		openOplog = append(openOplog, fuzzOplogSeeds(t, fm, NewGzip(DefaultGzipLevel))...)
	}
	write("FuzzOpen", openOplog, "oplog-")
	write("FuzzTarReader", fuzzForeignSeeds(t), "foreign-")
	write("FuzzTarReader", fuzzSpoolSeeds(t), "spool-")
}
