package slot

import (
	"encoding/json"
	"time"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/errcode"
)

// State is where a slot stands.
type State string

// The states of a slot.
const (
	StateNone       State = "none"        // no backup, none running
	StateInProgress State = "in_progress" // a backup is running
	StateReady      State = "ready"       // a backup is stored
	StateFailed     State = "failed"      // the last backup failed; the slot is empty
)

// Status is a slot's state with what is known about its backup. It never
// holds a password or key.
type Status struct {
	State    State            `json:"state"`
	Name     string           `json:"name,omitempty"`
	Size     int64            `json:"size,omitempty"`
	MD5      string           `json:"md5,omitempty"`
	SHA256   string           `json:"sha256,omitempty"`
	Started  time.Time        `json:"started,omitzero"`
	Finished time.Time        `json:"finished,omitzero"`
	Progress archive.Progress `json:"progress,omitzero"`
	// Error is why a failed backup failed, and Code its class.
	Error string       `json:"error,omitempty"`
	Code  errcode.Code `json:"code,omitempty"`
	// Export is the running or last copy to the remote, if the slot
	// exports ([Config].Export).
	Export *ExportStatus `json:"export,omitempty"`
	// Oplog is the oplog a ready backup captured: restored with its
	// replay, the backup is consistent as of Oplog.End. Nil for a backup
	// that is not point-in-time.
	Oplog *archive.OplogSpan `json:"oplog,omitempty"`
	// Notes say what a ready backup left out and why ([Plan].Notes).
	Notes []string `json:"notes,omitempty"`
}

// ConsistentAt is the wall-clock time, to the second, of the backup's
// consistency point (Oplog.End), zero when it captured no oplog.
func (s Status) ConsistentAt() time.Time {
	if s.Oplog == nil {
		return time.Time{}
	}
	return time.Unix(int64(s.Oplog.End.T), 0).UTC()
}

// Message is the appliance's one-line status message: "Backup found",
// "Backup in progress", "No backup found" or "Backup failed: <reason>".
func (s Status) Message() string {
	switch s.State {
	case StateReady:
		return "Backup found"
	case StateInProgress:
		return "Backup in progress"
	case StateFailed:
		return "Backup failed: " + s.Error
	default:
		return "No backup found"
	}
}

// Appliance is the status in the appliance's JSON shape:
//
//	{"message":"Backup found","arguments":{"name":"backup-….tar.gz","md5":"…"}}
type Appliance struct {
	Message   string            `json:"message"`
	Arguments map[string]string `json:"arguments,omitempty"`
}

// Appliance returns s in the appliance's shape; arguments are set for a
// ready backup only.
func (s Status) Appliance() Appliance {
	a := Appliance{Message: s.Message()}
	if s.State == StateReady {
		a.Arguments = map[string]string{"name": s.Name, "md5": s.MD5}
	}
	return a
}

// ApplianceJSON renders s as the appliance's status JSON.
func (s Status) ApplianceJSON() []byte {
	b, _ := json.Marshal(s.Appliance()) // a struct of strings always marshals
	return b
}
