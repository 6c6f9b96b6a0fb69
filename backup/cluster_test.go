package backup_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// raw marshals a crafted server answer.
func raw(t *testing.T, d D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	require.NoError(t, err)
	return b
}

// TestShardedRefused backs up FerretDB made to answer about its role as
// the servers of a sharded cluster do (no mongos can run here): a mongos,
// a config server's member and a shard's member are refused with
// ErrSharded before anything is read, with a message that says what
// keepslot backs up and what a cluster needs; a replica set's member and
// a standalone node are backed up.
func TestShardedRefused(t *testing.T) {
	rsHello := D{{Key: "isWritablePrimary", Value: true}, {Key: "setName", Value: "rs0"}, {Key: "hosts", Value: bson.A{"a:27017", "b:27017"}},
		{Key: "maxWireVersion", Value: int32(21)}, {Key: "ok", Value: 1.0}}
	for _, tc := range []struct {
		name            string
		hello, identity D
		says            string // "" for a backup that succeeds
	}{
		{
			name: "mongos",
			hello: D{{Key: "isWritablePrimary", Value: true}, {Key: "msg", Value: "isdbgrid"},
				{Key: "maxWireVersion", Value: int32(21)}, {Key: "ok", Value: 1.0}},
			says: "it is a mongos (hello's msg is isdbgrid)",
		},
		{
			name:  "config server member",
			hello: append(append(D{}, rsHello...), bson.E{Key: "configsvr", Value: int32(2)}),
			says:  "config server replica set (hello has configsvr)",
		},
		{
			name:  "shard member",
			hello: rsHello,
			identity: D{{Key: "_id", Value: "shardIdentity"}, {Key: "shardName", Value: "shard01"},
				{Key: "clusterId", Value: bson.NewObjectID()}, {Key: "configsvrConnectionString", Value: "cfg/c:27019"}},
			says: `it is a member of shard "shard01" of a sharded cluster`,
		},
		{name: "replica set member", hello: rsHello},
		{name: "standalone", hello: D{{Key: "isWritablePrimary", Value: true}, {Key: "maxWireVersion", Value: int32(21)}, {Key: "ok", Value: 1.0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testnode.New(t)
			insertDocs(t, e, "app", "a", 5)
			src := &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter}
			var identity bson.Raw
			if tc.identity != nil {
				identity = raw(t, tc.identity)
			}
			backup.SetRole(src, raw(t, tc.hello), identity)
			if tc.says == "" {
				_, st := testnode.RunSlot(t, src, e.Config().Config)
				assert.Equal(t, slot.StateReady, st.State, st.Error)
				return
			}
			b, err := backup.New(src, e.Config().Config)
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			require.NoError(t, b.Role().Set())
			err = b.Start(context.Background(), []byte(testnode.Password))
			require.ErrorIs(t, err, backup.ErrSharded)
			assert.Equal(t, errcode.Sharded, errcode.Of(err))
			assert.ErrorContains(t, err, tc.says)
			assert.ErrorContains(t, err, "keepslot backs up one replica set or standalone node")
			assert.ErrorContains(t, err, "one common cluster time with the balancer stopped")
			_, err = e.Store.Stat(context.Background())
			assert.ErrorIs(t, err, store.ErrEmpty, "nothing was stored")
		})
	}
}
