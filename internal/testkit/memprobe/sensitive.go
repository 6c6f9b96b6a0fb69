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
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/sensitive"
)

// sensitiveCmd runs memprobe sensitive: craft, craft-big, restore or stall,
// with their arguments, args (see the command's documentation).
func sensitiveCmd(ctx context.Context, args []string) error {
	switch {
	case len(args) == 3 && args[0] == "craft":
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return usage("ENTRIES: %v", err)
		}
		return craft(ctx, args[1], manyEntries(n))
	case len(args) == 2 && args[0] == "craft-big":
		return craft(ctx, args[1], bigSecrets())
	case len(args) == 3 && args[0] == "restore":
		return restore(ctx, args[1], args[2])
	case len(args) == 3 && args[0] == "stall":
		f, size, err := open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = sensitive.Restore(ctx, &stallingReader{r: f, dir: args[2]}, size, []byte(password), args[2], nil)
		return fmt.Errorf("the restore ended before it was killed: %v", err)
	}
	return errUsage
}

// restore restores the backup in file into dir, then prints the process's
// peak resident size and how the restore ended. A restore that fails is
// printed, not returned: it is what the test looks at.
func restore(ctx context.Context, file, dir string) error {
	f, size, err := open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = sensitive.Restore(ctx, f, size, []byte(password), dir, nil)
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
