package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// StateFile is the default name of the file, in the state directory, that
// records the last backup's state, so that the truth survives a restart.
const StateFile = "state.json"

// interruptedReason is the failure reason of a backup that was running when
// its process stopped.
const interruptedReason = "interrupted: the process stopped while the backup was running; the slot is empty, start a new backup"

// record is what StateFile holds.
type record struct {
	State    State     `json:"state"`
	Name     string    `json:"name,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Error    string    `json:"error,omitempty"`
	Code     ErrorCode `json:"code,omitempty"`
}

func loadRecord(path string) (record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return record{State: StateNone}, nil
	}
	if err != nil {
		return record{}, fmt.Errorf("read backup state: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("read backup state %s: %w; delete the file to reset it", path, err)
	}
	return r, nil
}

func saveRecord(path string, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("save backup state: %w", err)
	}
	return nil
}
