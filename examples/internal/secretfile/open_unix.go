//go:build unix

package secretfile

import (
	"errors"
	"os"
	"syscall"
)

// open opens name for reading without following a final symbolic link
// (O_NOFOLLOW), without waiting for a FIFO's writer or a device
// (O_NONBLOCK), and without taking a terminal as the controlling one.
func open(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}

// isLoop reports whether err is open's refusal of a symbolic link.
func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }
