package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/keepslot/keepslot/store"
)

func ExampleMemory() {
	ctx := context.Background()
	slot := store.Memory()

	p, err := slot.Create(ctx, "backup-1.enc")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(p, strings.NewReader("hello, slot")); err != nil {
		p.Abort()
		log.Fatal(err)
	}
	info, err := p.Commit(map[string]string{"node": "rs0-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Name, info.Size, info.MD5, info.Meta["node"])

	// The slot holds one object: the next one waits for a Delete.
	_, err = slot.Create(ctx, "backup-2.enc")
	fmt.Println(errors.Is(err, store.ErrSlotOccupied))

	o, err := slot.Open(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer o.Close()
	tail := make([]byte, 4)
	if _, err := o.ReadAt(tail, info.Size-4); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", tail)

	if err := slot.Delete(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = slot.Stat(ctx)
	fmt.Println(errors.Is(err, store.ErrEmpty))
	// Output:
	// backup-1.enc 11 16a61270a6ce1966d1f3f87860472f68 rs0-1
	// true
	// slot
	// true
}

func ExampleDir() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keepslot-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	slot, err := store.Dir(dir + "/slot") // created 0700
	if err != nil {
		log.Fatal(err)
	}
	p, err := slot.Create(ctx, "secrets.enc")
	if err != nil {
		log.Fatal(err)
	}
	// While a write is pending, nobody else may write, in this process or
	// another, and readers still see an empty slot.
	_, err = slot.Create(ctx, "other.enc")
	fmt.Println(errors.Is(err, store.ErrBusy))
	_, err = slot.Stat(ctx)
	fmt.Println(errors.Is(err, store.ErrEmpty))

	fmt.Fprint(p, "encrypted bytes")
	info, err := p.Commit(nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Size, info.SHA256[:16])
	// Output:
	// true
	// true
	// 15 8fc57912deaace65
}
