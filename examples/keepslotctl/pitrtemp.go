package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// restore --to-time downloads the base backup and the slices, encrypted,
// into a temporary directory, removed when it ends. One that a killed
// keepslotctl left behind is removed by the next restore --to-time: the
// directory holds a file "lock" that its restore holds an exclusive flock
// on while it runs, which the system releases when the process dies, however
// it dies. A directory whose lock no process holds is stale. The lock file
// is created, locked, and only then given its name, so that a directory
// being set up (with no lock yet, and nothing downloaded) is never taken
// for a stale one. Where flock is not available, nothing is removed.

// pitrTempPrefix begins the names of restore --to-time's temporary
// directories.
const pitrTempPrefix = "keepslotctl-pitr-"

// lockName is the lock file in such a directory.
const lockName = "lock"

// pitrTempDir creates a temporary directory for restore --to-time in
// parent ("" is os.TempDir()), locked until release, which unlocks it and
// removes it with what it holds.
func pitrTempDir(parent string) (dir string, release func(), err error) {
	dir, err = os.MkdirTemp(parent, pitrTempPrefix)
	if err != nil {
		return "", nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName+".new"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if _, err = tryLock(f); err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, lockName))
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("a temporary directory for the restore: %w", err)
	}
	return dir, func() {
		os.RemoveAll(dir)
		f.Close()
	}, nil
}

// removeStale removes the temporary directories of restore --to-time in
// parent ("" is os.TempDir()) that no live process holds the lock of: those
// of restores killed midway, which hold the encrypted objects they had
// downloaded. It returns the directories removed; one it cannot check or
// remove is left, and said in the error.
func removeStale(parent string) ([]string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), pitrTempPrefix) {
			continue // a link, or another program's
		}
		dir := filepath.Join(parent, e.Name())
		gone, err := removeIfStale(dir)
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			removed = append(removed, dir)
		}
	}
	return removed, errors.Join(errs...)
}

// removeIfStale removes dir if it is ours and its lock is free.
func removeIfStale(dir string) (bool, error) {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || !ownedByMe(fi) {
		return false, nil // gone meanwhile, or another user's
	}
	f, err := openNoFollow(filepath.Join(dir, lockName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // being set up: nothing in it yet
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", dir, err)
	}
	defer f.Close()
	free, err := tryLock(f)
	if err != nil || !free {
		return false, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("remove %s, left by a restore --to-time that was killed: %w", dir, err)
	}
	return true, nil
}
