// Package s3test starts a real S3 server for tests: versitygw, an S3
// gateway, with its posix back end in a temporary directory, on 127.0.0.1.
//
// The binary is found in $VERSITYGW, on $PATH as versitygw, or where
// .ci/install-versitygw puts it ($XDG_CACHE_HOME or ~/.cache, under
// keepslot/versitygw-v1.8.0/). Install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// When it is missing, Start skips the test, unless the environment variable
// CI is set: in CI a missing server fails the run.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/keepslot/keepslot/store/s3store"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// Binary returns the path of the versitygw binary, or "" if none is found.
func Binary() string {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	p := filepath.Join(cache, "keepslot", "versitygw-"+Version, "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// Server is a running versitygw.
type Server struct {
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	Dir       string // the posix back end's root: one directory per bucket

	bin string
	mu  sync.Mutex
	cmd *exec.Cmd
	out *strings.Builder
}

// Start starts a server for t and stops it when t ends. It skips t when the
// binary is missing and CI is not set, and fails it when CI is set.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "versitygw " + Version + " not found ($VERSITYGW, $PATH, ~/.cache/keepslot); install it with: go install github.com/versity/versitygw/cmd/versitygw@" + Version
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var key [8]byte
	rand.Read(key[:])
	s := &Server{
		Endpoint:  addr,
		AccessKey: "keepslot-test",
		SecretKey: "secret-" + hex.EncodeToString(key[:]),
		Dir:       t.TempDir(),
		bin:       bin,
	}
	t.Cleanup(s.Kill)
	s.start(t)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &strings.Builder{}
	cmd := exec.Command(s.bin, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", s.Endpoint, "--quiet", "posix", s.Dir)
	cmd.Stdout = &lockedWriter{w: out}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.out = cmd, out
	// Wait for the port to accept connections; versitygw signals nothing else.
	deadline := time.Now().Add(30 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		c, err := net.DialTimeout("tcp", s.Endpoint, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited at start: %s", cmd.Stdout.(*lockedWriter).String())
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("versitygw did not listen on %s within 30s: %s", s.Endpoint, cmd.Stdout.(*lockedWriter).String())
		}
	}
}

// Kill stops the server with SIGKILL, as a crash would. The data stays.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Process.Wait()
	s.cmd = nil
}

// Restart starts the server again after Kill, on the same address and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	s.start(t)
}

// Config returns the configuration of a store in bucket under prefix.
func (s *Server) Config(bucket, prefix string) s3store.Config {
	return s3store.Config{
		Endpoint:  s.Endpoint,
		Insecure:  true,
		Bucket:    bucket,
		Prefix:    prefix,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		PartSize:  s3store.MinPartSize,
	}
}

// Client returns a minio-go client of the server, for checks the stores do
// not offer (listing uploads, creating buckets).
func (s *Server) Client(t testing.TB) *minio.Core {
	t.Helper()
	c, err := minio.NewCore(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewBucket creates a bucket with a fresh name and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "keepslot-" + hex.EncodeToString(b[:])
	if err := s.Client(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// Uploads returns the keys of the multipart uploads under way in bucket.
func (s *Server) Uploads(t testing.TB, bucket string) []string {
	t.Helper()
	res, err := s.Client(t).ListMultipartUploads(context.Background(), bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatalf("listing uploads: %v", err)
	}
	var keys []string
	for _, u := range res.Uploads {
		keys = append(keys, u.Key)
	}
	return keys
}

// Keys returns the keys of the objects in bucket.
func (s *Server) Keys(t testing.TB, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range s.Client(t).Client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s: %v", bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// String describes the server, for messages.
func (s *Server) String() string { return fmt.Sprintf("versitygw at %s", s.Endpoint) }

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
