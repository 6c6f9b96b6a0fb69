package backup_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
)

// TestBatchBytes: a backup reads a collection in cursor batches of about
// the size it asks for, whatever the server would send by itself (a mongod
// sends up to 16 MiB a batch, which the driver holds whole), and reads all
// of it.
func TestBatchBytes(t *testing.T) {
	e := testnode.New(t)
	ctx := context.Background()
	ns := e.Srv.DB("shop") + ".orders"
	bytes, docs, err := testnode.SeedRecords(ctx, e.Srv.Client, []string{ns}, 400<<10)
	require.NoError(t, err)

	var mu sync.Mutex
	var replies []int // the size of every getMore's reply
	monitor := &event.CommandMonitor{Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
		if ev.CommandName == "getMore" {
			mu.Lock()
			replies = append(replies, len(ev.Reply))
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(e.Srv.URI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })

	const target = 32 << 10
	cfg := e.Config()
	src := &backup.Source{Conn: conn.Config{Client: client}, Filter: cfg.Filter}
	backup.SetBatchBytes(src, target)
	b, err := backup.New(src, cfg.Config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.Role().Set())
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st := testnode.Wait(t, b)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	info, err := b.Retrieve(ctx, discard{})
	require.NoError(t, err)
	assert.Equal(t, docs, mustInt(t, info.Meta["documents"]), "documents backed up")

	mu.Lock()
	defer mu.Unlock()
	// 400 KiB in batches of 32 KiB: a dozen getMores, each at most the
	// target, one document (the average's error) and the reply's envelope.
	require.GreaterOrEqual(t, len(replies), int(bytes/target)-1, "getMores for %d bytes", bytes)
	for i, n := range replies {
		assert.LessOrEqual(t, n, target+2<<10, "getMore %d of %d", i, len(replies))
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, "%q", s)
	return n
}
