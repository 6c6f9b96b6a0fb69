package sensitive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Secret is one piece of secret material: a file's worth of bytes under a
// name, with the permission bits and modification time to restore it with.
type Secret struct {
	// Name is a slash-separated relative path, such as "keys/master.key";
	// it is where Restore writes the secret under its target directory.
	// It must be clean (no empty, "." or ".." element), at most
	// [MaxNameLen] bytes, each element at most [MaxNamePartLen], without a
	// NUL byte, and not begin with ".keepslot-restore-"; no secret's name
	// may be a directory of another's ("a" and "a/b"). Start refuses others.
	Name    string
	Mode    fs.FileMode // permission bits; restored files are 0600 whatever they say
	ModTime time.Time
	Data    []byte
}

// Source yields secrets. Secrets calls fn for each, in a stable order, and
// stops at fn's first error.
type Source interface {
	Secrets(ctx context.Context, fn func(Secret) error) error
}

// Files is a Source of files and directory trees. A file is named by its
// base name; the files under a directory by the directory's base name and
// their path below it ("/etc/app/keys" gives "keys/master.key"). Only
// regular files are taken: a symbolic link, device, socket or pipe is
// refused with ErrNotRegular.
func Files(paths ...string) Source { return filesSource(paths) }

type filesSource []string

func (fsrc filesSource) Secrets(ctx context.Context, fn func(Secret) error) error {
	for _, root := range fsrc {
		root = filepath.Clean(root)
		fi, err := os.Lstat(root)
		if err != nil {
			return fmt.Errorf("sensitive: read the secrets: %w", err)
		}
		base := filepath.Base(root)
		if !fi.IsDir() {
			if err := readFile(ctx, root, base, fi, fn); err != nil {
				return err
			}
			continue
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("sensitive: read the secrets: %w", err)
			}
			if d.IsDir() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("sensitive: read the secrets: %w", err)
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			return readFile(ctx, p, path.Join(base, filepath.ToSlash(rel)), fi, fn)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// readFile reads the file at p, which the walk found regular (fi), as the
// secret name. The file is opened without following a link (one swapped in
// since fi was taken is refused), the opened file must be regular too, and
// at most its size, and MaxSecretSize, is read: a link to a device or pipe
// neither hangs the backup nor fills its memory.
func readFile(ctx context.Context, p, name string, fi fs.FileInfo, fn func(Secret) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s (%s)", ErrNotRegular, p, fi.Mode().Type())
	}
	f, fi, err := openRegular(p)
	if errors.Is(err, ErrNotRegular) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sensitive: read the secrets: %w", err)
	}
	defer f.Close()
	if fi.Size() > MaxSecretSize {
		return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, p, fi.Size(), MaxSecretSize)
	}
	// One byte more than the size tells a file that grows from one that
	// does not.
	data := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, data)
	switch {
	case n > int(fi.Size()):
		return fmt.Errorf("%w: %s grew while it was read", errChanged, p)
	case err != nil && err != io.ErrUnexpectedEOF && err != io.EOF:
		return fmt.Errorf("sensitive: read the secrets: %w", err)
	}
	return fn(Secret{Name: name, Mode: fi.Mode().Perm(), ModTime: fi.ModTime(), Data: data[:n]})
}

// Memory is a Source of secrets held by the embedding program, by name.
// They are restored with mode 0600 and the time of the backup.
func Memory(secrets map[string][]byte) Source { return memorySource(secrets) }

type memorySource map[string][]byte

func (m memorySource) Secrets(ctx context.Context, fn func(Secret) error) error {
	now := time.Now()
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if err := fn(Secret{Name: name, Mode: 0o600, ModTime: now, Data: m[name]}); err != nil {
			return err
		}
	}
	return nil
}

// stagePrefix begins the name of a restore's staging directory, which a
// later restore into the same directory removes; no secret's name may begin
// with it.
const stagePrefix = ".keepslot-restore-"

// checkName refuses a name that cannot be restored as a file's path under
// the target directory: ErrUnsafePath for one that is empty, absolute, not
// clean (an empty, "." or ".." element) or climbs out of its directory,
// ErrBadName for one that is too long, holds a NUL byte or begins with
// stagePrefix.
func checkName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrBadName, quoteName(name), len(name), MaxNameLen)
	}
	if name == "" || !filepath.IsLocal(filepath.FromSlash(name)) || path.Clean(name) != name {
		return fmt.Errorf("%w: %q", ErrUnsafePath, name)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%w: %q holds a NUL byte", ErrBadName, name)
	}
	if strings.HasPrefix(name, stagePrefix) {
		return fmt.Errorf("%w: %q: names beginning with %q are kept for restores' staging directories", ErrBadName, name, stagePrefix)
	}
	for part := range strings.SplitSeq(name, "/") {
		if len(part) > MaxNamePartLen {
			return fmt.Errorf("%w: %s has an element of %d bytes, the limit is %d", ErrBadName, quoteName(name), len(part), MaxNamePartLen)
		}
	}
	return nil
}

// quoteName quotes name for an error message, shortened if it is long.
func quoteName(name string) string {
	const keep = 64
	if len(name) <= keep {
		return strconv.Quote(name)
	}
	return strconv.Quote(name[:keep]) + "..."
}

// nameSet collects the names of a backup's secrets and refuses, as each is
// added, one that cannot join them in a directory tree: a duplicate
// (ErrDuplicate), one that is a directory of another or has another as a
// directory (ErrNameConflict), and one past MaxSecrets (ErrTooMany).
type nameSet struct {
	files map[string]bool
	dirs  map[string]string // directory -> the first secret under it
}

func newNameSet() *nameSet {
	return &nameSet{files: map[string]bool{}, dirs: map[string]string{}}
}

// add adds name, which checkName has accepted.
func (s *nameSet) add(name string) error {
	if s.files[name] {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	if under, ok := s.dirs[name]; ok {
		return fmt.Errorf("%w: %q is a secret and the directory of secret %q", ErrNameConflict, name, under)
	}
	if len(s.files) >= MaxSecrets {
		return fmt.Errorf("%w: more than %d secrets", ErrTooMany, MaxSecrets)
	}
	for i := range len(name) {
		if name[i] != '/' {
			continue
		}
		dir := name[:i]
		if s.files[dir] {
			return fmt.Errorf("%w: %q is a secret and the directory of secret %q", ErrNameConflict, dir, name)
		}
		if _, ok := s.dirs[dir]; !ok {
			s.dirs[dir] = name
		}
	}
	s.files[name] = true
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
