package oplog_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/namespace"
)

// TestScope checks which entries, and which operations of applyOps, a
// capture keeps for a backup of the databases app*; and what an open
// scope, which starts in the middle of the oplog, keeps besides.
func TestScope(t *testing.T) {
	type D = bson.D
	type A = bson.A
	filter := namespace.Filter{Include: []string{"app*"}}
	c := oplog.NewScope(filter, []string{"app"})
	open := oplog.NewOpenScope(filter)
	ins := func(ns string) D {
		return D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: D{{Key: "_id", Value: 1}}}}
	}
	cmd := func(db string, o D) D {
		return D{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"}, {Key: "o", Value: o}}
	}
	txn := func(n int64, prev uint32, ops A, extra ...bson.E) D {
		return D{{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: append(D{{Key: "applyOps", Value: ops}}, extra...)},
			{Key: "lsid", Value: D{{Key: "id", Value: n}}}, {Key: "txnNumber", Value: n},
			{Key: "prevOpTime", Value: D{{Key: "ts", Value: bson.Timestamp{T: prev}}, {Key: "t", Value: int64(1)}}}}
	}
	commit := func(n int64, prev uint32) D {
		e := txn(n, prev, nil)
		e[2] = bson.E{Key: "o", Value: D{{Key: "commitTransaction", Value: 1}}}
		return e
	}
	for i, tc := range []struct {
		entry D
		keep  bool
		open  bool     // kept by the open scope, where keep is false
		ops   []string // the namespaces of the applyOps kept
	}{
		{entry: ins("app.c"), keep: true},
		{entry: ins("other.c")},
		{entry: ins("config.system.sessions")},
		{entry: ins("app.system.views")},
		{entry: D{{Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: D{}}}},
		{entry: cmd("app", D{{Key: "create", Value: "n"}}), keep: true},
		{entry: cmd("other", D{{Key: "create", Value: "n"}})},
		{entry: cmd("other", D{{Key: "dropDatabase", Value: 1}}), open: true},
		{entry: cmd("local", D{{Key: "dropDatabase", Value: 1}})},
		{entry: ins("app2.x"), keep: true},
		{entry: cmd("app2", D{{Key: "dropDatabase", Value: 1}}), keep: true},
		{entry: cmd("app", D{{Key: "renameCollection", Value: "other.a"}, {Key: "to", Value: "app.b"}}), keep: true},
		{entry: cmd("admin", D{{Key: "applyOps", Value: A{ins("app.c"), ins("other.c")}}}), keep: true, ops: []string{"app.c"}},
		{entry: cmd("admin", D{{Key: "applyOps", Value: A{ins("other.c")}}})},
		{entry: txn(1, 0, A{ins("other.c")})},
		{entry: txn(2, 0, A{ins("other.c")}, bson.E{Key: "partialTxn", Value: true}), keep: true, ops: []string{}},
		{entry: txn(2, 7, A{ins("app.c"), ins("other.c")}), keep: true, ops: []string{"app.c"}},
		{entry: txn(3, 0, A{ins("other.c")}, bson.E{Key: "prepare", Value: true}), keep: true, ops: []string{}},
		{entry: commit(3, 9), keep: true},
		{entry: commit(4, 9), open: true},
	} {
		raw, err := bson.Marshal(append(D{{Key: "ts", Value: bson.Timestamp{T: uint32(i + 1)}}}, tc.entry...))
		require.NoError(t, err)
		e, err := oplog.Parse(raw, false)
		require.NoError(t, err)
		_, openKeep, err := open.Keep(e)
		require.NoError(t, err)
		assert.Equal(t, tc.keep || tc.open, openKeep, "%d: open: %s", i, bson.Raw(raw))
		out, keep, err := c.Keep(e)
		require.NoError(t, err)
		require.Equal(t, tc.keep, keep, "%d: %s", i, bson.Raw(raw))
		if tc.ops == nil {
			if keep {
				assert.Equal(t, bson.Raw(raw), out, "%d: kept as is", i)
			}
			continue
		}
		arr, ok := out.Lookup("o", "applyOps").ArrayOK()
		require.True(t, ok)
		vals, err := arr.Values()
		require.NoError(t, err)
		got := []string{}
		for _, v := range vals {
			got = append(got, v.Document().Lookup("ns").StringValue())
		}
		assert.Equal(t, tc.ops, got, "%d", i)
		assert.Equal(t, bson.Raw(raw).Lookup("lsid"), out.Lookup("lsid"), "%d: the rest of the entry is kept", i)
	}
}
