//go:build unix

package sensitive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openRegular opens the file at p for reading if it is a regular file, and
// returns it with its information, taken from the open file. A link at p
// is not followed (O_NOFOLLOW), and opening a pipe does not wait for a
// writer (O_NONBLOCK, which reads of a regular file ignore): both are
// refused with ErrNotRegular.
func openRegular(p string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		// Linux and macOS say ELOOP for a link; some BSDs say otherwise.
		if li, lerr := os.Lstat(p); errors.Is(err, syscall.ELOOP) || lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return nil, nil, fmt.Errorf("%w: %s (a symbolic link)", ErrNotRegular, p)
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s (%s)", ErrNotRegular, p, fi.Mode().Type())
	}
	return f, fi, nil
}
