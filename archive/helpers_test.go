package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// mustDoc marshals v to BSON.
func mustDoc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bson.Marshal(v)
	require.NoError(t, err)
	return b
}

// richDocs returns n documents covering many BSON types.
func richDocs(t testing.TB, n int) [][]byte {
	t.Helper()
	dec, err := bson.ParseDecimal128("12345.6789e-3")
	require.NoError(t, err)
	docs := make([][]byte, n)
	for i := range n {
		docs[i] = mustDoc(t, bson.D{
			{Key: "_id", Value: bson.NewObjectIDFromTimestamp(time.Unix(int64(1_700_000_000+i), 0))},
			{Key: "i32", Value: int32(i)},
			{Key: "i64", Value: int64(i) << 40},
			{Key: "f", Value: float64(i) / 3},
			{Key: "dec", Value: dec},
			{Key: "when", Value: bson.NewDateTimeFromTime(time.Date(2024, 2, 29, 12, 0, i%60, 0, time.UTC))},
			{Key: "bin", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(i)}, 16)}},
			{Key: "s", Value: fmt.Sprintf("string %d ü €", i)},
			{Key: "b", Value: i%2 == 0},
			{Key: "null", Value: nil},
			{Key: "re", Value: bson.Regex{Pattern: "^a.*", Options: "i"}},
			{Key: "ts", Value: bson.Timestamp{T: uint32(i), I: 1}},
			{Key: "arr", Value: bson.A{int32(1), "two", bson.A{3.0, bson.D{{Key: "x", Value: int32(i)}}}}},
			{Key: "nested", Value: bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: bson.D{{Key: "c", Value: int32(i)}}}}}}},
			{Key: "min", Value: bson.MinKey{}},
			{Key: "max", Value: bson.MaxKey{}},
			{Key: "js", Value: bson.JavaScript("function(){return 1}")},
		})
	}
	return docs
}

// sliceSource serves documents from memory.
type sliceSource map[string][][]byte

func (s sliceSource) Documents(ctx context.Context, c Collection, emit func([]byte) error) error {
	for _, d := range s[c.Namespace()] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(d); err != nil {
			return err
		}
	}
	return nil
}

// readAll reads every run of r, grouping documents by namespace.
func readAll(t testing.TB, r Reader) (map[string][][]byte, map[string]Collection) {
	t.Helper()
	docs := map[string][][]byte{}
	meta := map[string]Collection{}
	for {
		c, err := r.Next()
		if err == io.EOF {
			return docs, meta
		}
		require.NoError(t, err)
		meta[c.Namespace()] = *c
		for {
			d, err := r.ReadDocument()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			docs[c.Namespace()] = append(docs[c.Namespace()], d)
		}
	}
}

// drain reads r to its end and returns the first error other than io.EOF.
func drain(r Reader) error {
	for {
		_, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for {
			_, err := r.ReadDocument()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
	}
}

// openBytes runs Open over b and drains it.
func openBytes(b []byte) error {
	r, err := Open(bytes.NewReader(b), nil)
	if err != nil {
		return err
	}
	return drain(r)
}

func indexDoc(t testing.TB, name string, key bson.D, extra ...bson.E) bson.Raw {
	d := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: key}, {Key: "name", Value: name}}
	d = append(d, extra...)
	return mustDoc(t, d)
}

// testCollections returns a set of collections and their documents:
// rich types, an empty collection, an escaped name, a view and many small
// collections.
func testCollections(t testing.TB) ([]Collection, sliceSource) {
	src := sliceSource{}
	cols := []Collection{
		{
			DB: "shop", Name: "orders", UUID: "0123456789abcdef0123456789abcdef",
			Options: mustDoc(t, bson.D{{Key: "validator", Value: bson.D{{Key: "i32", Value: bson.D{{Key: "$gte", Value: int32(0)}}}}}}),
			Indexes: []bson.Raw{
				indexDoc(t, "_id_", bson.D{{Key: "_id", Value: int32(1)}}),
				indexDoc(t, "when_-1_s_1", bson.D{{Key: "when", Value: int32(-1)}, {Key: "s", Value: int32(1)}}, bson.E{Key: "unique", Value: true}),
			},
		},
		{DB: "shop", Name: "empty", Indexes: []bson.Raw{indexDoc(t, "_id_", bson.D{{Key: "_id", Value: int32(1)}})}},
		{DB: "shop", Name: "weird/name%x.y z", Options: mustDoc(t, bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int64(1 << 20)}})},
		{DB: "shop", Name: "recent", Type: "view", Options: mustDoc(t, bson.D{{Key: "viewOn", Value: "orders"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "b", Value: true}}}}}}})},
	}
	src["shop.orders"] = richDocs(t, 300)
	src["shop.weird/name%x.y z"] = richDocs(t, 7)
	for i := range 40 {
		c := Collection{DB: "many", Name: fmt.Sprintf("c%02d", i)}
		cols = append(cols, c)
		for j := range i % 5 {
			src[c.Namespace()] = append(src[c.Namespace()], mustDoc(t, bson.D{{Key: "_id", Value: int32(j)}, {Key: "c", Value: strings.Repeat("x", i)}}))
		}
	}
	return cols, src
}
