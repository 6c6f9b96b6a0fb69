package restore

import "fmt"

// Replay says whether Run replays the oplog a backup captured, once its
// collections are restored and indexed, as mongorestore --oplogReplay
// does: the replay makes the data consistent as of the backup's end, the
// moment its capture stopped.
type Replay int

// The values of [Options].OplogReplay.
const (
	// ReplayAuto (the default) replays the oplog when the backup holds
	// one, and restores a backup without one as it is.
	ReplayAuto Replay = iota
	// ReplayRequired replays it, and fails Run with ErrNoOplog, after
	// restoring the collections, when the backup holds none.
	ReplayRequired
	// ReplayNever restores the collections as the backup read them,
	// without the oplog: consistent as of no moment if the node took
	// writes during the backup.
	ReplayNever
)

// String returns "auto", "required" or "never".
func (r Replay) String() string {
	switch r {
	case ReplayAuto:
		return "auto"
	case ReplayRequired:
		return "required"
	case ReplayNever:
		return "never"
	}
	return fmt.Sprintf("Replay(%d)", int(r))
}
