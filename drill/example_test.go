package drill_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// The example's server and the database it backs up.
var (
	client *mongo.Client
	shop   string
)

// TestMain gives the runnable example a server with a database of three
// orders.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	srv, stop, err := mongotest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client, shop = srv.Client, srv.DB("shop")
	orders := []any{bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "tea"}}, bson.D{{Key: "_id", Value: 2}, {Key: "sku", Value: "cup"}}, bson.D{{Key: "_id", Value: 3}, {Key: "sku", Value: "pot"}}}
	if _, err := client.Database(shop).Collection("orders").InsertMany(context.Background(), orders); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// A backup of database shop, retrieved and drilled under a prefix on the
// same server: restored into drill_<shop>, read back, compared and dropped.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keepslot")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	password := []byte("correct horse battery staple")

	disk, err := store.Dir(filepath.Join(dir, "slot"))
	if err != nil {
		log.Fatal(err)
	}
	b, err := backup.New(&backup.Source{Conn: conn.Config{Client: client}, Filter: namespace.Filter{Include: []string{shop + ".*"}}},
		slot.Config{Store: disk, StateDir: filepath.Join(dir, "state"), KDF: &cipher.Options{LogN: 10}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.Role().Set(); err != nil {
		log.Fatal(err)
	}
	if err := b.Start(ctx, password); err != nil {
		log.Fatal(err)
	}
	if _, err := b.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	var file bytes.Buffer
	if _, err := b.Retrieve(ctx, &file); err != nil {
		log.Fatal(err)
	}

	rep, err := drill.Run(ctx, bytes.NewReader(file.Bytes()), int64(file.Len()), password, &drill.Options{
		Conn:   conn.Config{Client: client},
		Prefix: "drill_", // never a prefix a database of the server starts with
	})
	if err != nil {
		log.Fatal(err) // a *drill.Failure lists what differs
	}
	fmt.Println("passed:", rep.Passed)
	for _, ns := range rep.Namespaces {
		fmt.Printf("shop%s: %d documents expected, %d found, digests equal: %t, indexes %v\n", strings.TrimPrefix(ns.Namespace, shop),
			ns.ExpectedDocuments, ns.FoundDocuments, ns.ExpectedDigest == ns.FoundDigest, ns.FoundIndexes)
	}
	fmt.Println("dropped:", len(rep.Dropped), "time to restore measured:", rep.RestoreTime > 0)
	// Output:
	// passed: true
	// shop.orders: 3 documents expected, 3 found, digests equal: true, indexes [_id_]
	// dropped: 1 time to restore measured: true
}
