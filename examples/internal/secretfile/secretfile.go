// Package secretfile reads the small files that hold the examples'
// secrets: a backup password (keepslotctl --password-file, keepslotd
// -pitr-password-file), a slice key (-pitr-key-file) and the agent's bearer
// token (DATA/token, keepslotctl --token-file).
//
// [Read] opens the file without following a symbolic link and without
// blocking (a FIFO or a device would otherwise hang the program before it
// says anything), then checks the opened descriptor, not the name, so that
// the file checked is the file read: it must be a regular file, that only
// its owner may read or write (mode 0600 or 0400), and of at most [MaxSize]
// bytes. Nothing is read before these checks pass.
package secretfile

import (
	"fmt"
	"io"
	"os"

	"github.com/keepslot/keepslot/errcode"
)

// MaxSize is the most bytes a secret file may hold: 4 KiB. A key file
// (keepslotctl pitr-key) is 122 bytes, a token 65; a password is read up
// to its first line, and a longer one is no stronger.
const MaxSize = 4 << 10

var (
	// ErrUnsafe: the file named is not one a secret may be read from. Its
	// cases are ErrLink, ErrNotRegular, ErrMode and ErrTooLarge.
	ErrUnsafe = errcode.New(errcode.Invalid, "unsafe secret file")
	// ErrLink: the name is a symbolic link, which is not followed.
	ErrLink = errcode.Sub(ErrUnsafe, "a secret file may not be a symbolic link: name the file it points to")
	// ErrNotRegular: the file is a directory, FIFO, socket or device.
	ErrNotRegular = errcode.Sub(ErrUnsafe, "a secret file must be a regular file")
	// ErrMode: others than the file's owner may read or write it.
	ErrMode = errcode.Sub(ErrUnsafe, "a secret file must be open to its owner only")
	// ErrTooLarge: the file holds more than MaxSize bytes.
	ErrTooLarge = errcode.Sub(ErrUnsafe, "a secret file holds at most 4 KiB")
)

// Read returns the contents of the secret file name, checked as the
// package documentation says. An error names the file and what to do; it
// never holds the file's contents.
func Read(name string) ([]byte, error) {
	f, err := open(name)
	if isLoop(err) {
		return nil, fmt.Errorf("%s: %w", name, ErrLink)
	}
	if err != nil {
		return nil, fmt.Errorf("read the secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read the secret file: %w", err)
	}
	switch mode := fi.Mode(); {
	case !mode.IsRegular():
		return nil, fmt.Errorf("%s is %s: %w; name the file that holds the secret", name, kind(mode), ErrNotRegular)
	case mode.Perm()&0o077 != 0:
		return nil, fmt.Errorf("%s holds a secret but has mode %s: %w: run chmod 600 on it", name, mode.Perm(), ErrMode)
	case fi.Size() > MaxSize:
		return nil, fmt.Errorf("%s is %d bytes: %w (a key file is 122 bytes); name the file that holds the secret", name, fi.Size(), ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("read the secret file %s: %w", name, err)
	}
	if len(b) > MaxSize {
		clear(b)
		return nil, fmt.Errorf("%s grew while it was read: %w", name, ErrTooLarge)
	}
	return b, nil
}

// kind names what a file that is not regular is.
func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	default:
		return "not a regular file"
	}
}
