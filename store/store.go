package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/keepslot/keepslot/errcode"
)

var (
	// ErrSlotOccupied is returned by Create when the slot already holds an
	// object. Delete it first.
	ErrSlotOccupied = errcode.New(errcode.SlotOccupied, "store: a backup already exists in the slot; delete it first")

	// ErrBusy is returned when another write is under way, in this process or
	// in another one. Wait for it to be committed or aborted.
	ErrBusy = errcode.New(errcode.InProgress, "store: another write to the slot is under way; wait for it to finish")

	// ErrEmpty is returned when the slot holds nothing. A pending write is not
	// stored until it is committed.
	ErrEmpty = errcode.New(errcode.NoBackup, "store: the slot is empty")

	// ErrInvalid is returned for a name or metadata the store cannot keep
	// faithfully: an empty or over-long name, invalid UTF-8, or too much
	// metadata.
	ErrInvalid = errcode.New(errcode.Invalid, "store: invalid name or metadata")

	// ErrClosed is returned by a Pending that has already been committed or
	// aborted.
	ErrClosed = errcode.New(errcode.Internal, "store: the write was already committed or aborted")

	// ErrCorrupt is returned when the slot's own files are damaged (changed
	// by something other than the store). Delete the slot to recover.
	ErrCorrupt = errcode.New(errcode.Corrupt, "store: the slot's files are damaged; delete the slot to recover")
)

// own reports whether err is, or wraps, one of the package's errors, whose
// text begins with what happened.
func own(err error) bool {
	for _, s := range []error{ErrSlotOccupied, ErrBusy, ErrEmpty, ErrInvalid, ErrClosed, ErrCorrupt, ErrNotFound, ErrUnauthorized, ErrUnreachable, ErrMismatch} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Limits on what a Pending accepts as name and metadata; beyond them Create
// and Commit fail with ErrInvalid.
const (
	MaxNameLen  = 1024     // bytes in Info.Name
	MaxMetaSize = 64 << 10 // bytes in all keys and values of Info.Meta together
)

// Info describes the stored object. MD5 and SHA256 are lowercase hex of the
// stored bytes, computed by the store while they are written.
type Info struct {
	Name    string            // the name given to Create
	Size    int64             // bytes stored
	MD5     string            // lowercase hex MD5 of the stored bytes
	SHA256  string            // lowercase hex SHA-256 of the stored bytes
	Created time.Time         // when Commit made the object visible
	Meta    map[string]string // the metadata given to Commit; never nil
}

// clone returns a copy of i that shares no map with it.
func (i Info) clone() Info {
	i.Meta = cloneMeta(i.Meta)
	return i
}

func cloneMeta(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	maps.Copy(c, m)
	return c
}

// Store is a single slot holding at most one object.
//
// All methods are safe for concurrent use.
type Store interface {
	// Create starts the one write the slot allows. It fails with
	// ErrSlotOccupied if an object is stored and with ErrBusy if a write is
	// pending. Writes after ctx is done fail with ctx's error and Commit then
	// fails.
	Create(ctx context.Context, name string) (Pending, error)

	// Stat describes the stored object, or fails with ErrEmpty when nothing
	// is stored (a pending write is not stored).
	Stat(ctx context.Context) (Info, error)

	// Open opens the stored object for reading, or fails with ErrEmpty.
	Open(ctx context.Context) (Object, error)

	// Delete removes the stored object. It fails with ErrEmpty when nothing
	// is stored and with ErrBusy while a write is pending.
	Delete(ctx context.Context) error
}

// Pending is a write started by Store.Create. Its methods must not be called
// concurrently with each other, except that Abort may be called at any time.
//
// Every Pending must end with Commit or Abort: until then it holds the slot.
// When the context given to Create is done, the write is aborted on its own.
type Pending interface {
	io.Writer

	// Commit makes the object visible atomically with meta attached (copied)
	// and returns its Info. If Commit fails, the write is discarded and the
	// slot is empty again.
	Commit(meta map[string]string) (Info, error)

	// Abort discards the write; the slot is empty again. Abort after Commit
	// or after Abort is a no-op returning nil.
	Abort() error
}

// Object is the stored object open for reading: a stream, random access, and
// its Info. An Object stays readable after the stored object is deleted.
type Object interface {
	io.ReadSeekCloser
	io.ReaderAt

	// Info describes the object.
	Info() Info
}

// SpaceReporter is implemented by stores that know the free space where they
// write.
type SpaceReporter interface {
	// FreeSpace returns the bytes available to the store for writing.
	FreeSpace(ctx context.Context) (int64, error)
}

// CheckName reports whether the store can keep name faithfully: it fails
// with ErrInvalid for an empty name, one longer than MaxNameLen bytes or one
// that is not valid UTF-8. Every Create calls it before taking the slot.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: the name is %d bytes long, more than %d", ErrInvalid, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the name is not valid UTF-8", ErrInvalid)
	}
	return nil
}

func validMeta(meta map[string]string) error {
	size := 0
	for k, v := range meta {
		if k == "" {
			return fmt.Errorf("%w: a metadata key is empty", ErrInvalid)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: metadata key %q or its value is not valid UTF-8", ErrInvalid, k)
		}
		size += len(k) + len(v)
	}
	if size > MaxMetaSize {
		return fmt.Errorf("%w: the metadata is %d bytes, more than %d", ErrInvalid, size, MaxMetaSize)
	}
	return nil
}

// now is the creation time recorded by Commit: wall clock only, in UTC, so
// that it survives a round trip through the info file unchanged.
func now() time.Time { return time.Now().Round(0).UTC() }
