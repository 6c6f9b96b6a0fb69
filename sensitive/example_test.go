package sensitive_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/store"
)

// A sensitive backup of a key held in memory, retrieved and restored into a
// directory.
func Example() {
	ctx := context.Background()
	stateDir, _ := os.MkdirTemp("", "node")
	defer os.RemoveAll(stateDir)

	b, err := sensitive.New(sensitive.Config{
		Sources:  []sensitive.Source{sensitive.Memory(map[string][]byte{"keys/master.key": []byte("0123456789abcdef")})},
		Store:    store.Memory(),
		StateDir: stateDir,
		KDF:      &cipher.Options{LogN: 10}, // cheap for the example; keep the default in production
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.Role().Set(); err != nil { // set-as-backup
		log.Fatal(err)
	}
	if err := b.Start(ctx, []byte("sensitive password")); err != nil {
		log.Fatal(err)
	}
	st, err := b.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Message())

	var file bytes.Buffer
	if _, err := b.Retrieve(ctx, &file); err != nil {
		log.Fatal(err)
	}
	dir := filepath.Join(stateDir, "restored")
	rep, err := sensitive.Restore(ctx, bytes.NewReader(file.Bytes()), int64(file.Len()), []byte("sensitive password"), dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "keys/master.key"))
	fmt.Println(rep.Files[0].Name, string(key))
	// Output:
	// Backup found
	// keys/master.key 0123456789abcdef
}
