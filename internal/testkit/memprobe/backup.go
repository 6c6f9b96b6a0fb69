package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/chunk"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// backupResult is what memprobe backup prints.
type backupResult struct {
	Mode      string  `json:"mode"`
	Bytes     int64   `json:"bytes"`     // of the output file
	Seconds   float64 `json:"seconds"`   // wall time of the backup and its retrieval
	Documents int64   `json:"documents"` // backed up
	// HeapSysMiB is the heap's memory at the end, in use and free but
	// not yet returned to the system.
	HeapSysMiB float64 `json:"heap_sys_mib"`
	// PeakRSSKiB is the process's peak resident memory, in KiB.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	// PeakChunks is the most pipeline chunks (chunk.Size each, outside
	// the heap) in use at once.
	PeakChunks int64 `json:"peak_chunks"`
}

// backupCmd runs memprobe backup with its flags, args. With -mode keepslot (the default) it does what an
// embedder does with the default settings: backup.New, Start, Wait, then
// Retrieve to a file. With -mode mongodump it writes what
// `mongodump --archive --gzip` writes, the same way: every collection
// counted (an estimated count, as mongodump does for its progress) and read
// with the driver's default batches, four at a time, into mongodump's
// archive format, through one serial standard library gzip writer at its
// default level (6). It is the baseline where mongodump itself cannot be
// had.
//
// It prints one line of JSON, a backupResult: the output's size, the wall
// time, the documents, the most pipeline chunks in use at once, its peak
// resident memory and the runtime's view of its heap.
func backupCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("memprobe backup", flag.ContinueOnError)
	var (
		uri      = fs.String("uri", "", "the server's connection string")
		include  = fs.String("include", "", "the namespaces to back up, a pattern (db.*); default all")
		dir      = fs.String("dir", "", "a directory for the slot, its state, spill files and the output")
		mode     = fs.String("mode", "keepslot", "keepslot, or mongodump for the baseline")
		kdfLogN  = fs.Int("kdf-logn", 0, "scrypt's log2 N; 0 for the default")
		level    = fs.Int("gzip-level", 0, "the gzip level of keepslot's compression; 0 for the default")
		memLimit = fs.Int64("memory-limit", 0, "a soft memory limit (debug.SetMemoryLimit) in bytes; 0 for none")
		spill    = fs.Int64("spill-threshold", 0, "slot.Config.Spill.Threshold; 0 for the default")
	)
	if err := fs.Parse(args); err != nil {
		return usage("%v", err)
	}
	if *uri == "" || *dir == "" || fs.NArg() > 0 {
		return usage("-uri and -dir are required, and nothing after the flags")
	}
	if *memLimit > 0 {
		debug.SetMemoryLimit(*memLimit)
	}
	var filter namespace.Filter
	if *include != "" {
		filter.Include = []string{*include}
	}
	t0 := time.Now()
	var res backupResult
	var err error
	switch *mode {
	case "keepslot":
		res, err = keepslot(ctx, *uri, filter, *dir, *kdfLogN, *level, *spill)
	case "mongodump":
		res, err = mongodump(ctx, *uri, filter, *dir)
	default:
		return usage("unknown -mode %q: keepslot or mongodump", *mode)
	}
	if err != nil {
		return err
	}
	res.Mode = *mode
	res.Seconds = time.Since(t0).Seconds()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(sample)
	res.HeapSysMiB = float64(sample[0].Value.Uint64()+sample[1].Value.Uint64()+sample[2].Value.Uint64()) / (1 << 20)
	res.PeakChunks = chunk.Peak()
	if res.PeakRSSKiB, err = peakRSS(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// keepslot backs up with the default settings and retrieves the backup to
// a file.
func keepslot(ctx context.Context, uri string, filter namespace.Filter, dir string, logN, level int, spill int64) (backupResult, error) {
	disk, err := store.Dir(filepath.Join(dir, "slot"))
	if err != nil {
		return backupResult{}, err
	}
	cfg := slot.Config{Store: disk, StateDir: filepath.Join(dir, "state"), Spill: archive.Spill{Dir: dir, Threshold: spill}, Logger: slog.New(slog.DiscardHandler)}
	if logN > 0 {
		cfg.KDF = &cipher.Options{LogN: uint8(logN)}
	}
	if level != 0 {
		cfg.Compression = archive.NewGzip(level)
	}
	b, err := backup.New(&backup.Source{Conn: conn.Config{URI: uri}, Filter: filter}, cfg)
	if err != nil {
		return backupResult{}, err
	}
	defer b.Close()
	if err := b.Role().Set(); err != nil {
		return backupResult{}, err
	}
	if err := b.Start(ctx, []byte(password)); err != nil {
		return backupResult{}, err
	}
	st, err := b.Wait(ctx)
	if err != nil {
		return backupResult{}, err
	}
	if st.State != slot.StateReady {
		return backupResult{}, fmt.Errorf("the backup ended %s: %s", st.State, st.Error)
	}
	out, err := os.Create(filepath.Join(dir, "backup.tar.gz.enc"))
	if err != nil {
		return backupResult{}, err
	}
	defer out.Close()
	info, err := b.Retrieve(ctx, out)
	if err != nil {
		return backupResult{}, err
	}
	if err := out.Close(); err != nil {
		return backupResult{}, err
	}
	if err := b.Delete(ctx); err != nil {
		return backupResult{}, err
	}
	docs, err := strconv.ParseInt(info.Meta["documents"], 10, 64)
	if err != nil {
		return backupResult{}, fmt.Errorf("the backup's metadata has no count of documents: %w", err)
	}
	return backupResult{Bytes: info.Size, Documents: docs}, nil
}

// mongodump writes the collections as mongodump --archive --gzip does.
func mongodump(ctx context.Context, uri string, filter namespace.Filter, dir string) (backupResult, error) {
	src := &backup.Source{Conn: conn.Config{URI: uri}, Filter: filter, Oplog: backup.ToggleOff, UsersAndRoles: backup.ToggleOff}
	defer src.Close()
	plan, err := src.Plan(ctx) // lists the collections, as mongodump does first
	if err != nil {
		return backupResult{}, err
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return backupResult{}, err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	out, err := os.Create(filepath.Join(dir, "dump.archive.gz"))
	if err != nil {
		return backupResult{}, err
	}
	defer out.Close()
	m, err := archive.Dump(ctx, out, plan.Collections, rawSource{client}, &archive.DumpOptions{
		Format: archive.ArchiveFormat{}, Compression: stdlibGzip{}, Parallel: 4,
	})
	if err != nil {
		return backupResult{}, err
	}
	if err := out.Close(); err != nil {
		return backupResult{}, err
	}
	fi, err := os.Stat(out.Name())
	if err != nil {
		return backupResult{}, err
	}
	var docs int64
	for _, ns := range m.Namespaces {
		docs += ns.Documents
	}
	return backupResult{Bytes: fi.Size(), Documents: docs}, nil
}

// rawSource reads a collection as mongodump does: an estimated count first,
// for its progress bar (mongo-tools' getCount, made for every collection
// dumped without a query; FerretDB answers it with a full scan), then a
// plain find with the driver's default batches.
type rawSource struct{ client *mongo.Client }

func (s rawSource) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	coll := s.client.Database(c.DB).Collection(c.Name)
	if _, err := coll.EstimatedDocumentCount(ctx); err != nil {
		return err
	}
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		if err := emit(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

// stdlibGzip is the standard library's serial gzip at its default level,
// which mongodump --gzip writes with.
type stdlibGzip struct{}

func (stdlibGzip) Name() string           { return "gzip" }
func (stdlibGzip) Extension() string      { return ".gz" }
func (stdlibGzip) Match(head []byte) bool { return len(head) > 1 && head[0] == 0x1f && head[1] == 0x8b }
func (stdlibGzip) NewWriter(w io.Writer) (io.WriteCloser, error) {
	return gzip.NewWriterLevel(w, gzip.DefaultCompression)
}
func (stdlibGzip) NewReader(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }
