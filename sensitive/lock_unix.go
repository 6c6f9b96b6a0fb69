//go:build unix

package sensitive

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the directory d, released when d is
// closed, failing with ErrBusy if another open file holds it. Where the
// filesystem refuses flock, the directory is left unlocked.
func lockDir(d *os.File) error {
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if lerr != syscall.EINTR {
				break
			}
		}
	}); err != nil {
		return err
	}
	if lerr == syscall.EWOULDBLOCK {
		return ErrBusy
	}
	return nil
}
