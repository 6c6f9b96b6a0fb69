// Devserver runs the embedded MongoDB-wire server (FerretDB over SQLite, see
// package embedded) on its own, to try keepslot, the quickstart's -uri or
// keepslotd's -uri without installing mongod:
//
//	go run ./examples/devserver                 # data in a temporary directory
//	go run ./examples/devserver -data /tmp/db   # data kept in /tmp/db
//
// Once the server accepts connections, the first line of standard output is
// its connection string, such as "mongodb://127.0.0.1:40123/", and nothing
// else is written there, so a program that starts devserver can read the URI
// from it. It runs until SIGINT or SIGTERM, then closes the server, removes
// a temporary data directory it made and exits with status 0.
//
// Flags:
//
//	-data DIR      the server's data directory, created 0700 (default: a new
//	               temporary directory, removed at exit)
//	-listen ADDR   the address to listen on (default 127.0.0.1:0, a free
//	               loopback port)
//	-log           write the server's own logs to standard error
//	-exit-on-eof   also exit when standard input reaches end of file: a parent
//	               that holds the other end of a pipe on it ends the server by
//	               closing it or by dying, so the server never outlives it
//
// -exit-on-eof is off by default because a shell gives a background job
// (devserver &) /dev/null or a terminal it may not read as standard input.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/keepslot/keepslot/examples/embedded"
)

func main() {
	data := flag.String("data", "", "the server's data directory (default: a temporary directory, removed at exit)")
	listen := flag.String("listen", "127.0.0.1:0", "the address to listen on")
	logs := flag.Bool("log", false, "write the server's own logs to standard error")
	eof := flag.Bool("exit-on-eof", false, "also exit when standard input reaches end of file")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "devserver: unexpected arguments:", flag.Args())
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *eof {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin) // returns at EOF or on a read error
			cancel()
		}()
	}
	if err := run(ctx, *data, *listen, *logs); err != nil {
		fmt.Fprintln(os.Stderr, "devserver:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, data, listen string, logs bool) (err error) {
	if data == "" {
		data, err = os.MkdirTemp("", "keepslot-devserver-")
		if err != nil {
			return fmt.Errorf("create a temporary data directory: %w", err)
		}
		defer func() { err = errors.Join(err, os.RemoveAll(data)) }()
	}
	opts := embedded.Options{Dir: data, Addr: listen}
	if logs {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := embedded.Start(context.WithoutCancel(ctx), opts)
	if err != nil {
		return err
	}
	if _, err := fmt.Println(srv.URI()); err != nil {
		_ = srv.Close()
		return fmt.Errorf("print the URI: %w", err)
	}
	<-ctx.Done()
	if err := srv.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("close the server: %w", err)
	}
	return nil
}
