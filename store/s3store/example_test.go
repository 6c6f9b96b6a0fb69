package s3store_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/keepslot/keepslot/store/s3store"
)

// A slot in a bucket. The credentials come from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY.
func Example() {
	ctx := context.Background()
	slot, err := s3store.New(s3store.Config{
		Endpoint: "s3.eu-central-1.amazonaws.com",
		Bucket:   "backups",
		Prefix:   "keepslot/node-1/slot",
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := slot.Check(ctx); err != nil {
		log.Fatal(err) // s3store.ErrUnauthorized, ErrNoBucket or ErrUnreachable
	}
	p, err := slot.Create(ctx, "backup-1.enc")
	if err != nil {
		log.Fatal(err) // store.ErrSlotOccupied, store.ErrBusy...
	}
	if _, err := io.Copy(p, strings.NewReader("encrypted bytes")); err != nil {
		p.Abort()
		log.Fatal(err)
	}
	info, err := p.Commit(nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Name, info.SHA256)
}
