// Package mongotest gives a test a real MongoDB-wire server and a connected
// driver client.
//
// By default the server is FerretDB embedded in the test process (see
// internal/embedded), with its data under t.TempDir(). When the MONGODB_URI
// environment variable is set, that server is used instead; every test then
// works in databases whose names carry a unique prefix (see Server.DB), and
// those databases are dropped when the test ends, so a shared server is left
// clean.
//
// A server that cannot be started or reached fails the test with the reason;
// it is never skipped.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/examples/embedded"
)

// EnvURI names the environment variable that points the tests at a real
// server.
const EnvURI = "MONGODB_URI"

// EnvLog, when set to any value, sends the embedded server's own logs to
// slog's default logger: the first thing to look at when it drops a
// connection.
const EnvLog = "KEEPSLOT_TEST_SERVER_LOG"

// Server is a server for one test.
type Server struct {
	// URI is the connection string.
	URI string
	// Client is connected to URI and disconnected when the test ends.
	Client *mongo.Client
	// Prefix starts the name of every database this test may touch. It is
	// unique per test, so tests can share a server.
	Prefix string
	// Embedded is true when the server is the in-process FerretDB. FerretDB
	// v1 stores neither decimal128 values (it drops the connection) nor arrays
	// directly inside arrays, answers
	// count with a full scan and rejects "ns" in index specifications.
	Embedded bool

	embedded *embedded.Server
	stopped  bool
}

// New starts (or connects to) a server for t and registers its cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s := &Server{Prefix: uniquePrefix()}
	if uri := os.Getenv(EnvURI); uri != "" {
		s.URI = uri
	} else {
		opts := embedded.Options{Dir: t.TempDir()}
		if os.Getenv(EnvLog) != "" {
			opts.Logger = slog.Default()
		}
		es, err := embedded.Start(context.Background(), opts)
		if err != nil {
			t.Fatalf("mongotest: start embedded FerretDB: %v", err)
		}
		s.URI, s.embedded, s.Embedded = es.URI(), es, true
		t.Cleanup(s.Stop)
	}

	client, err := Connect(ctx, s.URI)
	if err != nil {
		t.Fatalf("mongotest: %v", err)
	}
	s.Client = client
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if !s.stopped {
			s.dropOwn(ctx, t)
		}
		_ = client.Disconnect(ctx)
	})
	return s
}

// Connect connects to uri and pings the server, so that an unreachable server
// is reported here rather than on first use.
func Connect(ctx context.Context, uri string) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(ctx)
		return nil, err
	}
	return client, nil
}

// DB returns the name of this test's database called name: name with the
// test's prefix.
func (s *Server) DB(name string) string { return s.Prefix + name }

// Stop stops an embedded server before the test ends, to test what happens
// when the database goes away. It does nothing for a server given by URI.
func (s *Server) Stop() {
	if s.embedded != nil && !s.stopped {
		s.stopped = true
		_ = s.embedded.Close()
	}
}

// dropOwn drops every database whose name starts with the test's prefix.
func (s *Server) dropOwn(ctx context.Context, t testing.TB) {
	names, err := s.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Errorf("mongotest: list databases for cleanup: %v", err)
		return
	}
	for _, name := range names {
		if strings.HasPrefix(name, s.Prefix) {
			if err := s.Client.Database(name).Drop(ctx); err != nil {
				t.Errorf("mongotest: drop %s: %v", name, err)
			}
		}
	}
}

func uniquePrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + "_"
}
