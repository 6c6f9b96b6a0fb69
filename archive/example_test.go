package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/keepslot/keepslot/archive"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// memSource serves documents from memory; a real Source runs a find on
// each collection.
type memSource map[string][]bson.D

func (m memSource) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	for _, d := range m[c.Namespace()] {
		raw, err := bson.Marshal(d)
		if err != nil {
			return err
		}
		if err := emit(raw); err != nil {
			return err
		}
	}
	return nil
}

func Example() {
	cols := []archive.Collection{
		{DB: "shop", Name: "orders"},
		{DB: "shop", Name: "customers"},
	}
	src := memSource{
		"shop.orders":    {{{Key: "_id", Value: 1}, {Key: "total", Value: 9.5}}, {{Key: "_id", Value: 2}, {Key: "total", Value: 20.0}}},
		"shop.customers": {{{Key: "_id", Value: "ada"}}},
	}

	// Write a .tar.gz in mongodump's layout...
	var buf bytes.Buffer
	m, err := archive.Dump(context.Background(), &buf, cols, src, &archive.DumpOptions{
		Format: archive.TarFormat{}, Compression: archive.NewGzip(archive.DefaultGzipLevel), ToolVersion: "example",
		Parallel: 1, // entries in the order of cols; with more, in the order collections finish
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, ns := range m.Namespaces {
		fmt.Printf("wrote %s: %d documents\n", ns.Namespace, ns.Documents)
	}

	// ...and read it back; Open detects gzip and tar.
	r, err := archive.Open(&buf, nil)
	if err != nil {
		log.Fatal(err)
	}
	for {
		col, err := r.Next()
		if err == io.EOF {
			break // the manifest's counts and sha256 have been checked
		}
		if err != nil {
			log.Fatal(err)
		}
		for {
			doc, err := r.ReadDocument()
			if err == io.EOF {
				break
			}
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(col.Namespace(), bson.Raw(doc).Lookup("_id"))
		}
	}
	// Output:
	// wrote shop.orders: 2 documents
	// wrote shop.customers: 1 documents
	// shop.orders {"$numberInt":"1"}
	// shop.orders {"$numberInt":"2"}
	// shop.customers "ada"
}

// A Writer can be driven directly, here in mongodump's --archive format
// without compression, as `mongorestore --archive=FILE` reads it.
func ExampleFormat() {
	col := archive.Collection{DB: "app", Name: "events"}
	var buf bytes.Buffer
	w, err := archive.ArchiveFormat{}.NewWriter(&buf, archive.Header{ServerVersion: "7.0.0", Collections: []archive.Collection{col}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	cw, err := w.Collection(col)
	if err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: i}})
		if err := cw.WriteDocument(doc); err != nil {
			log.Fatal(err)
		}
	}
	if err := cw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("magic % x\n", buf.Bytes()[:4])

	r, err := archive.Open(&buf, nil)
	if err != nil {
		log.Fatal(err)
	}
	n := 0
	for {
		if _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			log.Fatal(err)
		}
		for {
			if _, err := r.ReadDocument(); err == io.EOF {
				break
			}
			n++
		}
	}
	fmt.Println(n, "documents, CRC checked")
	// Output:
	// magic 6d e2 99 81
	// 3 documents, CRC checked
}
