// Package embedded starts an in-process MongoDB-wire server: FerretDB v1 with
// its pure-Go SQLite backend. It needs no server to install and serves the
// real MongoDB driver over TCP on the loopback interface, which makes it a
// way to try keepslot, or to test a program that embeds it, without mongod.
// It is not a production database.
//
// The quickstart and the node agent use it when no MongoDB URI is given, and
// the devserver command runs it on its own; keepslot's tests start that
// command as a child process by default.
//
// FerretDB v1 differs from MongoDB: it stores no decimal128 values and no
// arrays directly inside arrays, answers count with a full scan, rejects "ns"
// in index specifications and reports itself as MongoDB 7.0.42.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Options configure Start. The zero value is usable once Dir is set.
type Options struct {
	// Dir holds the server's SQLite files. It is created (0700) if missing.
	Dir string

	// Addr is the TCP address to listen on. Default "127.0.0.1:0", a free
	// loopback port.
	Addr string

	// Logger receives the server's own logs. Default: discarded.
	Logger *slog.Logger
}

// Server is a running embedded server.
type Server struct {
	uri    string
	cancel context.CancelFunc
	done   chan error
}

// Start starts a server and returns once it accepts connections. The server
// runs until Close is called or ctx is cancelled.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("embedded: Options.Dir is empty; name a directory for the server's data")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: create data dir: %w", err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: start FerretDB: %w", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	s := &Server{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- f.Run(runCtx) }()

	// MongoDBURI blocks until the listener is up; Run returning first means
	// it never came up.
	uric := make(chan string, 1)
	go func() { uric <- f.MongoDBURI() }()
	select {
	case s.uri = <-uric:
		return s, nil
	case err := <-s.done:
		cancel()
		if err == nil {
			err = errors.New("server stopped before it listened")
		}
		return nil, fmt.Errorf("embedded: listen on %s: %w", addr, err)
	case <-time.After(30 * time.Second):
		cancel()
		return nil, fmt.Errorf("embedded: listener on %s not ready after 30s", addr)
	}
}

// URI is the connection string, such as "mongodb://127.0.0.1:40123/".
func (s *Server) URI() string { return s.uri }

// Close stops the server and waits until it has closed its connections and
// its database files.
func (s *Server) Close() error {
	s.cancel()
	return <-s.done
}
