// Command restorerss crafts sensitive backups and restores them in a process
// of its own, for tests that measure a restore's peak memory or kill it
// midway. It is built without the race detector, so that its resident size
// is what a real restore needs.
//
// Usage:
//
//	restorerss craft FILE ENTRIES   write a backup whose manifest has ENTRIES entries
//	restorerss restore FILE DIR     restore FILE into DIR; print the process's peak
//	                                resident size, "peak_rss_kib N", then "ok" or
//	                                "error CODE MESSAGE"
//	restorerss craft-big FILE       write a backup of a small secret and a 12 MiB one
//	restorerss stall FILE DIR       restore FILE into DIR, print "staged" once a secret is
//	                                staged and then stall until killed
//
// Every backup it writes has the password "restorerss".
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/sensitive"
)

const password = "restorerss"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "restorerss:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	ctx := context.Background()
	switch {
	case len(args) == 3 && args[0] == "craft":
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		return craft(ctx, args[1], manyEntries(n))
	case len(args) == 2 && args[0] == "craft-big":
		return craft(ctx, args[1], bigSecrets())
	case len(args) == 3 && args[0] == "restore":
		f, size, err := open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = sensitive.Restore(ctx, f, size, []byte(password), args[2], nil)
		hwm, herr := peakRSS()
		if herr != nil {
			return herr
		}
		fmt.Printf("peak_rss_kib %d\n", hwm)
		if err != nil {
			fmt.Printf("error %s %s\n", errcode.Of(err), err)
			return nil
		}
		fmt.Println("ok")
		return nil
	case len(args) == 3 && args[0] == "stall":
		f, size, err := open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = sensitive.Restore(ctx, &stallingReader{r: f, dir: args[2]}, size, []byte(password), args[2], nil)
		return fmt.Errorf("the restore ended before it was killed: %v", err)
	}
	return errors.New("usage: restorerss craft FILE ENTRIES | craft-big FILE | restore FILE DIR | stall FILE DIR")
}

// peakRSS returns the process's peak resident size in KiB, VmHWM of
// /proc/self/status. (The rusage a parent reads when the process ends is
// no measure: Go starts a child with vfork, and Linux counts the parent's
// peak, at exec, in the child's ru_maxrss.)
func peakRSS() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

func open(name string) (*os.File, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// docs is an archive.Source of the two collections of a sensitive backup.
type docs struct {
	files, manifest func(emit func([]byte) error) error
}

func (d docs) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	if c.Name == sensitive.ManifestCollection {
		return d.manifest(emit)
	}
	return d.files(emit)
}

// manyEntries is a backup of one secret whose manifest lists n entries.
func manyEntries(n int) docs {
	sum := sha256.Sum256([]byte("x"))
	hexSum := hex.EncodeToString(sum[:])
	return docs{
		files: func(emit func([]byte) error) error {
			return emitDoc(emit, bson.D{{Key: "_id", Value: "k0000000"}, {Key: "mode", Value: int64(0o600)}, {Key: "mtime", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "data", Value: []byte("x")}})
		},
		manifest: func(emit func([]byte) error) error {
			// One entry marshalled, then its name rewritten in place: the
			// names are all of one length.
			raw, err := bson.Marshal(bson.D{{Key: "_id", Value: "k0000000"}, {Key: "size", Value: int64(1)}, {Key: "sha256", Value: hexSum}})
			if err != nil {
				return err
			}
			at := bytes.Index(raw, []byte("k0000000"))
			for i := range n {
				copy(raw[at+1:], fmt.Appendf(nil, "%07d", i))
				if err := emit(raw); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// bigSecrets is a backup of a small random secret and a large one, many
// cipher chunks long, so that a restore reads more of the file after it has
// staged the first (the cipher reads four chunks ahead).
func bigSecrets() docs {
	var files, manifest []bson.D
	for i, size := range []int{1 << 10, 12 << 20} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		name := fmt.Sprintf("big%d.key", i)
		sum := sha256.Sum256(data)
		files = append(files, bson.D{{Key: "_id", Value: name}, {Key: "mode", Value: int64(0o600)}, {Key: "mtime", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "data", Value: data}})
		manifest = append(manifest, bson.D{{Key: "_id", Value: name}, {Key: "size", Value: int64(size)}, {Key: "sha256", Value: hex.EncodeToString(sum[:])}})
	}
	all := func(ds []bson.D) func(func([]byte) error) error {
		return func(emit func([]byte) error) error {
			for _, d := range ds {
				if err := emitDoc(emit, d); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return docs{files: all(files), manifest: all(manifest)}
}

func emitDoc(emit func([]byte) error, d bson.D) error {
	raw, err := bson.Marshal(d)
	if err != nil {
		return err
	}
	return emit(raw)
}

func craft(ctx context.Context, name string, src docs) error {
	var buf bytes.Buffer
	enc, err := cipher.NewWriter(&buf, []byte(password), &cipher.Options{LogN: 10})
	if err != nil {
		return err
	}
	cols := []archive.Collection{{DB: sensitive.DB, Name: sensitive.ManifestCollection}, {DB: sensitive.DB, Name: sensitive.FilesCollection}}
	if _, err := archive.Dump(ctx, enc, cols, src, &archive.DumpOptions{Parallel: 1}); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return os.WriteFile(name, buf.Bytes(), 0o600)
}

// stallingReader reads r until a secret has been staged under dir, then
// prints "staged" and blocks every read on standard input, which the test
// keeps open, so that the restore stays in the middle of its staging until
// the process is killed. (Blocking on a channel instead would let the
// runtime end the process as deadlocked.)
type stallingReader struct {
	r    io.ReaderAt
	dir  string
	once sync.Once
}

func (s *stallingReader) ReadAt(p []byte, off int64) (int, error) {
	if staged, _ := filepath.Glob(filepath.Join(s.dir, ".keepslot-restore-*", "*")); len(staged) > 0 {
		s.once.Do(func() { fmt.Println("staged") })
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0, errors.New("standard input closed before the process was killed")
	}
	return s.r.ReadAt(p, off)
}
