package embedded_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/examples/embedded"
)

func TestStartServeClose(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	srv, err := embedded.Start(ctx, embedded.Options{Dir: dir})
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the data directory")

	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetServerSelectionTimeout(2 * time.Second))
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(ctx) }()
	_, err = client.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "k", Value: "v"}})
	require.NoError(t, err)

	require.NoError(t, srv.Close())
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	assert.Error(t, client.Ping(pingCtx, nil), "the server is gone after Close")
}

func TestStartNeedsDir(t *testing.T) {
	_, err := embedded.Start(context.Background(), embedded.Options{})
	assert.ErrorContains(t, err, "Options.Dir is empty")
}

func TestStartAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = embedded.Start(context.Background(), embedded.Options{Dir: t.TempDir(), Addr: ln.Addr().String()})
	assert.ErrorContains(t, err, ln.Addr().String())
}

// Start a server in a directory, connect the driver to it, and close it.
func ExampleStart() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "embedded-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	srv, err := embedded.Start(ctx, embedded.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		panic(err)
	}
	defer client.Disconnect(ctx)
	fmt.Println(client.Ping(ctx, nil))
	// Output: <nil>
}
