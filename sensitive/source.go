package sensitive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// Secret is one piece of secret material: a file's worth of bytes under a
// name, with the permission bits and modification time to restore it with.
type Secret struct {
	// Name is a slash-separated relative path, such as "keys/master.key";
	// it is where Restore writes the secret under its target directory.
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
			return fmt.Errorf("sensitive: %w", err)
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
				return fmt.Errorf("sensitive: %w", err)
			}
			if d.IsDir() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("sensitive: %w", err)
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
		return fmt.Errorf("sensitive: %s (%s): %w", p, fi.Mode().Type(), ErrNotRegular)
	}
	f, fi, err := openRegular(p)
	if err != nil {
		return fmt.Errorf("sensitive: %w", err)
	}
	defer f.Close()
	if fi.Size() > MaxSecretSize {
		return fmt.Errorf("sensitive: %s is %d bytes, the limit is %d: %w", p, fi.Size(), MaxSecretSize, ErrTooLarge)
	}
	// One byte more than the size tells a file that grows from one that
	// does not.
	data := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, data)
	switch {
	case n > int(fi.Size()):
		return fmt.Errorf("sensitive: %s grew while it was read: %w", p, errChanged)
	case err != nil && err != io.ErrUnexpectedEOF && err != io.EOF:
		return fmt.Errorf("sensitive: %w", err)
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

// checkName refuses a name that is empty, absolute, or climbs out of its
// directory.
func checkName(name string) error {
	if name == "" || !filepath.IsLocal(filepath.FromSlash(name)) || path.Clean(name) != name {
		return fmt.Errorf("sensitive: %q: %w", name, ErrUnsafePath)
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
