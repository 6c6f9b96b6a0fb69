package slot

import (
	"context"

	"github.com/keepslot/keepslot/archive"
)

// Source is what a Slot backs up: collections, read through
// [archive.Source]. A Slot runs one backup at a time: Plan, then the
// documents of the collections it listed.
type Source interface {
	archive.Source
	// Plan checks that the source can be read and lists what a backup of
	// it will write.
	Plan(ctx context.Context) (Plan, error)
}

// Plan is what a backup of a Source will write.
type Plan struct {
	Collections   []archive.Collection
	DataSize      int64  // bytes of data, for the rule that twice this must be free
	ServerVersion string // recorded in the archive; may be empty
	// Oplog, if set, captures the oplog while the collections are read
	// ([archive.DumpOptions].Oplog).
	Oplog archive.OplogSource
	// Notes say what the backup leaves out and why; they are logged and
	// shown in [Status].Notes.
	Notes []string
}
