// Package atomicfile writes small files so that a crash or power cut
// leaves either the old file or the new one, whole.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces the file name with data (mode 0600): it writes a
// temporary file beside name, syncs it, renames it into place and syncs
// the directory. A reader sees the old file or the new one, never a part.
func Write(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := writeSync(f, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(name))
}

// Create writes data to a new file at path (mode 0600; it must not exist)
// and syncs it.
func Create(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return writeSync(f, data)
}

// writeSync writes data to f, syncs and closes it.
func writeSync(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SyncDir syncs the directory dir, so that the entries created, renamed or
// removed in it survive a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync of the directory %s: %w", dir, err)
	}
	return nil
}
