package store

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/keepslot/keepslot/errcode"
)

// Remote holds many objects by key, off the node: where copies of backups
// are exported and kept, and where retention prunes them. Keys are
// slash-separated relative paths such as "node-1/backup-2026-01-01T00-00-00Z.tar.gz"
// that [CheckKey] accepts; every method fails with ErrInvalid for any other.
//
// All methods are safe for concurrent use.
type Remote interface {
	// Put stores the bytes of r under key, replacing what is there, with
	// want's Name, Created and Meta. It hashes what it reads and, when want
	// gives a Size, MD5 or SHA256, fails with ErrMismatch if the bytes
	// differ. A failed Put leaves under key what was there before or
	// nothing, never a partial or mismatched object. It returns the Info of
	// what is stored.
	Put(ctx context.Context, key string, r io.Reader, want Info) (Info, error)

	// List returns the objects whose key begins with prefix, by key.
	List(ctx context.Context, prefix string) ([]Entry, error)

	// Open opens the object under key for reading, or fails with
	// ErrNotFound.
	Open(ctx context.Context, key string) (Object, error)

	// Delete removes the object under key, or fails with ErrNotFound.
	Delete(ctx context.Context, key string) error
}

// Entry is an object of a Remote: its key and its Info.
type Entry struct {
	Key  string
	Info Info
}

var (
	// ErrNotFound is returned by a Remote for a key that holds no object.
	ErrNotFound = errcode.New(errcode.NoBackup, "store: no object under that key")

	// ErrUnauthorized is matched by the errors of a store that keeps its
	// objects on a server (such as store/s3store) when the server refuses
	// the credentials or the access.
	ErrUnauthorized = errcode.New(errcode.Unauthorized, "store: the server refused the credentials or the access")

	// ErrUnreachable is matched by the errors of a store that keeps its
	// objects on a server when the server cannot be reached or does not
	// answer in time.
	ErrUnreachable = errcode.New(errcode.Unreachable, "store: the server cannot be reached")

	// ErrMismatch is returned by Remote.Put when the bytes read or stored do
	// not match the size or hashes they were said to have. Nothing is left
	// under the key; read the source again.
	ErrMismatch = errcode.New(errcode.Corrupt, "store: the bytes do not match their size or hashes")
)

// CheckKey reports whether key is a key that every Remote keeps faithfully:
// a slash-separated relative path of at most MaxNameLen bytes of UTF-8,
// whose segments are neither empty nor "." or "..". It fails with
// ErrInvalid otherwise. A Remote's methods call it first.
func CheckKey(key string) error {
	if err := CheckName(key); err != nil {
		return fmt.Errorf("%w (the key %q)", err, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: the key %q is not a relative path of non-empty segments, none of them . or ..", ErrInvalid, key)
		}
	}
	return nil
}
