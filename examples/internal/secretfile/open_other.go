//go:build !unix

package secretfile

import "os"

// open opens name for reading; on this system a symbolic link is followed,
// and the checks of the opened file still refuse all but a regular file.
func open(name string) (*os.File, error) { return os.Open(name) }

// isLoop reports false: open follows links here.
func isLoop(error) bool { return false }
