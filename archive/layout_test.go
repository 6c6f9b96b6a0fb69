package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc64"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestTarLayout checks the entries against mongodump's directory layout.
func TestTarLayout(t *testing.T) {
	cols, src := testCollections(t)
	var out bytes.Buffer
	_, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Format: TarFormat{}, Compression: NoCompression{}})
	require.NoError(t, err)

	tr := tar.NewReader(&out)
	var names []string
	contents := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		assert.Equal(t, byte(tar.TypeReg), h.Typeflag)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		names = append(names, h.Name)
		contents[h.Name] = b
	}
	// metadata first (in header order), then documents, then the manifest.
	require.Equal(t, "dump/shop/orders.metadata.json", names[0])
	assert.Equal(t, "dump/shop/weird%2Fname%25x.y%20z.metadata.json", names[2])
	assert.Equal(t, "manifest.json", names[len(names)-1])
	nMeta := 0
	for i, n := range names[:len(names)-1] {
		if strings.HasSuffix(n, ".metadata.json") {
			nMeta++
			assert.Less(t, i, len(cols), "metadata entry %s after a documents entry", n)
		}
	}
	assert.Equal(t, len(cols), nMeta)
	assert.Contains(t, contents, "dump/shop/weird%2Fname%25x.y%20z.bson")
	assert.Contains(t, contents, "dump/shop/empty.bson")
	assert.NotContains(t, contents, "dump/shop/recent.bson", "views have no documents entry")

	// The .bson entry is the concatenated documents.
	assert.Equal(t, bytes.Join(src["shop.orders"], nil), contents["dump/shop/orders.bson"])
	assert.Empty(t, contents["dump/shop/empty.bson"])

	// metadata.json is canonical Extended JSON with mongodump's fields.
	meta := contents["dump/shop/orders.metadata.json"]
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(meta, &m))
	assert.ElementsMatch(t, []string{"options", "indexes", "uuid", "collectionName", "type"}, keys(m))
	assert.JSONEq(t, `"orders"`, string(m["collectionName"]))
	assert.JSONEq(t, `"collection"`, string(m["type"]))
	assert.JSONEq(t, `"0123456789abcdef0123456789abcdef"`, string(m["uuid"]))
	assert.JSONEq(t, `{"validator":{"i32":{"$gte":{"$numberInt":"0"}}}}`, string(m["options"]))
	assert.JSONEq(t, `[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"},
		{"v":{"$numberInt":"2"},"key":{"when":{"$numberInt":"-1"},"s":{"$numberInt":"1"}},"name":"when_-1_s_1","unique":true}]`, string(m["indexes"]))
	var view map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(contents["dump/shop/recent.metadata.json"], &view))
	assert.JSONEq(t, `"view"`, string(view["type"]))
	assert.JSONEq(t, `[]`, string(view["indexes"]))

	// manifest.json
	var man struct {
		FormatVersion int    `json:"formatVersion"`
		ToolVersion   string `json:"toolVersion"`
		Created       string `json:"created"`
		Namespaces    []struct {
			Namespace string `json:"namespace"`
			Documents int64  `json:"documents"`
			Bytes     int64  `json:"bytes"`
			SHA256    string `json:"sha256"`
		} `json:"namespaces"`
	}
	require.NoError(t, json.Unmarshal(contents["manifest.json"], &man))
	assert.Equal(t, 1, man.FormatVersion)
	assert.NotEmpty(t, man.Created)
	require.Equal(t, "shop.orders", man.Namespaces[0].Namespace)
	assert.EqualValues(t, 300, man.Namespaces[0].Documents)
	assert.EqualValues(t, len(contents["dump/shop/orders.bson"]), man.Namespaces[0].Bytes)
	assert.Len(t, man.Namespaces, len(cols)-1) // the view has no documents
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestArchiveLayout parses the archive format by hand, following
// mongo-tools' spec.md.
func TestArchiveLayout(t *testing.T) {
	cols, src := testCollections(t)
	var out bytes.Buffer
	_, err := Dump(context.Background(), &out, cols, src, &DumpOptions{
		Format: ArchiveFormat{}, Compression: NoCompression{}, Parallel: 3,
		ServerVersion: "7.0.2", ToolVersion: "kt",
		Writer: WriterOptions{SegmentSize: 4 << 10},
	})
	require.NoError(t, err)
	b := out.Bytes()
	require.Equal(t, []byte{0x6d, 0xe2, 0x99, 0x81}, b[:4])
	b = b[4:]
	next := func() bson.Raw {
		n := binary.LittleEndian.Uint32(b)
		if n == 0xffffffff {
			b = b[4:]
			return nil
		}
		d := bson.Raw(b[:n])
		b = b[n:]
		require.NoError(t, d.Validate())
		return d
	}
	hdr := next()
	assert.Equal(t, "0.1", hdr.Lookup("version").StringValue())
	assert.Equal(t, "7.0.2", hdr.Lookup("server_version").StringValue())
	assert.Equal(t, "kt", hdr.Lookup("tool_version").StringValue())
	assert.EqualValues(t, 3, hdr.Lookup("concurrent_collections").Int32())
	nMeta := 0
	for d := next(); d != nil; d = next() {
		assert.Equal(t, cols[nMeta].DB, d.Lookup("db").StringValue())
		assert.Equal(t, cols[nMeta].Name, d.Lookup("collection").StringValue())
		assert.Contains(t, d.Lookup("metadata").StringValue(), `"collectionName"`)
		nMeta++
	}
	assert.Equal(t, len(cols), nMeta)

	crcs := map[string]uint64{}
	eofs := map[string]int64{}
	segments := 0
	for len(b) > 0 {
		h := next()
		require.NotNil(t, h)
		ns := h.Lookup("db").StringValue() + "." + h.Lookup("collection").StringValue()
		if h.Lookup("EOF").Boolean() {
			eofs[ns] = h.Lookup("CRC").Int64()
			require.Nil(t, next())
			continue
		}
		assert.EqualValues(t, 0, h.Lookup("CRC").Int64())
		segments++
		size := len(h) + 4
		for d := next(); d != nil; d = next() {
			crcs[ns] = crc64.Update(crcs[ns], crc64.MakeTable(crc64.ECMA), d)
			size += len(d)
		}
		assert.LessOrEqual(t, size, 4<<10)
	}
	assert.Greater(t, segments, 10, "small segments split the collections")
	require.Len(t, eofs, len(cols))
	for ns, c := range eofs {
		assert.Equal(t, int64(crcs[ns]), c, ns)
	}
}
