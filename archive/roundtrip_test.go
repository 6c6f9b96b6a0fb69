package archive

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

var (
	allFormats      = []Format{TarFormat{}, ArchiveFormat{}}
	allCompressions = []Compression{NewGzip(DefaultGzipLevel), NewSerialGzip(1), NewZstd(DefaultZstdLevel), NewZstd(1), NoCompression{}}
)

func TestRoundTrip(t *testing.T) {
	cols, src := testCollections(t)
	for _, f := range allFormats {
		for _, comp := range allCompressions {
			t.Run(f.Name()+"/"+comp.Name(), func(t *testing.T) {
				var out bytes.Buffer
				m, err := Dump(context.Background(), &out, cols, src, &DumpOptions{
					Format: f, Compression: comp, Parallel: 4,
					ToolVersion: "keepslot-test", ServerVersion: "7.0.2",
					Writer: WriterOptions{Spill: Spill{Dir: t.TempDir(), Threshold: 4 << 10}, SegmentSize: 8 << 10},
				})
				require.NoError(t, err)
				require.NotNil(t, m)
				assert.Equal(t, ManifestVersion, m.FormatVersion)
				assert.Equal(t, "keepslot-test", m.ToolVersion)
				st, ok := m.Stats("shop.orders")
				require.True(t, ok)
				assert.EqualValues(t, 300, st.Documents)

				r, gotF, gotC, err := detect(bytes.NewReader(out.Bytes()), nil, nil)
				require.NoError(t, err)
				assert.Equal(t, f.Name(), gotF.Name())
				assert.Equal(t, comp.Name(), gotC.Name())

				docs, _ := readAll(t, r)
				for _, c := range cols {
					want := src[c.Namespace()]
					assert.Equal(t, len(want), len(docs[c.Namespace()]), c.Namespace())
					for i := range want {
						require.True(t, bytes.Equal(want[i], docs[c.Namespace()][i]), "%s doc %d", c.Namespace(), i)
					}
				}

				// Metadata: every collection, views included, with options,
				// indexes, uuid and type as given.
				got := map[string]Collection{}
				for _, c := range r.Collections() {
					got[c.Namespace()] = c
				}
				require.Len(t, got, len(cols))
				for _, c := range cols {
					g := got[c.Namespace()]
					assert.Equal(t, c.Name, g.Name)
					assert.Equal(t, c.Type, g.Type, c.Namespace())
					assert.Equal(t, c.UUID, g.UUID)
					assert.Equal(t, rawString(c.Options), rawString(g.Options), c.Namespace())
					require.Len(t, g.Indexes, len(c.Indexes))
					for i := range c.Indexes {
						assert.Equal(t, rawString(c.Indexes[i]), rawString(g.Indexes[i]))
					}
				}

				rm := r.Manifest()
				require.NotNil(t, rm)
				assert.Equal(t, "7.0.2", rm.ServerVersion)
				rs, ok := rm.Stats("shop.orders")
				require.True(t, ok)
				assert.Equal(t, st.Documents, rs.Documents)
				assert.Equal(t, st.Bytes, rs.Bytes)
				if f.Name() == "tar" {
					assert.Equal(t, st.SHA256, rs.SHA256)
					assert.Len(t, rs.SHA256, 64)
				}
				// Next stays at io.EOF.
				_, err = r.Next()
				assert.Equal(t, io.EOF, err)
			})
		}
	}
}

func rawString(r bson.Raw) string {
	if len(r) == 0 {
		return "{}"
	}
	return r.String()
}

// TestSkippedRunsAreVerified reads only the run headers: the readers must
// still read and check the skipped documents.
func TestSkippedRunsAreVerified(t *testing.T) {
	cols, src := testCollections(t)
	for _, f := range allFormats {
		t.Run(f.Name(), func(t *testing.T) {
			var out bytes.Buffer
			_, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Format: f, Compression: NoCompression{}})
			require.NoError(t, err)
			r, err := Open(bytes.NewReader(out.Bytes()), nil)
			require.NoError(t, err)
			n := 0
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				n++
			}
			assert.Positive(t, n)
			st, ok := r.Manifest().Stats("shop.orders")
			require.True(t, ok)
			assert.EqualValues(t, 300, st.Documents)
		})
	}
}

// TestNearMaxDocuments round-trips documents just below the 16 MiB limit
// through both formats.
func TestNearMaxDocuments(t *testing.T) {
	big := mustDoc(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "s", Value: string(bytes.Repeat([]byte("abcdefgh"), (16<<20-64)/8))}})
	require.Less(t, len(big), 16<<20)
	small := mustDoc(t, bson.D{{Key: "_id", Value: int32(2)}})
	cols := []Collection{{DB: "d", Name: "big"}}
	src := sliceSource{"d.big": {small, big, small, big}}
	for _, f := range allFormats {
		t.Run(f.Name(), func(t *testing.T) {
			var out bytes.Buffer
			_, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Format: f, Compression: NewZstd(DefaultZstdLevel), Writer: WriterOptions{Spill: Spill{Dir: t.TempDir()}}})
			require.NoError(t, err)
			r, err := Open(bytes.NewReader(out.Bytes()), nil)
			require.NoError(t, err)
			docs, _ := readAll(t, r)
			require.Len(t, docs["d.big"], 4)
			assert.True(t, bytes.Equal(big, docs["d.big"][3]))
			assert.True(t, bytes.Equal(small, docs["d.big"][2]))
		})
	}
}
