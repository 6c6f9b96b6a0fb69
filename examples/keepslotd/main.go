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
// A command line it cannot run with (-kdf-log-n outside 1..18, say) is
// refused at once, with exit code 2, naming the flag and what it takes.
// Error texts follow errcode's style as a command's: a text keepslotd makes
// carries no prefix, one from keepslot's packages begins with that
// package's name, and keepslotd names itself once, in what it prints
// ("keepslotd: listening on URL", "keepslotd: -kdf-log-n 19 is outside
// 1..18"); an error answer's message is the text alone.
//
// GET /metrics, behind the token too, serves Prometheus metrics (metrics.go).
// The endpoints are listed on newServer in server.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/examples/embedded"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
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

	kdf := o.kdf()
	pitrKey, err := o.pitr.key(o.export.bucket != "", kdf)
	if err != nil {
		return err
	}
	uri, closeDB, err := openDatabase(ctx, o)
	if err != nil {
		return err
	}
	defer closeDB()
	a, err := newAgent(ctx, o, uri, kdf, pitrKey, log)
	if err != nil {
		return err
	}
	defer a.close()
	return a.serve(ctx, o, token)
}

// openDatabase returns the URI of the node to back up: -uri, or that of an
// embedded server started in DATA/db (with an oplog under -pitr), which
// closeDB stops.
func openDatabase(ctx context.Context, o options) (uri string, closeDB func(), err error) {
	if o.uri != "" {
		return o.uri, func() {}, nil
	}
	db, err := embedded.Start(context.WithoutCancel(ctx), embedded.Options{Dir: filepath.Join(o.data, "db")})
	if err != nil {
		return "", nil, err
	}
	uri = db.URI()
	fmt.Printf("keepslotd: embedded MongoDB at %s\n", uri)
	if o.pitr.on {
		if err := ensureOplog(ctx, uri); err != nil {
			db.Close()
			return "", nil, fmt.Errorf("create the embedded server's oplog: %w", err)
		}
	}
	return uri, func() { db.Close() }, nil
}

// agent is what the agent serves: its two backups, the export and the
// oplog's slicer that -export-bucket and -pitr configure, and the schedule.
type agent struct {
	log      *slog.Logger
	main     *slot.Slot
	sens     *sensitive.Backupper
	export   *slot.ExportConfig // nil without -export-bucket
	slicer   *pitr.Slicer       // nil without -pitr
	schedule *scheduling
}

// newAgent sets up the agent's parts for the node at uri, with their state
// in DATA; a.close releases them.
func newAgent(ctx context.Context, o options, uri string, kdf *cipher.Options, pitrKey *cipher.Key, log *slog.Logger) (a *agent, err error) {
	a = &agent{log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	mainStore, err := storeIn(o.data, "slot")
	if err != nil {
		return nil, err
	}
	if mainStore, err = testHold(mainStore); err != nil {
		return nil, err
	}
	sensStore, err := storeIn(o.data, "sensitive-slot")
	if err != nil {
		return nil, err
	}
	stateDir := filepath.Join(o.data, "state")

	if a.export, err = o.export.export(ctx, log); err != nil {
		return nil, err
	}
	if a.slicer, err = o.pitr.slicer(uri, a.export, pitrKey, o.opTimeout, log); err != nil {
		return nil, err
	}
	a.main, err = backup.New(o.source(uri),
		slot.Config{Store: mainStore, StateDir: stateDir, KDF: kdf, Logger: log, Export: o.schedule.slotExport(a.export)})
	if err != nil {
		return nil, err
	}
	a.sens, err = sensitive.New(sensitive.Config{
		Sources:  []sensitive.Source{sensitive.Files(secretPaths(o)...)},
		Store:    sensStore,
		StateDir: stateDir,
		KDF:      kdf,
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	drills, err := newDriller(o.drillURI, uri, filepath.Join(o.data, "drill"), log)
	if err != nil {
		return nil, err
	}
	a.schedule, err = startScheduling(ctx, schedulingConfig{Flags: o.schedule, NotifyURL: o.notifyURL, Node: o.export.node,
		Slot: a.main, Exporting: a.export != nil, Export: a.export, Driller: drills, StateDir: stateDir, Logger: log})
	return a, err
}

// close releases the agent's parts: the slicer's connection, then the
// schedule (which stops before the backups close), then the backups.
func (a *agent) close() {
	if a.slicer != nil {
		a.slicer.Close()
	}
	if a.schedule != nil {
		a.schedule.stop()
	}
	if a.sens != nil {
		a.sens.Close()
	}
	if a.main != nil {
		a.main.Close()
	}
}

// serve listens on -listen and serves the API, and slices the oplog under
// -pitr, until ctx is done or the server fails; then it shuts down.
func (a *agent) serve(ctx context.Context, o options, token string) error {
	ln, url, err := listen(o)
	if err != nil {
		return err
	}
	srv := newHTTPServer(serverConfig{
		Token:     token,
		Role:      a.main.Role(),
		Main:      a.main,
		Sensitive: a.sens,
		Logger:    a.log,
		Timeouts:  o.timeouts,
		Export:    a.export,
		Slicer:    a.slicer,
		Schedule:  a.schedule,
	})
	served := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			served <- srv.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	a.log.Info("listening", "url", url)
	fmt.Printf("keepslotd: listening on %s\n", url)
	sliced := a.slice(ctx)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	a.shutdown(srv, sliced)
	return nil
}

// listen opens the agent's listener, and writes the URL it serves at to
// DATA/addr.
func listen(o options) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, "", err
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	if err := os.WriteFile(filepath.Join(o.data, "addr"), []byte(url+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, "", err
	}
	return ln, url, nil
}

// slice runs the slicer, and the pruning of what retention lets go, until
// ctx is done; the channel it returns is closed once the slicer has
// stopped (at once without -pitr).
func (a *agent) slice(ctx context.Context) <-chan struct{} {
	sliced := make(chan struct{})
	if a.slicer == nil {
		close(sliced)
		return sliced
	}
	go func() {
		defer close(sliced)
		if err := a.slicer.Run(ctx); !errors.Is(err, context.Canceled) {
			a.log.Error("pitr: the oplog is no longer sliced", "error", err)
		}
	}()
	if a.export.Retention != nil {
		go runPruner(ctx, *a.export, time.Hour, a.export.Retention.DryRun, a.log)
	}
	return sliced
}

// shutdown cancels the running backups, then stops srv, and waits for the
// slicer to stop.
func (a *agent) shutdown(srv *http.Server, sliced <-chan struct{}) {
	a.log.Info("shutting down: cancelling running backups")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Cancelling first also ends long-polling status requests.
	if err := errors.Join(a.main.Cancel(shutdownCtx), a.sens.Cancel(shutdownCtx)); err != nil {
		a.log.Error("cancel backups", "error", err)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		a.log.Error("shut down the HTTP server", "error", err)
	}
	<-sliced // an open slice is dropped: the next start slices its entries again
	a.log.Info("stopped")
}
