//go:build !unix

package main

import (
	"errors"
	"io/fs"
	"os"
)

// tryLock reports false: without flock, no directory is taken for stale.
func tryLock(*os.File) (bool, error) { return false, nil }

// ownedByMe reports false: without flock, nothing is removed.
func ownedByMe(fs.FileInfo) bool { return false }

// openNoFollow is not used here.
func openNoFollow(string) (*os.File, error) { return nil, errors.ErrUnsupported }
