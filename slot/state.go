package slot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/atomicfile"
	"github.com/keepslot/keepslot/store"
)

// interruptedReason is the failure reason of a backup that was running when
// its process stopped.
const interruptedReason = "slot: interrupted: the process stopped while the backup was running; the slot is empty, start a new backup"

// record is what StateFile holds.
type record struct {
	State    State        `json:"state"`
	Name     string       `json:"name,omitempty"`
	Started  time.Time    `json:"started,omitzero"`
	Finished time.Time    `json:"finished,omitzero"`
	Error    string       `json:"error,omitempty"`
	Code     errcode.Code `json:"code,omitempty"`
}

func loadRecord(path string) (record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return record{State: StateNone}, nil
	}
	if err != nil {
		return record{}, fmt.Errorf("slot: read the backup state: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("slot: read the backup state %s: %w; delete the file to reset it", path, err)
	}
	return r, nil
}

func saveRecord(path string, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := writeFile(path, b); err != nil {
		return stateWriteError("save the backup state", err)
	}
	return nil
}

// writeFile writes the state file; tests replace it to fill the disk.
var writeFile = atomicfile.Write

// reserveSize is the room a running backup holds for saving its outcome:
// room for the state file and its temporary copy, many times over.
const reserveSize = 64 << 10

// reservePath is where the room for a state file is held.
func reservePath(statePath string) string { return statePath + ".reserve" }

// reserveRoom holds reserveSize bytes of the state file's filesystem while a
// backup runs, so that its outcome can be saved even on a disk the backup
// filled: releaseRoom gives them back just before.
func reserveRoom(statePath string) error {
	if err := writeFile(reservePath(statePath), make([]byte, reserveSize)); err != nil {
		return stateWriteError("hold room for the backup's state", err)
	}
	return nil
}

// releaseRoom gives back the room reserveRoom held, if any.
func releaseRoom(statePath string) { _ = os.Remove(reservePath(statePath)) }

// diskFull marks a write that failed for want of space as
// ErrInsufficientSpace, keeping the failed write, which names the file, in
// the chain.
func diskFull(err error) error {
	if errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrInsufficientSpace) {
		return fmt.Errorf("%w: a disk filled up: %w", ErrInsufficientSpace, err)
	}
	return err
}

// stateWriteError is the error of a failed write of the state directory,
// which says what it was doing: ErrInsufficientSpace first when the disk is
// full, as diskFull puts it.
func stateWriteError(what string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: a disk filled up: %s: %w", ErrInsufficientSpace, what, err)
	}
	return fmt.Errorf("slot: %s: %w", what, err)
}

// The keys of the store's metadata that Status reads back.
const (
	metaStarted = "started"
	metaOplog   = "oplog" // the OplogSpan in JSON
	metaNotes   = "notes" // the Plan's notes in JSON
)

// OplogOf returns the oplog span that a stored backup's Info records in
// its metadata, as the slot and the exported copies carry it: restored
// with its replay, the backup is consistent as of the span's End. Nil for
// a backup that captured no oplog.
func OplogOf(info store.Info) *archive.OplogSpan {
	span, _ := readMeta(info.Meta)
	return span
}

// readMeta reads the oplog span and the notes recorded in a stored
// backup's metadata.
func readMeta(meta map[string]string) (*archive.OplogSpan, []string) {
	var span *archive.OplogSpan
	if s := meta[metaOplog]; s != "" {
		var sp archive.OplogSpan
		if json.Unmarshal([]byte(s), &sp) == nil {
			span = &sp
		}
	}
	var notes []string
	if s := meta[metaNotes]; s != "" {
		_ = json.Unmarshal([]byte(s), &notes)
	}
	return span, notes
}

// must returns b, for a json.Marshal that cannot fail.
func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
