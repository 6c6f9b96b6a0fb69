package keepslot_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// client is connected to the test server (see TestMain), whose database
// shop holds three orders.
var (
	client *mongo.Client
	shop   string
)

// A node's whole cycle: put it in the backup role, back it up into its
// slot, retrieve the encrypted file, restore it under new names, and free
// the slot for the next backup.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keepslot")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	password := []byte("correct horse battery staple")

	disk, err := store.Dir(filepath.Join(dir, "slot")) // the single slot, 0700
	if err != nil {
		log.Fatal(err)
	}
	b, err := backup.New(&backup.Source{
		Conn:   conn.Config{Client: client},
		Filter: namespace.Filter{Include: []string{shop + ".*"}},
	}, slot.Config{Store: disk, StateDir: filepath.Join(dir, "state")})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	if err := b.Role().Set(); err != nil { // set-as-backup, once per node
		log.Fatal(err)
	}
	if err := b.Start(ctx, password); err != nil { // "Backup in progress."
		log.Fatal(err)
	}
	st, err := b.Wait(ctx) // or poll b.Status
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Message())

	var file bytes.Buffer // backup-retrieve: the encrypted bytes, as stored
	info, err := b.Retrieve(ctx, &file)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("md5 matches the status:", info.MD5 == st.MD5)

	rep, err := restore.Run(ctx, bytes.NewReader(file.Bytes()), info.Size, password, &restore.Options{
		Conn:    conn.Config{Client: client},
		Renames: namespace.Renames{{From: shop + ".*", To: shop + "_restored.*"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restored documents:", rep.Documents)

	if err := b.Delete(ctx); err != nil { // the slot is free for the next backup
		log.Fatal(err)
	}
	// Output:
	// Backup found
	// md5 matches the status: true
	// restored documents: 3
}
