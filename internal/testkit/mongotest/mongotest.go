// Package mongotest gives a test a real MongoDB-wire server and a connected
// driver client.
//
// By default the server is FerretDB, run by the examples module's devserver
// command (examples/devserver) as a child process of the test, with its data
// under t.TempDir(): one server per New. The package does not import FerretDB,
// so keepslot's own module does not depend on it, and the server is not built
// with the race detector, so it runs at full speed under go test -race. The
// command is built once per test process from the repository this package
// sits in (go build -C ROOT/examples, fast from the Go build cache) into the
// user's cache directory. It exits when the test process does, however that
// ends, because its standard input is a pipe from it.
//
// When the MONGODB_URI environment variable is set, that server is used
// instead; every test then works in databases whose names carry a unique
// prefix (see Server.DB), and those databases are dropped when the test ends,
// so a shared server is left clean.
//
// A server that cannot be built, started or reached fails the test with the
// reason; it is never skipped.
//
// It is a test kit, imported by tests and by testnode only (and by nothing
// that ships).
package mongotest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// EnvURI names the environment variable that points the tests at a real
// server.
const EnvURI = "MONGODB_URI"

// EnvLog, when set to any value, sends the embedded server's own logs to the
// test process's standard error: the first thing to look at when it drops a
// connection. Without it, the last of the server's error output is given
// when it fails to start or exits during a test.
const EnvLog = "KEEPSLOT_TEST_SERVER_LOG"

// module is the path of the module whose examples hold the devserver.
const module = "github.com/keepslot/keepslot"

// startTimeout bounds the wait for a started server's URI and for the first
// ping. It is a guard against a hung server, not a synchronisation.
const startTimeout = time.Minute

// Server is a server for one test.
type Server struct {
	// URI is the connection string.
	URI string
	// Client is connected to URI and disconnected when the test ends.
	Client *mongo.Client
	// Prefix starts the name of every database this test may touch. It is
	// unique per test, so tests can share a server.
	Prefix string
	// Embedded is true when the server is FerretDB run for this test (not
	// one given by MONGODB_URI), which Stop can stop. FerretDB v1 stores
	// neither decimal128 values (it drops the connection) nor arrays
	// directly inside arrays, answers count with a full scan and rejects
	// "ns" in index specifications.
	Embedded bool

	child   *child
	stopped atomic.Bool
}

// New starts (or connects to) a server for t and registers its cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := start(t.TempDir())
	if err != nil {
		t.Fatalf("mongotest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.close(); err != nil {
			t.Errorf("mongotest: %v", err)
		}
	})
	return s
}

// Start starts (or connects to) a server outside a test, for a TestMain
// whose runnable examples need one. stop drops the databases the server's
// users made, stops it and removes its data.
func Start() (s *Server, stop func() error, err error) {
	dir, err := os.MkdirTemp("", "mongotest-")
	if err != nil {
		return nil, nil, err
	}
	if s, err = start(dir); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("mongotest: %w", err)
	}
	return s, func() error {
		err := s.close()
		return errors.Join(err, os.RemoveAll(dir))
	}, nil
}

// start starts a server with its data in dir, or connects to EnvURI's.
func start(dir string) (*Server, error) {
	s := &Server{Prefix: uniquePrefix(), URI: os.Getenv(EnvURI)}
	var bin string
	if s.URI == "" {
		// Built before the start timeout runs: on a cold build cache, with
		// other test processes building too, the build alone can take
		// minutes.
		var err error
		if bin, err = devserver(); err != nil {
			return nil, fmt.Errorf("build the embedded server (or set %s to use a running one): %w", EnvURI, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if bin != "" {
		c, err := startChild(ctx, bin, dir)
		if err != nil {
			return nil, fmt.Errorf("start the embedded server (or set %s to use a running one): %w", EnvURI, err)
		}
		s.URI, s.child, s.Embedded = c.uri, c, true
	}
	client, err := Connect(ctx, s.URI)
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Client = client
	return s, nil
}

// close drops the databases of s's prefix, disconnects its client and
// stops an embedded server. It reports an embedded server that exited
// before Stop was called.
func (s *Server) close() error {
	var errs []error
	if c := s.child; c != nil && !s.stopped.Load() && c.exited() {
		errs = append(errs, fmt.Errorf("the embedded server exited during the test: %v%s", c.err, c.output()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.stopped.Load() {
		// Nothing to drop, and no server to end the client's sessions on:
		// the driver would wait out its server selection timeout trying to.
		// A done context closes the connections at once.
		cancel()
	} else {
		errs = append(errs, s.dropOwn(ctx))
	}
	_ = s.Client.Disconnect(ctx)
	s.Stop()
	return errors.Join(errs...)
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
// when the database goes away: it kills the server's process and returns
// once it has exited. It does nothing for a server given by URI. It is safe
// to call from any goroutine, more than once.
func (s *Server) Stop() {
	if s.child != nil && s.stopped.CompareAndSwap(false, true) {
		s.child.kill()
	}
}

// dropOwn drops every database whose name starts with the test's prefix.
func (s *Server) dropOwn(ctx context.Context) error {
	names, err := s.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list databases for cleanup: %w", err)
	}
	var errs []error
	for _, name := range names {
		if strings.HasPrefix(name, s.Prefix) {
			if err := s.Client.Database(name).Drop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("drop %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func uniquePrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + "_"
}

// child is a running devserver.
type child struct {
	uri   string
	cmd   *exec.Cmd
	stdin io.Closer
	tail  *tail // its standard error, unless EnvLog sends that to ours
	done  chan struct{}
	err   error // how it exited, once done is closed
}

// startChild starts the devserver bin with its data in dir and returns once
// it has printed its URI.
func startChild(ctx context.Context, bin, dir string) (*child, error) {
	args := []string{"-data", dir, "-exit-on-eof"}
	c := &child{done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	if os.Getenv(EnvLog) != "" {
		c.cmd.Args = append(c.cmd.Args, "-log")
		c.cmd.Stderr = os.Stderr
	} else {
		c.tail = &tail{max: 16 << 10}
		c.cmd.Stderr = c.tail
	}
	// The pipe on stdin is never written: when this process ends, however
	// it ends, the server sees EOF and exits.
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	c.stdin = stdin
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); err == nil {
			lines <- strings.TrimSpace(line)
		}
		_, _ = io.Copy(io.Discard, r) // Wait needs the pipe read to its end
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	select {
	case c.uri = <-lines:
		if !strings.HasPrefix(c.uri, "mongodb://") {
			c.kill()
			return nil, fmt.Errorf("%s printed %q, not a mongodb:// URI%s", bin, c.uri, c.output())
		}
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it printed its URI: %v%s", bin, c.err, c.output())
	case <-ctx.Done():
		c.kill()
		return nil, fmt.Errorf("%s printed no URI: %w%s", bin, ctx.Err(), c.output())
	}
}

// kill kills the process and waits until it has exited.
func (c *child) kill() {
	_ = c.cmd.Process.Kill() // fails only if it has exited already
	<-c.done
	_ = c.stdin.Close()
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// output is the end of the child's standard error, for a message, or "" if
// there is none to show.
func (c *child) output() string {
	if c.tail == nil {
		return " (its standard error went to this process's)"
	}
	if s := c.tail.String(); s != "" {
		return "; the end of its standard error:\n" + s
	}
	return ""
}

// build is the devserver, built at most once per test process.
var build struct {
	once sync.Once
	path string
	err  error
}

// devserver returns the path of the devserver binary, built on first use.
func devserver() (string, error) {
	build.once.Do(func() { build.path, build.err = buildDevserver() })
	return build.path, build.err
}

func buildDevserver() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	examples := filepath.Join(root, "examples")
	if _, err := os.Stat(filepath.Join(examples, "devserver")); err != nil {
		return "", fmt.Errorf("the devserver command is not in this copy of %s (%w); a module outside the repository's clone has no examples", module, err)
	}
	dir, err := binDir(root)
	if err != nil {
		return "", err
	}
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	// Build under a name of this process's own, then rename: test processes
	// running at the same time each replace the binary whole. The name
	// starts as a hard link to the last binary, so that go build, finding it
	// up to date, does not link it again (when it is stale, go build removes
	// the name before it writes, and the old binary is left as it was).
	bin := filepath.Join(dir, "devserver"+exe)
	tmp := filepath.Join(dir, "devserver-"+strconv.Itoa(os.Getpid())+".tmp"+exe)
	_ = os.Remove(tmp)
	_ = os.Link(bin, tmp) // none yet, or no hard links here: a full build
	cmd := exec.Command("go", "build", "-C", examples, "-o", tmp, "./devserver")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	err = os.Rename(tmp, bin)
	_ = os.Remove(tmp) // still there if the rename was of a link to bin onto bin
	if err != nil {
		return "", fmt.Errorf("install the devserver: %w", err)
	}
	return bin, nil
}

// repoRoot walks up from the working directory (the test's package) to the
// directory whose go.mod is that of module.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == module {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s in %s or above it", module, wd)
		}
		dir = parent
	}
}

// modulePath returns the path on the module line of a go.mod file.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// binDir is where the devserver built from the repository at root lives:
// in the user's cache directory (or the temporary one), under a name of its
// own for each clone, so that clones do not replace each other's binary.
func binDir(root string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(base, "keepslot-mongotest", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create a directory for the devserver: %w", err)
	}
	return dir, nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
