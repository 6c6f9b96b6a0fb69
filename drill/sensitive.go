package drill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/sensitive"
)

// manifestEntry is a secret's entry in the sensitive backup's manifest
// (sensitive.ManifestCollection): its name, size and sha256.
type manifestEntry struct {
	Name   string `bson:"_id"`
	Size   int64  `bson:"size"`
	SHA256 string `bson:"sha256"`
}

// RunSensitive drills a retrieved sensitive backup of size bytes from src:
// it restores the secrets with sensitive.Restore into a new directory
// (0700) of opts.TempDir, reads every restored file back and compares its
// size and sha256 with the backup's manifest, then removes the directory,
// whatever happened. Only opts' TempDir, MaxKDFWork, CleanupTimeout,
// Progress and Logger apply. MongoDB namespaces a sensitive backup holds
// (its Config.Mongo) are not drilled; the report notes them.
func RunSensitive(ctx context.Context, src io.ReaderAt, size int64, password []byte, opts *Options) (_ *Report, err error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.defaults()
	rep := &Report{Backup: "sensitive", Started: time.Now(), FileBytes: size}
	defer func() {
		if err != nil {
			rep.Error = err.Error()
		}
	}()
	dir, err := os.MkdirTemp(o.TempDir, "keepslot-drill-")
	if err != nil {
		return rep, fmt.Errorf("drill: create a scratch directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			rep.Notes = append(rep.Notes, "clean-up failed, remove the drill's directory by hand: "+rerr.Error())
			if err == nil {
				err = fmt.Errorf("drill: clean up: %w", rerr)
			}
			return
		}
		rep.Dropped = append(rep.Dropped, dir)
	}()
	if err := os.Chmod(dir, 0o700); err != nil {
		return rep, fmt.Errorf("drill: create a scratch directory: %w", err)
	}

	start := time.Now()
	rrep, rerr := sensitive.Restore(ctx, src, size, password, dir, &sensitive.RestoreOptions{MaxKDFWork: o.MaxKDFWork})
	rep.RestoreTime = time.Since(start)
	if rrep != nil {
		for _, f := range rrep.Files {
			rep.Documents++
			rep.Bytes += f.Size
		}
	}
	rep.rates()
	var diffs []Difference
	if rerr == nil {
		start = time.Now()
		diffs, rerr = checkSecrets(ctx, src, size, password, dir, &o, rep)
		rep.CheckTime = time.Since(start)
	}
	switch {
	case rerr != nil && failedOnBackup(rerr) && ctx.Err() == nil:
		diffs = append(diffs, Difference{Kind: KindRestore, Detail: rerr.Error()})
		err = &Failure{Differences: diffs, Restore: rerr}
	case rerr != nil:
		err = fmt.Errorf("drill: %w", rerr)
	case len(diffs) > 0:
		err = &Failure{Differences: diffs}
	}
	rep.Differences = diffs
	rep.Passed = err == nil
	return rep, err
}

// checkSecrets reads the manifest of the backup and compares each secret
// restored into dir with it.
func checkSecrets(ctx context.Context, src io.ReaderAt, size int64, password []byte, dir string, o *Options, rep *Report) ([]Difference, error) {
	manifest, others, err := readManifest(ctx, src, size, password, o.MaxKDFWork)
	if err != nil {
		return nil, err
	}
	if len(others) > 0 {
		rep.Notes = append(rep.Notes, "MongoDB namespaces of the sensitive backup are not drilled: "+strings.Join(others, ", "))
	}
	if h := o.secretsHook; h != nil {
		if err := h(dir); err != nil {
			return nil, err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var diffs []Difference
	want := map[string]bool{}
	for i, m := range manifest {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want[m.Name] = true
		sr := SecretReport{Name: m.Name, ExpectedSize: m.Size, ExpectedSHA256: m.SHA256}
		n, sum, err := hashFile(root, m.Name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			diffs = append(diffs, Difference{Namespace: m.Name, Kind: KindSecret, Detail: "not restored"})
		case err != nil:
			return nil, err
		default:
			sr.FoundSize, sr.FoundSHA256 = n, sum
			if n != m.Size || sum != m.SHA256 {
				diffs = append(diffs, Difference{Namespace: m.Name, Kind: KindSecret,
					Detail: fmt.Sprintf("restored as %d bytes, sha256 %s; the manifest says %d, %s", n, sum, m.Size, m.SHA256)})
			}
		}
		rep.Secrets = append(rep.Secrets, sr)
		if o.Progress != nil {
			o.Progress(archive.Progress{Namespace: m.Name, NamespacesDone: i + 1, NamespacesTotal: len(manifest), Documents: int64(i + 1), Bytes: rep.Bytes})
		}
	}
	err = fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !want[p] {
			diffs = append(diffs, Difference{Namespace: p, Kind: KindSecret, Detail: "restored but not in the manifest"})
		}
		return nil
	})
	return diffs, err
}

// hashFile returns the size and sha256 of the file name of root.
func hashFile(root *os.Root, name string) (int64, string, error) {
	f, err := root.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// readManifest reads the manifest of a sensitive backup, sorted by name,
// and the other namespaces it holds, authenticating the whole file first.
func readManifest(ctx context.Context, src io.ReaderAt, size int64, password []byte, maxWork uint64) ([]manifestEntry, []string, error) {
	plain, err := cipher.NewReader(src, size, password, &cipher.Options{MaxWork: maxWork})
	if err != nil {
		return nil, nil, err
	}
	if err := plain.Verify(ctx); err != nil {
		return nil, nil, err
	}
	ar, err := archive.Open(plain, nil)
	if err != nil {
		return nil, nil, err
	}
	if c, ok := ar.(io.Closer); ok {
		defer c.Close()
	}
	var (
		entries []manifestEntry
		others  []string
	)
	for {
		c, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if c.DB != sensitive.DB {
			if !slices.Contains(others, c.Namespace()) {
				others = append(others, c.Namespace())
			}
			continue
		}
		if c.Name != sensitive.ManifestCollection {
			continue // the files: read, checked and skipped by Next
		}
		for {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			raw, err := ar.ReadDocument()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, err
			}
			if len(entries) >= sensitive.MaxSecrets {
				return nil, nil, fmt.Errorf("%w: the manifest has more than %d entries", sensitive.ErrTooMany, sensitive.MaxSecrets)
			}
			var m manifestEntry
			if err := bson.Unmarshal(raw, &m); err != nil {
				return nil, nil, fmt.Errorf("%w: manifest entry: %w", sensitive.ErrManifestMismatch, err)
			}
			entries = append(entries, m)
		}
	}
	slices.SortFunc(entries, func(a, b manifestEntry) int { return strings.Compare(a.Name, b.Name) })
	return entries, others, nil
}
