package restore

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
)

// Report is what a restore did (or, for a dry run, would do).
type Report struct {
	Namespaces []NamespaceReport
	Documents  int64
	Indexes    int
	Duration   time.Duration
	DryRun     bool
	// Oplog is what replaying the backup's oplog did (or would do); nil
	// when it was not replayed.
	Oplog *OplogReport
	// Notes say what the restore left out and why, such as users and roles
	// a server cannot merge, or oplog entries it could not replay.
	Notes []string
}

// NamespaceReport is one namespace of a Report.
type NamespaceReport struct {
	From, To  string
	Type      string
	Documents int64 // inserted (in a dry run, read)
	// Duplicates counts the documents passed over because the target
	// held them already (Options.SkipDuplicates).
	Duplicates int64
	Indexes    int // indexes created, the _id index not counted
}

func (r *restorer) report(d time.Duration) *Report {
	rep := &Report{Duration: d, DryRun: r.opts.DryRun, Oplog: r.oplogRep, Notes: r.notes}
	for _, t := range r.order {
		rep.Namespaces = append(rep.Namespaces, NamespaceReport{
			From: t.col.Namespace(), To: t.to, Type: t.col.Type, Documents: t.docs, Duplicates: t.dups, Indexes: t.indexes,
		})
		rep.Documents += t.docs
		rep.Indexes += t.indexes
	}
	return rep
}

// OplogReport is what replaying a backup's oplog did or, in a dry run,
// would do. Operations are counted one by one, those of transactions
// included.
type OplogReport struct {
	// Captured is the span the backup captured (zero for an archive-format
	// backup, which has no manifest).
	Captured archive.OplogSpan
	// First and Last are the timestamps of the first and last entries
	// replayed; the restored data is consistent as of Last when the whole
	// capture is replayed (LimitReached false, Uncommitted and Incomplete
	// zero).
	First, Last bson.Timestamp
	Entries     int64 // entries read
	Inserts     int64
	Updates     int64
	Deletes     int64
	Commands    int64 // commands applied (create, drop, createIndexes, ...)
	// Transactions is the number of committed transactions applied.
	Transactions int64
	// Skipped counts the operations left out: of namespaces that the
	// filter leaves out or that are never replayed (local, config, system
	// collections), no-ops, and commands that are not replayed (see
	// Notes).
	Skipped int64
	// Conflicts counts the updates that, replayed onto a document the
	// backup holds in a later state, did not fit its shape; as in the
	// server's own replay, they are passed over, and a later entry sets the
	// fields they touched.
	Conflicts int64
	// Uncommitted counts the transactions not committed by the end of the
	// replay, which are not applied; Incomplete those whose first entries
	// the capture missed.
	Uncommitted, Incomplete int64
	// LimitReached reports that OplogLimit stopped the replay early.
	LimitReached bool
	// Further is the span that Options.FurtherOplog reported, if it was
	// replayed.
	Further archive.OplogSpan
}
