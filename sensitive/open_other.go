//go:build !unix

package sensitive

import (
	"fmt"
	"io/fs"
	"os"
)

// openRegular opens the file at p for reading if it is a regular file, and
// returns it with its information, taken from the open file. A link at p
// is refused with ErrNotRegular: the opened file must be the one at p
// itself.
func openRegular(p string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	li, err := os.Lstat(p)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() || !li.Mode().IsRegular() || !os.SameFile(fi, li) {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s (%s)", ErrNotRegular, p, li.Mode().Type())
	}
	return f, fi, nil
}
