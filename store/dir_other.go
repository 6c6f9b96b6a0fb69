//go:build !linux && !darwin

package store

import (
	"errors"
	"fmt"
	"os"
)

var errWouldBlock = errors.New("store: the lock is held elsewhere")

func lockFile(f *os.File, block bool) error {
	return fmt.Errorf("store: Dir needs Linux or macOS for its file lock: %w", errors.ErrUnsupported)
}

func freeSpace(path string) (int64, error) {
	return 0, fmt.Errorf("store: free space on this system: %w", errors.ErrUnsupported)
}
