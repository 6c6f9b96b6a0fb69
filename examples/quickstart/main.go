// Quickstart runs keepslot's whole cycle once, on a database it sets up
// itself, and fails loudly if any step goes wrong:
//
//	go run ./examples/quickstart
//
// With no flags it starts an embedded MongoDB-wire server (FerretDB over
// SQLite) in a temporary directory and seeds it with a small sample dataset.
// Then it puts the node in the backup role, starts a backup and shows its
// progress, prints the status in the appliance's JSON shape, retrieves the
// encrypted file to backup-retrieve.tar.gz.enc and checks its md5 against
// the status, restores it into new namespaces and checks the document
// counts, proves it restores with a drill (counts, digests and indexes read
// back from scratch databases, dropped after), backs up a sample key file with the sensitive backup and restores
// it, deletes both backups and prints a summary with timings.
//
// Flags:
//
//	-uri URI   use this MongoDB server instead of the embedded one; the
//	           quickstart works only in databases named qs<random>_…, and
//	           drops them when it ends
//	-out DIR   where to write backup-retrieve.tar.gz.enc (default: the
//	           temporary work directory, removed at the end unless -keep)
//	-keep      keep the work directory and print its path
//
// The key derivation runs at its real cost (cipher's default), as a production
// backup would. The exit status is 0 only when every step succeeded.
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/examples/embedded"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// retrievedName is the appliance's name for a retrieved backup.
const retrievedName = "backup-retrieve.tar.gz.enc"

// password is the quickstart's backup password. A real program asks its
// operator for one and never stores it.
var password = []byte("correct horse battery staple")

func main() {
	uri := flag.String("uri", "", "MongoDB URI (default: an embedded server in a temporary directory)")
	out := flag.String("out", "", "directory for "+retrievedName+" (default: the work directory)")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "quickstart: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	q := &quickstart{uri: *uri, out: *out, keep: *keep, start: time.Now()}
	err := q.run(ctx)
	q.cleanup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nquickstart FAILED at %q: %v\n", q.step, err)
		os.Exit(1)
	}
	fmt.Printf("\nquickstart OK in %s\n", time.Since(q.start).Round(time.Millisecond))
}

// quickstart is one run; its fields are what the steps share.
type quickstart struct {
	uri, out string
	keep     bool
	start    time.Time

	work    string // temporary work directory
	prefix  string // starts the name of every database the run creates
	server  *embedded.Server
	client  *mongo.Client
	counts  map[string]int64 // namespace -> documents seeded
	retFile string
	main    *slot.Slot
	sens    *sensitive.Backupper

	step    string
	timings []timing
}

type timing struct {
	step string
	took time.Duration
}

// run runs the steps in order and stops at the first failure.
func (q *quickstart) run(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"set up the database", q.setUp},
		{"seed sample data", q.seed},
		{"back up", q.backup},
		{"restore into new namespaces", q.restore},
		{"prove the backup restores (drill)", q.drill},
		{"sensitive backup and restore", q.sensitiveCycle},
		{"delete both backups", q.deleteBoth},
	}
	for _, s := range steps {
		q.step = s.name
		fmt.Printf("\n== %s\n", s.name)
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			return err
		}
		q.timings = append(q.timings, timing{s.name, time.Since(t0)})
	}
	q.step = "summary"
	fmt.Printf("\n== summary\n")
	for _, t := range q.timings {
		fmt.Printf("  %-30s %8s\n", t.step, t.took.Round(time.Millisecond))
	}
	return nil
}

// setUp makes the work directory and starts or connects to the server.
func (q *quickstart) setUp(ctx context.Context) error {
	work, err := os.MkdirTemp("", "keepslot-quickstart-")
	if err != nil {
		return err
	}
	q.work = work
	fmt.Printf("work directory: %s\n", work)
	if q.out == "" {
		q.out = work
	}

	uri := q.uri
	if uri == "" {
		fmt.Println("starting the embedded MongoDB-wire server (FerretDB over SQLite)")
		q.server, err = embedded.Start(ctx, embedded.Options{Dir: filepath.Join(work, "db")})
		if err != nil {
			return err
		}
		uri = q.server.URI()
	}
	q.prefix = "qs" + randomHex(3) + "_"
	q.client, err = mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return err
	}
	if err := q.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("%s does not answer (check that the server runs and the URI): %w", redact(uri), err)
	}
	q.uri = uri
	fmt.Printf("server %s, databases %s*\n", redact(uri), q.prefix)
	return nil
}

// backup runs the main backup cycle: role, start, progress, status,
// retrieve with an md5 check. The backup itself stays in the slot until
// the end of restore.
func (q *quickstart) backup(ctx context.Context) error {
	dir, err := store.Dir(filepath.Join(q.work, "slot"))
	if err != nil {
		return err
	}
	b, err := backup.New(&backup.Source{
		Conn:   conn.Config{Client: q.client},
		Filter: namespace.Filter{Include: []string{q.prefix + "*"}},
	}, slot.Config{
		Store:    dir,
		StateDir: filepath.Join(q.work, "state"),
		Progress: progressPrinter("backup"),
		Logger:   quietLogger(),
	})
	if err != nil {
		return err
	}
	q.main = b

	if err := b.Role().Set(); err != nil {
		return err
	}
	fmt.Println("set-as-backup: this node is in the backup role")

	if err := b.Start(ctx, password); err != nil {
		return err
	}
	fmt.Println("Backup in progress.")
	st, err := b.Wait(ctx)
	if err != nil {
		return err
	}
	if st.State != slot.StateReady {
		return fmt.Errorf("the backup ended %s: %s", st.State, st.Error)
	}
	fmt.Printf("backup-status: %s\n", st.ApplianceJSON())
	fmt.Printf("  %s, %d bytes, sha256 %s\n", st.Name, st.Size, st.SHA256)

	// A second backup must be refused while this one is stored.
	if err := b.Start(ctx, password); !errors.Is(err, store.ErrSlotOccupied) {
		return fmt.Errorf("a second backup should be refused with ErrSlotOccupied, got %v", err)
	}
	fmt.Println("a second backup is refused while one is stored, as it should be")

	q.retFile = filepath.Join(q.out, retrievedName)
	f, err := os.OpenFile(q.retFile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	h := md5.New()
	info, err := b.Retrieve(ctx, io.MultiWriter(f, h))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != st.MD5 || info.MD5 != st.MD5 {
		return fmt.Errorf("md5 mismatch: the file's is %s, the status says %s", sum, st.MD5)
	}
	fmt.Printf("backup-retrieve: %s (%d bytes), md5 %s matches the status\n", q.retFile, info.Size, sum)

	return nil
}

// deleteBoth deletes the main and the sensitive backup and checks that both
// slots are empty again.
func (q *quickstart) deleteBoth(ctx context.Context) error {
	for _, s := range []struct {
		name string
		b    slot.Backupper
	}{{"backup", q.main}, {"sensitive backup", q.sens}} {
		if err := s.b.Delete(ctx); err != nil {
			return err
		}
		st, err := s.b.Status(ctx)
		if err != nil {
			return err
		}
		if st.State != slot.StateNone {
			return fmt.Errorf("after deleting the %s its status is %s, want none", s.name, st.State)
		}
		fmt.Printf("%s deleted; status: %s\n", s.name, st.ApplianceJSON())
	}
	return nil
}

// restore restores the retrieved file into <db>_restored and checks that
// every namespace has the documents that were seeded.
func (q *quickstart) restore(ctx context.Context) error {
	f, err := os.Open(q.retFile)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}

	if _, err := restore.Run(ctx, f, fi.Size(), []byte("wrong password"), &restore.Options{DryRun: true, Logger: quietLogger()}); !errors.Is(err, cipher.ErrWrongPassword) {
		return fmt.Errorf("a wrong password should fail with ErrWrongPassword, got %v", err)
	}
	fmt.Println("a wrong password is refused before anything is written, as it should be")

	rep, err := restore.Run(ctx, f, fi.Size(), password, &restore.Options{
		Conn:    conn.Config{Client: q.client},
		Renames: []namespace.Rename{{From: "*.*", To: "*_restored.*"}},
		Logger:  quietLogger(),
	})
	if err != nil {
		return err
	}
	for _, ns := range rep.Namespaces {
		want, ok := q.counts[ns.From]
		if !ok {
			return fmt.Errorf("the backup holds %s, which was not seeded", ns.From)
		}
		db, coll, _ := strings.Cut(ns.To, ".")
		got, err := q.client.Database(db).Collection(coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s holds %d documents after the restore, want %d", ns.To, got, want)
		}
		fmt.Printf("  %-32s -> %-40s %6d documents, %d indexes\n", ns.From, ns.To, got, ns.Indexes)
	}
	if len(rep.Namespaces) != len(q.counts) {
		return fmt.Errorf("restored %d namespaces, seeded %d", len(rep.Namespaces), len(q.counts))
	}
	fmt.Printf("restored %d documents in %d namespaces; every count matches\n", rep.Documents, len(rep.Namespaces))
	return nil
}

// drill proves the retrieved backup restores, as keepslotd -schedule does
// after every backup: package drill restores it into scratch databases
// under a prefix of their own, compares each namespace's count and digest
// with what the backup holds, checks its indexes, and drops them.
func (q *quickstart) drill(ctx context.Context) error {
	f, err := os.Open(q.retFile)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	rep, err := drill.Run(ctx, f, fi.Size(), password, &drill.Options{
		Conn:   conn.Config{Client: q.client},
		Prefix: q.prefix + "drill_",
		Logger: quietLogger(),
	})
	if err != nil {
		return err
	}
	for _, ns := range rep.Namespaces {
		fmt.Printf("  %-32s %6d documents, digest %s…, %d indexes: as in the backup\n",
			ns.Namespace, ns.FoundDocuments, ns.FoundDigest[:12], len(ns.FoundIndexes))
	}
	fmt.Printf("drill passed: restored and read back in %s; scratch databases dropped\n", (rep.RestoreTime + rep.CheckTime).Round(time.Millisecond))
	return nil
}

// cleanup drops what the run created and stops the server.
func (q *quickstart) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if q.main != nil {
		_ = q.main.Close()
	}
	if q.sens != nil {
		_ = q.sens.Close()
	}
	if q.client != nil && q.counts != nil {
		if names, err := q.client.ListDatabaseNames(ctx, bson.D{}); err == nil {
			for _, n := range names {
				if strings.HasPrefix(n, q.prefix) {
					_ = q.client.Database(n).Drop(ctx)
				}
			}
		}
	}
	if q.client != nil {
		_ = q.client.Disconnect(ctx)
	}
	if q.server != nil {
		_ = q.server.Close()
	}
	if q.work == "" {
		return
	}
	if q.keep {
		fmt.Printf("kept the work directory %s\n", q.work)
		return
	}
	_ = os.RemoveAll(q.work)
}

// progressPrinter prints a line each time a backup or restore moves on to
// another namespace.
func progressPrinter(what string) func(archive.Progress) {
	last := ""
	return func(p archive.Progress) {
		if p.Namespace == last {
			return
		}
		last = p.Namespace
		fmt.Printf("  %s: %d/%d namespaces, %d documents, %d bytes (%s)\n",
			what, p.NamespacesDone, p.NamespacesTotal, p.Documents, p.Bytes, p.Namespace)
	}
}

// quietLogger keeps the library's info logs out of the quickstart's output.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// redact hides a URI's password.
func redact(uri string) string {
	if at := strings.LastIndex(uri, "@"); at >= 0 {
		if scheme := strings.Index(uri, "://"); scheme >= 0 && scheme < at {
			return uri[:scheme+3] + "…@" + uri[at+1:]
		}
	}
	return uri
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// equalFiles reports whether two files hold the same bytes.
func equalFiles(a, b string) (bool, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}
