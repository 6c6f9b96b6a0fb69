package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/keepslot/keepslot/internal/atomicfile"
)

// The files of a DirStore's directory.
//
// The info file is the commit record: an object is stored exactly when
// infoName exists, and it names the data file (object-<id>) that holds the
// bytes. A write goes to pendingPrefix+<id>+".data"; Commit fsyncs it, writes
// and fsyncs pendingPrefix+<id>+".json", renames the data file to object-<id>,
// fsyncs the directory, renames the info file to infoName and fsyncs the
// directory again. Delete removes infoName first. So a crash at any point
// leaves either the whole object or files nothing refers to, which the next
// call removes: pending files whose write lock is free, and object files the
// info file does not name.
const (
	infoName      = "info.json"
	gateLockName  = "gate.lock"  // held briefly, to make short critical sections
	writeLockName = "write.lock" // held from Create to Commit or Abort
	pendingPrefix = ".keepslot-pending-"
	objectPrefix  = "object-"
)

// Permissions of what a DirStore creates.
const (
	dirPerm  fs.FileMode = 0o700
	filePerm fs.FileMode = 0o600
)

// writebackEvery is how many bytes a pending write lets accumulate before it
// asks the kernel to start writing them out (on Linux), so that Commit's
// fsync has little left to do and dirty pages stay bounded.
const writebackEvery = 8 << 20

// DirStore is a Store that keeps the slot in a directory. It is safe for
// concurrent use, and several DirStores, in one process or in several, may
// share a directory: an operating-system file lock lets only one of them
// write at a time.
//
// A crash never leaves a partial object: the slot then holds either the
// whole object or nothing, and the next call to any method removes what an
// abandoned write left behind. A write is abandoned when the process that
// made it ends without Commit or Abort; its lock ends with it.
//
// DirStore implements SpaceReporter. It needs Linux or macOS.
type DirStore struct {
	path string
	gate sync.Mutex // serializes this DirStore's users of the gate lock

	// commitHook, set only by tests (export_test.go), is called at each
	// step of Commit: "data-synced" (data and info written and fsynced,
	// nothing renamed), "data-renamed" (the data file is in place, the info
	// file is not) and "info-renamed" (the object is visible, the directory
	// not yet fsynced).
	commitHook func(step string)
}

var (
	_ Store         = (*DirStore)(nil)
	_ SpaceReporter = (*DirStore)(nil)
)

// Dir returns the slot kept in the directory path, creating the directory
// (mode 0700) if it is missing. The directory should be given to the store
// alone.
func Dir(path string) (*DirStore, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: slot directory %q: %w", path, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("store: creating the slot directory: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("store: slot directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store: slot directory %q is not a directory", abs)
	}
	s := &DirStore{path: abs}
	for _, name := range []string{gateLockName, writeLockName} {
		f, err := s.openLockFile(name)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	return s, nil
}

// Path returns the absolute path of the slot's directory.
func (s *DirStore) Path() string { return s.path }

func (s *DirStore) join(name string) string { return filepath.Join(s.path, name) }

func (s *DirStore) openLockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(s.join(name), os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("store: opening the slot's lock file: %w", err)
	}
	return f, nil
}

// withGate runs fn holding the gate, and the write lock if it is free. held
// reports whether the write lock was taken; fn may keep it by returning
// keep=true, and it is then returned.
func (s *DirStore) withGate(fn func(held bool) (keep bool, err error)) (*os.File, error) {
	s.gate.Lock()
	defer s.gate.Unlock()
	gate, err := s.openLockFile(gateLockName)
	if err != nil {
		return nil, err
	}
	defer gate.Close() // closing releases the lock
	if err := lockFile(gate, true); err != nil {
		return nil, fmt.Errorf("store: locking the slot: %w", err)
	}
	w, err := s.openLockFile(writeLockName)
	if err != nil {
		return nil, err
	}
	err = lockFile(w, false)
	switch {
	case errors.Is(err, errWouldBlock):
		w.Close()
		_, err := fn(false)
		return nil, err
	case err != nil:
		w.Close()
		return nil, fmt.Errorf("store: locking the slot: %w", err)
	}
	keep, err := fn(true)
	if !keep {
		w.Close()
		return nil, err
	}
	return w, err
}

// tidy removes what crashed writes and deletes left behind. The caller holds
// the gate and the write lock.
func (s *DirStore) tidy() error {
	entries, err := os.ReadDir(s.path)
	if err != nil {
		return fmt.Errorf("store: reading the slot directory: %w", err)
	}
	object, _, infoErr := s.readInfo()
	for _, e := range entries {
		name := e.Name()
		garbage := strings.HasPrefix(name, pendingPrefix) ||
			strings.HasPrefix(name, objectPrefix) && name != object && (infoErr == nil || errors.Is(infoErr, ErrEmpty))
		if !garbage {
			continue
		}
		if err := os.Remove(s.join(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: removing %s, left by an abandoned write: %w", name, err)
		}
	}
	return nil
}

// tidyIfIdle tidies the directory unless a write is under way. It is best
// effort, for readers: a reader that cannot tidy (it may lack the right to
// write to the directory) can still read.
func (s *DirStore) tidyIfIdle() {
	s.withGate(func(held bool) (bool, error) {
		if !held {
			return false, nil
		}
		return false, s.tidy()
	})
}

// readInfo reads the commit record. It fails with ErrEmpty if there is none
// and with ErrCorrupt if it cannot be trusted.
func (s *DirStore) readInfo() (object string, info Info, err error) {
	f, err := os.Open(s.join(infoName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", Info{}, ErrEmpty
	}
	if err != nil {
		return "", Info{}, fmt.Errorf("store: reading the slot's info file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInfoSize+1))
	if err != nil {
		return "", Info{}, fmt.Errorf("store: reading the slot's info file: %w", err)
	}
	return parseInfo(b)
}

func (s *DirStore) syncDir() error { return atomicfile.SyncDir(s.path) }

// Create implements Store.
func (s *DirStore) Create(ctx context.Context, name string) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: create %q: %w", name, err)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	var dp *dirPending
	lock, err := s.withGate(func(held bool) (bool, error) {
		if !held {
			return false, ErrBusy
		}
		if err := s.tidy(); err != nil {
			return false, err
		}
		switch _, _, err := s.readInfo(); {
		case err == nil:
			return false, ErrSlotOccupied
		case !errors.Is(err, ErrEmpty):
			return false, err
		}
		var id [16]byte
		rand.Read(id[:])
		dp = &dirPending{s: s, id: hex.EncodeToString(id[:])}
		f, err := os.OpenFile(s.join(dp.dataTemp()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if err != nil {
			return false, fmt.Errorf("store: creating the data file: %w", err)
		}
		dp.f = f
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	dp.lock = lock
	return NewPending(ctx, name, dp), nil
}

// Stat implements Store.
func (s *DirStore) Stat(ctx context.Context) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("store: stat: %w", err)
	}
	s.tidyIfIdle()
	_, info, err := s.readInfo()
	return info, err
}

// Open implements Store.
func (s *DirStore) Open(ctx context.Context) (Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s.tidyIfIdle()
	// The object named by the info file may be deleted, and another one
	// stored, between reading the info file and opening the object: try
	// again with the new info file then.
	var lastObject string
	for {
		object, info, err := s.readInfo()
		if err != nil {
			return nil, err
		}
		f, err := os.Open(s.join(object))
		if errors.Is(err, fs.ErrNotExist) {
			if object == lastObject {
				return nil, fmt.Errorf("%w: the data file %s is missing", ErrCorrupt, object)
			}
			lastObject = object
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: opening the stored object: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("store: opening the stored object: %w", err)
		}
		if fi.Size() != info.Size {
			f.Close()
			return nil, fmt.Errorf("%w: the data file holds %d bytes, the info file says %d", ErrCorrupt, fi.Size(), info.Size)
		}
		return &dirObject{f: f, info: info}, nil
	}
}

// Delete implements Store.
func (s *DirStore) Delete(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	_, err := s.withGate(func(held bool) (bool, error) {
		if !held {
			return false, ErrBusy
		}
		_, _, err := s.readInfo()
		if errors.Is(err, ErrEmpty) {
			if err := s.tidy(); err != nil {
				return false, err
			}
			return false, ErrEmpty
		}
		// A damaged info file is deleted too: that is how to recover.
		if err := os.Remove(s.join(infoName)); err != nil {
			return false, fmt.Errorf("store: deleting the slot's info file: %w", err)
		}
		if err := s.syncDir(); err != nil {
			return false, fmt.Errorf("store: deleting: %w", err)
		}
		if err := s.tidy(); err != nil {
			return false, err
		}
		if err := s.syncDir(); err != nil {
			return false, fmt.Errorf("store: deleting: %w", err)
		}
		return false, nil
	})
	return err
}

// FreeSpace implements SpaceReporter: the bytes available to an unprivileged
// user on the slot directory's file system.
func (s *DirStore) FreeSpace(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: free space: %w", err)
	}
	n, err := freeSpace(s.path)
	if err != nil {
		return 0, fmt.Errorf("store: free space of the slot directory: %w", err)
	}
	return n, nil
}

// dirPending is the Backend of a write to a DirStore. It holds the write
// lock until commit or abort.
type dirPending struct {
	s       *DirStore
	id      string
	f       *os.File // the data file, under its pending name
	lock    *os.File // the write lock, held
	written int64
	flushed int64 // bytes handed to writeback
}

func (d *dirPending) dataTemp() string { return pendingPrefix + d.id + ".data" }
func (d *dirPending) infoTemp() string { return pendingPrefix + d.id + ".json" }
func (d *dirPending) object() string   { return objectPrefix + d.id }

func (d *dirPending) Append(p []byte) error {
	n, err := d.f.Write(p)
	d.written += int64(n)
	if err != nil {
		return err
	}
	if d.written-d.flushed >= writebackEvery {
		startWriteback(d.f, d.flushed, d.written-d.flushed)
		d.flushed = d.written
	}
	return nil
}

func (d *dirPending) Commit(info Info) error {
	s := d.s
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("fsync of the data file: %w", err)
	}
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("closing the data file: %w", err)
	}
	d.f = nil
	b, err := marshalInfo(d.object(), info)
	if err != nil {
		return fmt.Errorf("encoding the info file: %w", err)
	}
	if err := atomicfile.Create(s.join(d.infoTemp()), b); err != nil {
		return fmt.Errorf("writing the info file: %w", err)
	}
	s.hook("data-synced")
	if err := os.Rename(s.join(d.dataTemp()), s.join(d.object())); err != nil {
		return fmt.Errorf("renaming the data file into place: %w", err)
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	s.hook("data-renamed")
	if err := os.Rename(s.join(d.infoTemp()), s.join(infoName)); err != nil {
		return fmt.Errorf("renaming the info file into place: %w", err)
	}
	s.hook("info-renamed")
	if err := s.syncDir(); err != nil {
		// The object is visible but may not survive a power cut; take it
		// back so that the failed Commit leaves the slot empty.
		os.Remove(s.join(infoName))
		return err
	}
	// The slot is committed; remove nothing but unlock.
	d.lock.Close()
	d.lock = nil
	return nil
}

func (d *dirPending) Abort() error {
	var errs []error
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
	if d.lock == nil {
		return nil
	}
	for _, name := range []string{d.dataTemp(), d.infoTemp(), d.object()} {
		if err := os.Remove(d.s.join(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.lock.Close()
	d.lock = nil
	return errors.Join(errs...)
}

func (s *DirStore) hook(step string) {
	if s.commitHook != nil {
		s.commitHook(step)
	}
}

// dirObject is an Object over a DirStore's data file.
type dirObject struct {
	f    *os.File
	info Info
}

func (o *dirObject) Read(p []byte) (int, error)                   { return o.f.Read(p) }
func (o *dirObject) ReadAt(p []byte, off int64) (int, error)      { return o.f.ReadAt(p, off) }
func (o *dirObject) Seek(offset int64, whence int) (int64, error) { return o.f.Seek(offset, whence) }
func (o *dirObject) Close() error                                 { return o.f.Close() }
func (o *dirObject) Info() Info                                   { return o.info.clone() }
