//go:build linux || darwin

package store

import (
	"errors"
	"os"
	"syscall"
)

var errWouldBlock = errors.New("store: the lock is held elsewhere")

// lockFile takes an exclusive flock on f, waiting for it if block is set and
// failing with errWouldBlock otherwise. Closing f releases it. flock locks
// belong to the open file, so two opens of the lock file exclude each other
// within one process as across processes.
func lockFile(f *os.File, block bool) error {
	how := syscall.LOCK_EX
	if !block {
		how |= syscall.LOCK_NB
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	err = rc.Control(func(fd uintptr) {
		for {
			lerr = syscall.Flock(int(fd), how)
			if lerr != syscall.EINTR {
				break
			}
		}
	})
	if err != nil {
		return err
	}
	if lerr == syscall.EWOULDBLOCK {
		return errWouldBlock
	}
	if lerr != nil {
		return &os.PathError{Op: "flock", Path: f.Name(), Err: lerr}
	}
	return nil
}

func freeSpace(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
