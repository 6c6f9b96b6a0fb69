package drill

import (
	"fmt"
	"strings"

	"github.com/keepslot/keepslot/errcode"
)

// Errors a user can cause, besides those of packages restore, sensitive
// and cipher (a wrong password, an unreachable server), which a drill
// returns wrapped as they are. Each is returned wrapped with details; test
// for them with errors.Is.
var (
	// ErrFailed: the drill ran and the backup did not restore as it
	// promises: a restored namespace or secret differs from the backup, an
	// index is missing, the oplog did not replay cleanly, or the restore
	// itself failed on the backup (restore.ErrCorrupt,
	// restore.ErrCountMismatch, sensitive.ErrManifestMismatch, a document
	// the target refused, beneath it). errors.As gives the *Failure, which
	// lists what differs.
	ErrFailed = errcode.New(errcode.DrillFailed, "drill: the restore drill failed: the backup did not restore as it promises")

	// ErrTargetInUse: the target is not scratch. Under a prefix, a
	// database of the server starts with it already (a drill never
	// reuses a prefix: choose another, or drop those databases); on a
	// scratch server, the server holds databases already (a drill
	// restores into an empty server only).
	ErrTargetInUse = errcode.New(errcode.Exists, "drill: the target is not scratch: it holds databases already")

	// ErrSourceNamespace: the target of a namespace of the backup would be
	// a namespace of the backup itself (its database starts with the
	// prefix), or one of the server's own (admin, local, config). It
	// matches ErrTargetInUse too.
	ErrSourceNamespace = errcode.Sub(ErrTargetInUse, "drill: the drill would write to a namespace the backup holds, or to the server's own; choose a prefix that no database of the backup starts with")

	// ErrInvalid: an option is malformed; the message names it.
	ErrInvalid = errcode.New(errcode.Invalid, "drill: invalid options")
)

// Kind is what differs between a backup and what a drill read back.
type Kind string

// The kinds of difference.
const (
	KindCount   Kind = "count"   // a namespace holds another number of documents
	KindDigest  Kind = "digest"  // a namespace holds other documents (the same number)
	KindIndex   Kind = "index"   // an index of the backup is missing, or has another key or uniqueness
	KindReplay  Kind = "replay"  // the oplog replayed with conflicts, or left transactions unapplied
	KindSecret  Kind = "secret"  // a restored secret is missing, or its size or sha256 differs from the manifest
	KindRestore Kind = "restore" // the restore itself failed on the backup; Detail says why
)

// Difference is one way in which a restore differs from its backup.
type Difference struct {
	// Namespace is the backup's namespace ("db.coll"), "oplog" for the
	// replay, the secret's name for a sensitive backup, and empty for a
	// restore that failed as a whole (its Detail then names what it
	// could).
	Namespace string `json:"namespace"`
	Kind      Kind   `json:"kind"`
	Detail    string `json:"detail"`
}

func (d Difference) String() string {
	if d.Namespace == "" {
		return fmt.Sprintf("%s: %s", d.Kind, d.Detail)
	}
	return fmt.Sprintf("%s: %s: %s", d.Namespace, d.Kind, d.Detail)
}

// Failure is the error of a drill that failed (it matches ErrFailed): what
// differs, and the restore's own error when the restore failed on the
// backup. Its Differences are those of the Report.
type Failure struct {
	Differences []Difference
	// Restore is the restore's error, if it failed; errors.Is sees
	// through to it (restore.ErrCorrupt, ...).
	Restore error
}

// Error lists the differences.
func (f *Failure) Error() string {
	var b strings.Builder
	b.WriteString(ErrFailed.Error())
	for i, d := range f.Differences {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// ErrorCode is errcode.DrillFailed.
func (f *Failure) ErrorCode() errcode.Code { return errcode.DrillFailed }

// Unwrap gives ErrFailed and the restore's error.
func (f *Failure) Unwrap() []error {
	if f.Restore != nil {
		return []error{ErrFailed, f.Restore}
	}
	return []error{ErrFailed}
}
