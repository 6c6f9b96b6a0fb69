package restore

import (
	"context"

	"github.com/keepslot/keepslot/archive"
)

// Observer watches a restore ([Options].Observer): what it reads of each
// namespace it restores, and the moment its collections are restored and
// indexed, before the oplog is replayed. Package drill proves a restore
// with one; its methods are called from the goroutine that reads the
// backup, so a slow Observer slows the restore.
type Observer interface {
	// Namespace is called when Run first meets a namespace that it
	// restores into a collection (users and roles, which it merges, are
	// not), before it creates the target: c as the backup describes it, to
	// its name after Renames. An error fails the restore before anything is
	// written to to. The function returned, if not nil, is called with
	// every document of the namespace that Run reads, in the backup's
	// order, before the document is inserted; doc is valid only during the
	// call.
	Namespace(ctx context.Context, c archive.Collection, to string) (func(doc []byte), error)
	// Restored is called once, when every collection is restored and
	// indexed (and users and roles merged), before the oplog is replayed;
	// an error fails the restore. A restore that failed before is not
	// Restored.
	Restored(ctx context.Context) error
}
