// Keepslotd is a node agent: an HTTP server that embeds keepslot's main
// and sensitive Backuppers and offers the appliance's verbs to
// keepslotctl (examples/keepslotctl) or any HTTP client.
//
//	go run ./examples/keepslotd                      # embedded MongoDB, data in ./keepslotd-data
//	go run ./examples/keepslotd -uri mongodb://127.0.0.1:27017 -data /var/lib/keepslotd
//
// Flags:
//
//	-data DIR        the agent's data directory (default ./keepslotd-data), created 0700, or
//	                 set to 0700 (with a warning) if it exists with other permissions:
//	                 token, state/ (role and backup states), slot/, sensitive-slot/,
//	                 secrets/ (what the sensitive backup holds by default), db/ (embedded server)
//	-uri URI         the MongoDB node to back up (default: an embedded FerretDB with its data in DIR/db)
//	-listen ADDR     the address to serve on (default 127.0.0.1:7443, loopback only)
//	-tls-cert FILE   serve HTTPS with this certificate…
//	-tls-key FILE    …and key
//	-secrets PATHS   comma-separated files and directories for the sensitive backup (default DIR/secrets)
//	-kdf-log-n N     scrypt cost 2^N of the key derivation, with r 8, p 4 (default 15, at most 18; lower only for tests)
//	-oplog MODE      capture the oplog with each backup: auto (default, where the server keeps one), on, off
//	-read-timeout D  the longest a client may take to send a request, headers and
//	                 body (default 30s); a request without a valid token is answered
//	                 401 at once, without reading its body, and its connection closed
//	-write-timeout D the longest a write to a client may stall (default 1m); a download
//	                 may take longer in all, as long as it moves
//	-idle-timeout D  the longest a kept-alive connection may wait for its next request
//	                 (default 2m)
//	-export-bucket B copy each backup, once ready, to S3 bucket B under PREFIX/NODE/NAME;
//	                 -export-endpoint, -export-prefix, -export-keep-last… (see export.go);
//	                 credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
//	-pitr            point-in-time recovery: copy the oplog to the bucket in encrypted slices,
//	                 under PREFIX/NODE/oplog/, for keepslotctl restore --to-time (see pitr.go);
//	                 the key from -pitr-password-file FILE or -pitr-key-file FILE (0600 both,
//	                 regular files of at most 4 KiB, not links; keepslotctl pitr-key makes the
//	                 key file); -pitr-interval D (default 1m),
//	                 -pitr-max-mib N, -pitr-read auto|tail|poll. With the embedded server, -pitr
//	                 creates its oplog. With a retention rule, the slices no copy needs are
//	                 pruned hourly.
//	-schedule CRON    scheduled backups: backup, export, drill, retention at each time the cron
//	                 expression names (see schedule.go); -schedule-password-file FILE (0600),
//	                 -schedule-replace-unexported (without -export-bucket); -drill-uri URI (default: an
//	                 embedded server in DIR/drill, for each drill); -notify-url URL (see notify.go)
//
// At first start the agent creates a random bearer token in DIR/token (0600;
// read back, like every secret file, only as a regular file of its owner's
// of at most 4 KiB, not through a link) and logs its path; every request must carry it ("Authorization: Bearer
// …"). Passwords travel only in request bodies and are never logged.
// Once it listens, the agent prints "keepslotd: listening on URL" on
// standard output and writes the URL to DIR/addr. On SIGTERM or SIGINT it
// cancels a running backup cleanly (the slot is left empty and the status
// says cancelled), stops serving and closes the embedded server.
//
// GET /metrics, behind the token too, serves Prometheus metrics (metrics.go).
// The endpoints are listed on newServer in server.go.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/examples/embedded"
	"github.com/keepslot/keepslot/examples/internal/secretfile"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// DefaultListen is the agent's default address; keepslotctl assumes its
// port when -t names a host only.
const DefaultListen = "127.0.0.1:7443"

type options struct {
	data, uri, listen string
	tlsCert, tlsKey   string
	secrets           string
	kdfLogN           uint
	oplog             backup.Toggle
	opTimeout         time.Duration
	export            exportFlags
	pitr              pitrFlags
	timeouts          timeouts
	schedule          scheduleFlags
	drillURI          string
	notifyURL         string
}

func main() {
	var o options
	flag.StringVar(&o.data, "data", "keepslotd-data", "the agent's data directory")
	flag.StringVar(&o.uri, "uri", "", "MongoDB URI (default: an embedded server with its data in DATA/db)")
	flag.StringVar(&o.listen, "listen", DefaultListen, "address to listen on")
	flag.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (with -tls-key: serve HTTPS)")
	flag.StringVar(&o.tlsKey, "tls-key", "", "TLS key file")
	flag.StringVar(&o.secrets, "secrets", "", "comma-separated files and directories for the sensitive backup (default DATA/secrets)")
	flag.UintVar(&o.kdfLogN, "kdf-log-n", cipher.DefaultLogN, "scrypt cost 2^N of the key derivation")
	flag.DurationVar(&o.opTimeout, "operation-timeout", conn.DefaultOperationTimeout, "the longest a backup waits for MongoDB to answer one request (a cursor's batch, a command) before it fails as unreachable")
	flag.TextVar(&o.oplog, "oplog", backup.ToggleAuto, "capture the oplog with each backup, for a point-in-time restore: auto (where the server keeps one), on (refuse a server without one) or off")
	flag.DurationVar(&o.timeouts.Read, "read-timeout", defaultTimeouts.Read, "the longest a client may take to send a request, headers and body")
	flag.DurationVar(&o.timeouts.Write, "write-timeout", defaultTimeouts.Write, "the longest a write to a client may stall (a download may take longer in all, as long as it moves)")
	flag.DurationVar(&o.timeouts.Idle, "idle-timeout", defaultTimeouts.Idle, "the longest a kept-alive connection may wait for its next request")
	o.export.register(flag.CommandLine)
	o.pitr.register(flag.CommandLine)
	o.schedule.register(flag.CommandLine)
	flag.StringVar(&o.drillURI, "drill-uri", "", "restore drills go to this scratch MongoDB server (default: an embedded server in DATA/drill, started for each drill); never the node backed up")
	flag.StringVar(&o.notifyURL, "notify-url", "", "post a JSON event to this URL on each failed scheduled run or drill, and on recovery")
	flag.Parse()
	if flag.NArg() > 0 || (o.tlsCert == "") != (o.tlsKey == "") || o.kdfLogN < 1 || o.kdfLogN > 22 ||
		o.timeouts.Read <= 0 || o.timeouts.Write <= 0 || o.timeouts.Idle <= 0 || o.opTimeout <= 0 {
		fmt.Fprintln(os.Stderr, "keepslotd: unexpected arguments, or -tls-cert without -tls-key, or -kdf-log-n outside 1..22, or a timeout that is not positive")
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("keepslotd stopped", "error", err)
		os.Exit(1)
	}
}

// source is the MongoDB source of the agent's main backup.
func (o options) source(uri string) *backup.Source {
	return &backup.Source{Conn: conn.Config{URI: uri, OperationTimeout: o.opTimeout}, Oplog: o.oplog}
}

// run serves until ctx is done, then shuts down in order: backups first,
// then the HTTP server, then the database.
func run(ctx context.Context, o options, log *slog.Logger) error {
	if err := prepareDataDir(o.data, log); err != nil {
		return err
	}
	tokenFile := filepath.Join(o.data, "token")
	token, err := loadOrCreateToken(tokenFile)
	if err != nil {
		return err
	}
	log.Info("bearer token", "file", tokenFile)

	kdf := &cipher.Options{LogN: uint8(o.kdfLogN)}
	pitrKey, err := o.pitr.key(o.export.bucket != "", kdf)
	if err != nil {
		return err
	}

	uri := o.uri
	if uri == "" {
		db, err := embedded.Start(context.WithoutCancel(ctx), embedded.Options{Dir: filepath.Join(o.data, "db")})
		if err != nil {
			return err
		}
		defer db.Close()
		uri = db.URI()
		fmt.Printf("keepslotd: embedded MongoDB at %s\n", uri)
		if o.pitr.on {
			if err := ensureOplog(ctx, uri); err != nil {
				return fmt.Errorf("create the embedded server's oplog: %w", err)
			}
		}
	}

	mainStore, err := storeIn(o.data, "slot")
	if err != nil {
		return err
	}
	if mainStore, err = testHold(mainStore); err != nil {
		return err
	}
	sensStore, err := storeIn(o.data, "sensitive-slot")
	if err != nil {
		return err
	}
	stateDir := filepath.Join(o.data, "state")

	export, err := o.export.export(ctx, log)
	if err != nil {
		return err
	}
	slicer, err := o.pitr.slicer(uri, export, pitrKey, o.opTimeout, log)
	if err != nil {
		return err
	}
	mainB, err := backup.New(o.source(uri),
		slot.Config{Store: mainStore, StateDir: stateDir, KDF: kdf, Logger: log, Export: o.schedule.slotExport(export)})
	if err != nil {
		return err
	}
	defer mainB.Close()
	sens, err := sensitive.New(sensitive.Config{
		Sources:  []sensitive.Source{sensitive.Files(secretPaths(o)...)},
		Store:    sensStore,
		StateDir: stateDir,
		KDF:      kdf,
		Logger:   log,
	})
	if err != nil {
		return err
	}
	defer sens.Close()

	drills, err := newDriller(o.drillURI, uri, filepath.Join(o.data, "drill"), log)
	if err != nil {
		return err
	}
	sched, err := startScheduling(ctx, schedulingConfig{Flags: o.schedule, NotifyURL: o.notifyURL, Node: o.export.node,
		Slot: mainB, Exporting: export != nil, Export: export, Driller: drills, StateDir: stateDir, Logger: log})
	if err != nil {
		return err
	}
	defer sched.stop() // before the backups close

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	if err := os.WriteFile(filepath.Join(o.data, "addr"), []byte(url+"\n"), 0o600); err != nil {
		return err
	}
	srv := newHTTPServer(serverConfig{
		Token:     token,
		Role:      mainB.Role(),
		Main:      mainB,
		Sensitive: sens,
		Logger:    log,
		Timeouts:  o.timeouts,
		Export:    export,
		Slicer:    slicer,
		Schedule:  sched,
	})
	served := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			served <- srv.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	log.Info("listening", "url", url)
	fmt.Printf("keepslotd: listening on %s\n", url)
	sliced := make(chan struct{})
	if slicer != nil {
		defer slicer.Close()
		go func() {
			defer close(sliced)
			if err := slicer.Run(ctx); !errors.Is(err, context.Canceled) {
				log.Error("pitr: the oplog is no longer sliced", "error", err)
			}
		}()
		if export.Retention != nil {
			go runPruner(ctx, *export, time.Hour, export.Retention.DryRun, log)
		}
	} else {
		close(sliced)
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: cancelling running backups")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Cancelling first also ends long-polling status requests.
	if err := errors.Join(mainB.Cancel(shutdownCtx), sens.Cancel(shutdownCtx)); err != nil {
		log.Error("cancel backups", "error", err)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shut down the HTTP server", "error", err)
	}
	<-sliced // an open slice is dropped: the next start slices its entries again
	log.Info("stopped")
	return nil
}

// maxHeaderTimeout bounds reading a request's headers.
const maxHeaderTimeout = 10 * time.Second

// newHTTPServer returns the agent's HTTP server for cfg, with its timeouts
// (see timeouts): every connection is closed in bounded time unless an
// authenticated client keeps asking, or keeps reading a long answer.
func newHTTPServer(cfg serverConfig) *http.Server {
	cfg.Timeouts = cfg.Timeouts.orDefaults()
	return &http.Server{
		Handler:           newServer(cfg),
		ReadHeaderTimeout: min(maxHeaderTimeout, cfg.Timeouts.Read),
		ReadTimeout:       cfg.Timeouts.Read,
		IdleTimeout:       cfg.Timeouts.Idle,
	}
}

// errDataDir: the data directory cannot be used.
var errDataDir = errors.New("unusable data directory")

// prepareDataDir creates the data directory dir, open to its owner only
// (0700): it holds the token and the backups. A directory that exists
// with other permissions is set to 0700, with a warning in the log.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the data directory %s: %w; name a directory keepslotd may create with -data (%w)", dir, err, errDataDir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("the data directory %s: %w (%w)", dir, err, errDataDir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the data directory %s is not a directory; name a directory with -data (%w)", dir, errDataDir)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("the data directory %s has mode %s, and it holds the token and the backups: %w; run chmod 700 on it as its owner (%w)",
				dir, perm, err, errDataDir)
		}
		log.Warn("the data directory was open to others, or not writable by its owner; set it to owner-only",
			"dir", dir, "from", perm, "to", os.FileMode(0o700))
	}
	return nil
}

func storeIn(data, name string) (store.Store, error) {
	return store.Dir(filepath.Join(data, name))
}

// secretPaths are the sensitive backup's sources: -secrets, or DATA/secrets
// (created empty if missing).
func secretPaths(o options) []string {
	if o.secrets != "" {
		return strings.Split(o.secrets, ",")
	}
	dir := filepath.Join(o.data, "secrets")
	_ = os.MkdirAll(dir, 0o700)
	return []string{dir}
}

// loadOrCreateToken reads the bearer token from file, a secret file (see
// secretfile.Read: regular, 0600, at most 4 KiB), or creates one (256
// random bits, hex) in a new 0600 file.
func loadOrCreateToken(file string) (string, error) {
	b, err := secretfile.Read(file)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("the token file %s is empty; delete it to create a new token", file)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the token: %w", err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create the token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write the token: %w", err)
	}
	return token, f.Close()
}
