package archive

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// stdGzip is the standard library's gzip, the baseline of BenchmarkWrite.
type stdGzip struct{}

func (stdGzip) Name() string           { return "gzip" }
func (stdGzip) Extension() string      { return ".gz" }
func (stdGzip) Match(head []byte) bool { return NewGzip(DefaultGzipLevel).Match(head) }
func (stdGzip) NewWriter(w io.Writer) (io.WriteCloser, error) {
	return gzip.NewWriter(w), nil
}
func (stdGzip) NewReader(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }

const benchCollections = 4

var (
	benchOnce sync.Once
	benchSrc  sliceSource
	benchCols []Collection
	benchSize int64
)

// benchData is 64 MiB of synthetic documents of about 1 KiB (field names,
// small numbers, dates, words from a small vocabulary, and random hex and
// binary parts), in 4 collections.
func benchData(b *testing.B) {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"}
		benchSrc = sliceSource{}
		for c := range benchCollections {
			col := Collection{DB: "bench", Name: fmt.Sprintf("c%d", c)}
			benchCols = append(benchCols, col)
			var size int64
			for i := 0; size < 16<<20; i++ {
				text := make([]byte, 0, 600)
				for len(text) < 500 {
					text = append(text, words[rng.IntN(len(words))]...)
					text = append(text, ' ')
				}
				bin := make([]byte, 64)
				for j := range bin {
					bin[j] = byte(rng.Uint32())
				}
				doc, err := bson.Marshal(bson.D{
					{Key: "_id", Value: bson.NewObjectID()},
					{Key: "seq", Value: int64(i)},
					{Key: "user", Value: fmt.Sprintf("user-%06d", rng.IntN(100000))},
					{Key: "score", Value: rng.Float64() * 100},
					{Key: "at", Value: bson.DateTime(1_700_000_000_000 + int64(i)*1000)},
					{Key: "tags", Value: bson.A{words[rng.IntN(12)], words[rng.IntN(12)]}},
					{Key: "text", Value: string(text)},
					{Key: "blob", Value: bson.Binary{Data: bin}},
					{Key: "nested", Value: bson.D{{Key: "ok", Value: true}, {Key: "n", Value: int32(i % 1000)}}},
				})
				if err != nil {
					panic(err)
				}
				benchSrc[col.Namespace()] = append(benchSrc[col.Namespace()], doc)
				size += int64(len(doc))
			}
			benchSize += size
		}
	})
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWrite dumps 64 MiB of synthetic BSON in 4 collections, 4 at a
// time, per format and compression; "stdlib-gzip" is the baseline.
//
// Measured on 2 shared cores (go test -bench BenchmarkWrite -benchtime=3x),
// MB/s of input and output/input ratio:
//
//	tar/gzip (default)   140 MB/s  0.271   stdlib-gzip 17.3 MB/s  0.251
//	tar/gzip-serial       89 MB/s  0.271   tar/gzip-1   223 MB/s  0.322
//	tar/zstd             101 MB/s  0.263   tar/zstd-1   165 MB/s  0.284
//	tar/none             582 MB/s  1       (sha256 of every document)
//	archive/gzip         176 MB/s  0.271   archive/gzip-1 318 MB/s 0.322
//	archive/zstd         141 MB/s  0.263   archive/none 2016 MB/s
func BenchmarkWrite(b *testing.B) {
	benchData(b)
	comps := []struct {
		name string
		c    Compression
	}{
		{"gzip", NewGzip(DefaultGzipLevel)},
		{"gzip-serial", NewSerialGzip(DefaultGzipLevel)},
		{"gzip-1", NewGzip(1)},
		{"gzip-serial-1", NewSerialGzip(1)},
		{"zstd", NewZstd(DefaultZstdLevel)},
		{"zstd-1", NewZstd(1)},
		{"none", NoCompression{}},
		{"stdlib-gzip", stdGzip{}},
	}
	for _, f := range allFormats {
		for _, c := range comps {
			b.Run(f.Name()+"/"+c.name, func(b *testing.B) {
				b.SetBytes(benchSize)
				b.ReportAllocs()
				var out countWriter
				for b.Loop() {
					out.n = 0
					_, err := Dump(context.Background(), &out, benchCols, benchSrc, &DumpOptions{
						Format: f, Compression: c.c, Parallel: benchCollections,
						Writer: WriterOptions{Spill: Spill{Dir: b.TempDir()}},
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(out.n)/float64(benchSize), "ratio")
			})
		}
	}
}

// BenchmarkRead reads back the 64 MiB archive, per format and compression.
func BenchmarkRead(b *testing.B) {
	benchData(b)
	for _, f := range allFormats {
		for _, c := range []Compression{NewGzip(DefaultGzipLevel), NewZstd(DefaultZstdLevel), NoCompression{}} {
			b.Run(f.Name()+"/"+c.Name(), func(b *testing.B) {
				var buf bytesBuffer
				if _, err := Dump(context.Background(), &buf, benchCols, benchSrc, &DumpOptions{Format: f, Compression: c}); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(benchSize)
				for b.Loop() {
					r, err := Open(buf.reader(), nil)
					if err != nil {
						b.Fatal(err)
					}
					if err := drain(r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesBuffer) reader() io.Reader           { return &sliceReader{b: w.b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// BenchmarkSmallDocuments writes and reads back 100,000 documents of about
// 60 bytes, uncompressed, one collection: the per-document cost of the
// writers and readers themselves, in ns and allocations per document.
func BenchmarkSmallDocuments(b *testing.B) {
	const n = 100_000
	col := Collection{DB: "bench", Name: "small"}
	src := sliceSource{}
	for i := range n {
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(i)}, {Key: "k", Value: "v"}, {Key: "n", Value: int32(i % 7)}, {Key: "ok", Value: true}})
		src[col.Namespace()] = append(src[col.Namespace()], doc)
	}
	for _, f := range allFormats {
		b.Run(f.Name()+"/write", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Dump(context.Background(), io.Discard, []Collection{col}, src, &DumpOptions{Format: f, Compression: NoCompression{}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/doc")
			b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
				_, _ = Dump(context.Background(), io.Discard, []Collection{col}, src, &DumpOptions{Format: f, Compression: NoCompression{}})
			}))/n, "allocs/doc")
		})
		b.Run(f.Name()+"/read", func(b *testing.B) {
			var buf bytesBuffer
			if _, err := Dump(context.Background(), &buf, []Collection{col}, src, &DumpOptions{Format: f, Compression: NoCompression{}}); err != nil {
				b.Fatal(err)
			}
			read := func() {
				r, err := Open(buf.reader(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := drain(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				read()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/doc")
			b.ReportMetric(testing.AllocsPerRun(1, read)/n, "allocs/doc")
		})
	}
}
