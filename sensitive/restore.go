package sensitive

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Overwrite replaces files that exist in the target directory; without
	// it Restore refuses (ErrExists) before writing anything.
	Overwrite bool
	// DryRun authenticates and checks the backup and reports the files it
	// would write, writing nothing.
	DryRun bool
	// MaxKDFWork caps the scrypt work N·r·p the backup's header may ask for
	// before the password is tried; default [cipher.DefaultMaxWork], which
	// every backup this package writes stays within. Above it Restore fails
	// with cipher.ErrKDFTooExpensive without deriving a key; raise it only
	// for a file from a source you trust (see [cipher.Options].MaxWork).
	MaxKDFWork uint64
}

// RestoreReport lists what a restore wrote (or would write).
type RestoreReport struct {
	Files  []RestoredFile
	DryRun bool
	// Removed names the staging directories, relative to the target
	// directory, that restores killed midway had left there with the
	// secrets they had staged, and that this restore removed.
	Removed []string
}

// RestoredFile is one file of a RestoreReport.
type RestoredFile struct {
	Name   string // relative to the target directory, slash-separated
	Size   int64
	SHA256 string
}

// Restore writes the secrets of a retrieved sensitive backup of size bytes
// from src into dir. It authenticates the whole file first (a wrong password
// or a corrupt file writes nothing), then, before the first file is
// written, checks that:
//
//   - every name is one a backup may hold (ErrUnsafePath, ErrBadName), no
//     two collide (ErrDuplicate, ErrNameConflict), and there are at most
//     [MaxSecrets] secrets and manifest entries (ErrTooManyEntries, a
//     corrupt file);
//   - every file matches the backup's manifest (ErrManifestMismatch);
//   - dir holds no file where a directory must go and no directory where a
//     file must go (ErrInTheWay), and no file to replace unless
//     opts.Overwrite is set (ErrExists).
//
// Files are written 0600 and directories 0700, each file through a temp
// file in a staging directory of dir, renamed into place, with the
// modification time it was backed up with. Every file operation goes
// through an os.Root opened on dir, so no path, not even one whose
// directories are swapped for links while the restore runs, reaches
// outside dir (ErrUnsafePath).
//
// A restore holds a lock on dir (flock, where the system and filesystem
// have it) while it runs: a second restore into dir meanwhile fails with
// ErrBusy. It removes the staging directories that restores killed midway
// left in dir, which hold secrets in plaintext, and names them in
// [RestoreReport].Removed. A dry run neither locks nor removes anything.
//
// MongoDB namespaces in the backup ([Config].Mongo's) are not restored
// here: restore them with restore.Run on the same file, its
// Options.Filter excluding DB+".*", the pseudo-namespaces of the secrets.
func Restore(ctx context.Context, src io.ReaderAt, size int64, password []byte, dir string, opts *RestoreOptions) (*RestoreReport, error) {
	var o RestoreOptions
	if opts != nil {
		o = *opts
	}
	ar, err := openBackup(ctx, src, size, password, o.MaxKDFWork)
	if err != nil {
		return nil, err
	}
	if c, ok := ar.(io.Closer); ok {
		defer c.Close() // a restore refused midway leaves the archive unread
	}
	rep := &RestoreReport{DryRun: o.DryRun}
	var st *stage
	if !o.DryRun {
		var release func()
		if st, release, err = prepare(dir, rep); err != nil {
			return nil, err
		}
		defer release()
	}
	files, manifest, err := readSecrets(ctx, ar, st)
	if err != nil {
		return nil, err
	}
	if err := checkManifest(files, manifest, rep); err != nil {
		return nil, err
	}
	if o.DryRun {
		return rep, nil
	}
	if err := checkTarget(st.root, files, o.Overwrite); err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := st.place(f); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// openBackup authenticates the whole of the encrypted backup in src and
// opens the archive inside it.
func openBackup(ctx context.Context, src io.ReaderAt, size int64, password []byte, maxWork uint64) (archive.Reader, error) {
	plain, err := cipher.NewReader(src, size, password, &cipher.Options{MaxWork: maxWork})
	if errors.Is(err, cipher.ErrKDFTooExpensive) {
		return nil, fmt.Errorf("sensitive: decrypt the backup: %w: for a restore the option is RestoreOptions.MaxKDFWork", err)
	}
	if err != nil {
		return nil, fmt.Errorf("sensitive: decrypt the backup: %w", err)
	}
	if err := plain.Verify(ctx); err != nil {
		return nil, fmt.Errorf("sensitive: decrypt the backup: %w", err)
	}
	ar, err := archive.Open(plain, nil)
	if err != nil {
		return nil, fmt.Errorf("sensitive: read the backup: %w", err)
	}
	return ar, nil
}

// prepare opens and locks the restore directory dir, removes the staging
// directories that killed restores left there (naming them in rep), and
// creates this restore's own, inside dir so that the renames into place
// stay on one filesystem. release removes the stage and unlocks dir.
func prepare(dir string, rep *RestoreReport) (st *stage, release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("sensitive: open the restore directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("sensitive: open the restore directory: %w", err)
	}
	d, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, nil, fmt.Errorf("sensitive: open the restore directory: %w", err)
	}
	unlock := func() {
		d.Close() // and so unlocks dir
		root.Close()
	}
	if err := lockDir(d); errors.Is(err, ErrBusy) {
		unlock()
		return nil, nil, fmt.Errorf("%w: %s", err, dir)
	} else if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("sensitive: lock the restore directory %s: %w", dir, err)
	}
	if rep.Removed, err = removeStale(root, d); err != nil {
		unlock()
		return nil, nil, err
	}
	if st, err = newStage(root); err != nil {
		unlock()
		return nil, nil, fmt.Errorf("sensitive: create the staging directory: %w", err)
	}
	return st, func() { st.remove(); unlock() }, nil
}

// checkManifest checks that files are exactly the secrets the backup's
// manifest lists, with their sizes and hashes, and records them in rep.
func checkManifest(files []staged, manifest map[string]manifestDoc, rep *RestoreReport) error {
	for _, f := range files {
		m, ok := manifest[f.Name]
		if !ok || m.SHA256 != f.SHA256 || m.Size != f.Size {
			return fmt.Errorf("%w: %s", ErrManifestMismatch, f.Name)
		}
		delete(manifest, f.Name)
		rep.Files = append(rep.Files, RestoredFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256})
	}
	for name := range manifest {
		return fmt.Errorf("%w: %s is in the manifest but not in the backup", ErrManifestMismatch, name)
	}
	return nil
}

// staged is a secret read from the backup, waiting in the staging
// directory.
type staged struct {
	Name    string
	Size    int64
	SHA256  string
	ModTime time.Time
	path    string // in the staging directory; "" in a dry run
}

// readSecrets reads the backup's secrets, staging their contents in st
// (none in a dry run, when st is nil), and its manifest. It refuses names
// that a backup may not hold and more than MaxSecrets secrets or manifest
// entries as it reads them, so that what it holds stays small.
func readSecrets(ctx context.Context, ar archive.Reader, st *stage) ([]staged, map[string]manifestDoc, error) {
	var files []staged
	manifest := map[string]manifestDoc{}
	names := newNameSet()
	for {
		c, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sensitive: read the backup: %w", err)
		}
		for {
			if err := ctx.Err(); err != nil {
				return nil, nil, fmt.Errorf("sensitive: read the backup: %w", err)
			}
			raw, err := ar.ReadDocument()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, fmt.Errorf("sensitive: read the backup: %w", err)
			}
			if c.DB != DB {
				continue // MongoDB namespaces: restore.Run's business
			}
			switch c.Name {
			case ManifestCollection:
				if len(manifest) >= MaxSecrets {
					return nil, nil, fmt.Errorf("%w: the manifest has more than %d entries", ErrTooManyEntries, MaxSecrets)
				}
				var m manifestDoc
				if err := bson.Unmarshal(raw, &m); err != nil {
					return nil, nil, fmt.Errorf("sensitive: decode a manifest entry: %w", err)
				}
				if len(m.Name) > MaxNameLen || len(m.SHA256) != sha256.Size*2 {
					return nil, nil, fmt.Errorf("%w: manifest entry %d is malformed", ErrManifestMismatch, len(manifest)+1)
				}
				if _, dup := manifest[m.Name]; dup {
					return nil, nil, fmt.Errorf("%w: %s is in the manifest twice", ErrManifestMismatch, quoteName(m.Name))
				}
				manifest[m.Name] = m
			case FilesCollection:
				var d fileDoc
				if err := bson.Unmarshal(raw, &d); err != nil {
					return nil, nil, fmt.Errorf("sensitive: decode a secret entry: %w", err)
				}
				if err := checkName(d.Name); err != nil {
					return nil, nil, err
				}
				if len(files) >= MaxSecrets {
					return nil, nil, fmt.Errorf("the file holds more than %d secrets: %w", MaxSecrets, ErrTooManyEntries)
				}
				if err := names.add(d.Name); err != nil {
					return nil, nil, err
				}
				f := staged{Name: d.Name, Size: int64(len(d.Data)), SHA256: sha256Hex(d.Data), ModTime: d.ModTime.Time()}
				if st != nil {
					if f.path, err = st.write(len(files), d.Data); err != nil {
						return nil, nil, fmt.Errorf("sensitive: stage %s: %w", quoteName(d.Name), err)
					}
				}
				files = append(files, f)
			}
		}
	}
	slices.SortFunc(files, func(a, b staged) int { return strings.Compare(a.Name, b.Name) })
	return files, manifest, nil
}

// checkTarget checks, before anything is written, that every file can be
// placed in the target: each directory on its way is missing or a directory
// (or a link to one inside the target), and the file itself is missing, or
// is not a directory and overwrite is set.
func checkTarget(root *os.Root, files []staged, overwrite bool) error {
	dirs := map[string]bool{} // checked: true if it exists, false if missing
	for _, f := range files {
		missing := false
		for i := range len(f.Name) {
			if f.Name[i] != '/' {
				continue
			}
			dir := f.Name[:i]
			exists, checked := dirs[dir]
			if !checked {
				fi, err := root.Stat(filepath.FromSlash(dir))
				switch {
				case errors.Is(err, fs.ErrNotExist):
					if _, lerr := root.Lstat(filepath.FromSlash(dir)); lerr == nil {
						return fmt.Errorf("%w: %s needs %s to be a directory, and it is a link to nothing", ErrInTheWay, f.Name, dir)
					}
				case err != nil:
					return confined(dir, err)
				case !fi.IsDir():
					return fmt.Errorf("%w: %s needs %s to be a directory, and it is a file", ErrInTheWay, f.Name, dir)
				default:
					exists = true
				}
				dirs[dir] = exists
			}
			if !exists {
				missing = true
				break
			}
		}
		if missing {
			continue
		}
		fi, err := root.Lstat(filepath.FromSlash(f.Name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return confined(f.Name, err)
		case fi.IsDir():
			return fmt.Errorf("%w: %s is a secret, and a directory in the restore directory", ErrInTheWay, f.Name)
		case !overwrite:
			return fmt.Errorf("%w: %s", ErrExists, f.Name)
		}
	}
	return nil
}

// removeStale removes the staging directories in the target, open as root
// and d, that killed restores left, and returns their names. The caller
// holds the target's lock, so no running restore owns them.
func removeStale(root *os.Root, d *os.File) ([]string, error) {
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("sensitive: read the restore directory: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !isStageName(e.Name()) {
			continue
		}
		if err := root.RemoveAll(e.Name()); err != nil {
			return removed, fmt.Errorf("sensitive: remove %s, the staging directory of a restore that was killed, which holds secrets in plaintext: %w", e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// isStageName reports whether name is one newStage gives.
func isStageName(name string) bool {
	h, ok := strings.CutPrefix(name, stagePrefix)
	if !ok || len(h) != stageRandLen*2 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// stageRandLen is the number of random bytes in a staging directory's name.
const stageRandLen = 8

// stage is a private directory inside the restore's target, where secrets
// wait until all of them have been read and checked. All its operations go
// through root, so none can leave the target directory.
type stage struct {
	root *os.Root
	dir  string // relative to root
}

func newStage(root *os.Root) (*stage, error) {
	b := make([]byte, stageRandLen)
	_, _ = rand.Read(b)
	st := &stage{root: root, dir: stagePrefix + hex.EncodeToString(b)}
	if err := root.Mkdir(st.dir, 0o700); err != nil {
		return nil, err
	}
	return st, nil
}

// remove deletes the stage and whatever is left in it.
func (st *stage) remove() { _ = st.root.RemoveAll(st.dir) }

// write writes data to a new 0600 file in the stage and syncs it.
func (st *stage) write(i int, data []byte) (string, error) {
	p := filepath.Join(st.dir, fmt.Sprintf("%06d", i))
	f, err := st.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return p, f.Close()
}

// place moves a staged file to its name, creating directories 0700 on the
// way. The root refuses any path that a link would lead out of it.
func (st *stage) place(f staged) error {
	target := filepath.FromSlash(f.Name)
	if err := st.root.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return confined(f.Name, err)
	}
	if err := st.root.Chtimes(f.path, f.ModTime, f.ModTime); err != nil {
		return fmt.Errorf("sensitive: restore %s: %w", f.Name, err)
	}
	if fi, err := st.root.Lstat(target); err == nil && fi.IsDir() {
		return fmt.Errorf("%w: %s is a directory", ErrInTheWay, f.Name)
	}
	return confined(f.Name, st.root.Rename(f.path, target))
}

// confined reports an os.Root's refusal to leave its directory as
// ErrUnsafePath, and any other failure to restore the secret name as such.
func confined(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "path escapes from parent"):
		return fmt.Errorf("%w: %s: %w", ErrUnsafePath, name, err)
	default:
		return fmt.Errorf("sensitive: restore %s: %w", name, err)
	}
}
