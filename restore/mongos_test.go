package restore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/restore"
)

// TestRestoreSendsWhatAMongosRoutes checks the premise on which a restore
// into a mongos is allowed (docs/sharding.md): a restore, its replay
// included, sends the server only commands that a mongos routes. An
// applyOps entry and a committed transaction in the backup's oplog are
// replayed as their operations, never sent as applyOps, which a mongos
// refuses; so are its plain entries. No mongos runs here: the test watches
// the commands sent to the embedded server.
func TestRestoreSendsWhatAMongosRoutes(t *testing.T) {
	srv := mongotest.New(t)
	ns := srv.DB("routed") + ".c"
	data := testnode.CraftedBackup(t, map[string][]bson.D{ns: {testnode.ID(1)}}, []bson.D{
		testnode.Ins(ns, testnode.ID(2)),
		testnode.Cmd("admin", bson.D{{Key: "applyOps", Value: bson.A{
			testnode.Ins(ns, testnode.ID(3)),
			testnode.Upd(ns, 1, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}),
		}}}),
		testnode.Txn(7, bson.Timestamp{}, bson.A{testnode.Ins(ns, testnode.ID(4))}, bson.E{Key: "partialTxn", Value: true}),
		testnode.TxnCmd(7, testnode.EntryTS(2), bson.D{{Key: "applyOps", Value: bson.A{testnode.Del(ns, 2)}}}),
	}, archive.TarFormat{})

	var mu sync.Mutex
	sent := map[string]int{}
	monitor := &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		mu.Lock()
		sent[ev.CommandName]++
		mu.Unlock()
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })

	rep, err := testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: client}})
	require.NoError(t, err)
	require.NotNil(t, rep.Oplog)
	assert.Zero(t, rep.Oplog.Conflicts)
	assert.Equal(t, testnode.DocsOf(t,
		bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}}, testnode.ID(3), testnode.ID(4),
	), testnode.Contents(t, srv, ns), "every operation of the applyOps and the transaction is applied")

	mu.Lock()
	defer mu.Unlock()
	assert.Zero(t, sent["applyOps"], "applyOps is never sent: a mongos refuses it")
	assert.Positive(t, sent["insert"]+sent["update"]+sent["delete"], "the replay's writes are plain writes")
}
