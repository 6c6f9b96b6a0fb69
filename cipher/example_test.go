package cipher_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/keepslot/keepslot/cipher"
)

func ExampleNewWriter() {
	password := []byte("correct horse battery staple")

	// Encrypt. LogN 10 keeps the example fast; leave Options nil in real use.
	var stream bytes.Buffer
	w, err := cipher.NewWriter(&stream, password, &cipher.Options{LogN: 10})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.WriteString(w, "the secret backup\n"); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // writes the tag table and footer
		log.Fatal(err)
	}
	fmt.Println("overhead:", int64(stream.Len())-int64(len("the secret backup\n")) == cipher.Overhead(18))

	// Decrypt. NewReader needs random access: spool a pipe to a file first.
	r, err := cipher.NewReader(bytes.NewReader(stream.Bytes()), int64(stream.Len()), password, nil)
	if err != nil {
		log.Fatal(err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes: %s", r.Size(), plain)
	// Output:
	// overhead: true
	// 18 bytes: the secret backup
}

func ExampleReader_Verify() {
	password := []byte("correct horse battery staple")
	var stream bytes.Buffer
	w, _ := cipher.NewWriter(&stream, password, &cipher.Options{LogN: 10})
	io.WriteString(w, "restore me only if all of me is intact")
	w.Close()

	// One flipped bit in the body.
	b := stream.Bytes()
	b[110] ^= 1

	r, err := cipher.NewReader(bytes.NewReader(b), int64(len(b)), password, nil)
	if err != nil {
		log.Fatal(err) // the header, footer and tag table are intact
	}
	if err := r.Verify(context.Background()); errors.Is(err, cipher.ErrCorrupt) {
		fmt.Println("corrupt, nothing restored")
	}

	_, err = cipher.NewReader(bytes.NewReader(b), int64(len(b)), []byte("guess"), nil)
	fmt.Println(errors.Is(err, cipher.ErrWrongPassword))
	// Output:
	// corrupt, nothing restored
	// true
}
