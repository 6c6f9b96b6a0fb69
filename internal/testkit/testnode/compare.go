package testnode

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/restore"
)

// RestoreBytes restores the backup data with [Password] as o says,
// discarding the logs unless o has a Logger.
func RestoreBytes(t testing.TB, data []byte, o restore.Options) (*restore.Report, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return restore.Run(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(Password), &o)
}

// Contents returns the documents of ns sorted by _id, as Extended JSON
// with sorted keys, so that comparisons ignore field order.
func Contents(t testing.TB, srv *mongotest.Server, ns string) []string {
	t.Helper()
	db, name, _ := strings.Cut(ns, ".")
	cur, err := srv.Client.Database(db).Collection(name).Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	var out []string
	for cur.Next(context.Background()) {
		out = append(out, sortedJSON(t, cur.Current))
	}
	require.NoError(t, cur.Err())
	return out
}

// DocsOf returns docs as [Contents] reads them.
func DocsOf(t testing.TB, docs ...bson.D) []string {
	var out []string
	for _, d := range docs {
		out = append(out, sortedJSON(t, d))
	}
	return out
}

func sortedJSON(t testing.TB, doc any) string {
	t.Helper()
	b, err := bson.Marshal(doc)
	require.NoError(t, err)
	var m any
	require.NoError(t, bson.Unmarshal(b, &m))
	out, err := bson.MarshalExtJSON(bson.D{{Key: "d", Value: sortKeys(m)}}, false, false)
	require.NoError(t, err)
	return string(out)
}

func sortKeys(v any) any {
	switch x := v.(type) {
	case bson.D:
		out := make(bson.D, len(x))
		for i, e := range x {
			out[i] = bson.E{Key: e.Key, Value: sortKeys(e.Value)}
		}
		slices.SortFunc(out, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
		return out
	case bson.M:
		out := bson.D{}
		for k, v := range x {
			out = append(out, bson.E{Key: k, Value: v})
		}
		return sortKeys(out)
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			out[i] = sortKeys(e)
		}
		return out
	}
	return v
}

// Canonical returns docs as canonical Extended JSON, field order kept.
func Canonical(t testing.TB, docs []bson.D) []string {
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		b, err := bson.MarshalExtJSON(d, true, false)
		require.NoError(t, err)
		out = append(out, string(b))
	}
	return out
}

// IndexList returns the names of ns's indexes, sorted.
func IndexList(t testing.TB, srv *mongotest.Server, ns string) []string {
	db, name, _ := strings.Cut(ns, ".")
	specs, err := srv.Client.Database(db).Collection(name).Indexes().ListSpecifications(context.Background())
	require.NoError(t, err)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

// CollectionNames returns the names of db's collections, sorted.
func CollectionNames(t testing.TB, srv *mongotest.Server, db string) []string {
	names, err := srv.Client.Database(db).ListCollectionNames(context.Background(), bson.D{})
	require.NoError(t, err)
	slices.Sort(names)
	return names
}
