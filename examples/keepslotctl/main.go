// Keepslotctl is a command-line client with the appliance's verbs, for the
// keepslotd node agent (examples/keepslotd), plus a local restore:
//
//	keepslotctl -t NODE set-as-backup
//	keepslotctl -t NODE backup                       # asks for a password; "Backup in progress."
//	keepslotctl -t NODE backup-status [--wait]       # {"message":"Backup found","arguments":{…}}
//	keepslotctl -t NODE backup-retrieve [-o FILE]    # backup-retrieve.tar.gz.enc, md5 checked, resumable
//	keepslotctl -t NODE backup-delete
//	keepslotctl -t NODE backup-cancel                # cancel a running backup (or export); wait until cleaned up
//	keepslotctl -t NODE backup-sensitive …           # and backup-sensitive-status, -retrieve, -delete, -cancel
//	keepslotctl restore --uri URI [FILE]             # restore a retrieved file into MongoDB
//	keepslotctl restore --sensitive --dir DIR [FILE] # restore a retrieved sensitive file into DIR
//	keepslotctl -t NODE drill                        # the agent drills its backup into a scratch server
//	keepslotctl drill FILE --uri SCRATCH [--prefix P] # drill a retrieved file here (--sensitive too)
//	keepslotctl -t NODE schedule                     # keepslotd -schedule: next run, last run per step
//	keepslotctl restore --allow-missing-manifest --uri URI FILE  # FILE: a tarred mongodump directory, encrypted
//
// and, for an agent that exports to S3 (keepslotd -export-bucket):
//
//	keepslotctl -t NODE backup-export [--wait]       # copy the stored backup to the bucket, verified
//	keepslotctl -t NODE backup-list [--remote]       # the slot's backup, or the node's copies on S3
//	keepslotctl -t NODE backup-retrieve --from-remote NAME [-o FILE]
//	keepslotctl -t NODE restore --from-remote NAME --uri URI   # fetched through the agent, md5 checked
//
// and, for an agent that also slices the oplog (keepslotd -pitr), point-in-time
// recovery: backup-status prints the restorable windows, the lag and any gap (on
// stderr; in the JSON with --json), backup-list --remote the slices, and
//
//	keepslotctl -t NODE restore --to-time 2026-12-02T17:59:00Z --uri URI  # or SECONDS[:ORDINAL]
//	keepslotctl -t NODE pitr-flush                   # store the open oplog slice now
//	keepslotctl pitr-key -o FILE                     # the key file for keepslotd -pitr-key-file
//
// restore --to-time picks the newest copy in the bucket consistent before the
// target and replays the slices after it: a time restores its whole second,
// SECONDS:ORDINAL the oplog before that timestamp, as --oplog-limit. A target in
// no window fails with exit 5, listing the windows; --dry-run says which copy and
// slices it would use. An agent or a bucket that stops answering during the
// restore ends it with exit 8. The objects it downloads, encrypted, go to a
// directory keepslotctl-pitr-* in $TMPDIR, removed when it ends; one that a
// killed keepslotctl left is removed by the next restore --to-time, which
// tells it by its lock (a file that the running restore holds a flock on,
// released by the system when the process dies) and says so on stderr.
//
// Build it with `go build ./examples/keepslotctl`, or run it with
// `go run ./examples/keepslotctl …`.
//
// -t takes host or host:port (default port 7443, keepslotd's); --tls
// speaks HTTPS, --ca-file trusts a certificate (such as the agent's
// self-signed one) and --insecure skips the certificate check. The agent's
// bearer token comes from --token, the KEEPSLOT_TOKEN environment variable
// or --token-file (keepslotd writes it to DATA/token). A password comes from
// --password-file FILE (its first line), the KEEPSLOT_PASSWORD environment
// variable or, on a terminal, a prompt without echo (asked twice for a
// backup). --password P works too, but other users of the host see P in
// the process list, and the shell's history keeps it: keepslotctl warns
// when it is used. --json prints machine-readable output; messages and
// errors go to standard error.
//
// Error texts follow errcode's style as a command's: a text keepslotctl
// makes carries no prefix, one from keepslot's packages begins with that
// package's name, an agent's is the agent's message, and keepslotctl names
// itself once before what it reports on standard error ("keepslotctl:
// restore: …", "keepslotctl: warning: …").
//
// Exit codes, for scripts:
//
//	0  success
//	1  any other error, such as a backup that was cancelled or a failure without a code
//	2  usage: a bad flag or argument (a restore FILE that does not exist), no password
//	   given, a --password-file or --token-file that is not a regular file of its owner's
//	   only (0600 or 0400), at most 4 KiB (a link is not followed, a FIFO not waited on),
//	   or a request the agent finds invalid (such as an export without a bucket)
//	3  the node is not in the backup role (run set-as-backup)
//	4  busy: a backup or export is in progress (wait for it, or cancel it with
//	   backup-cancel), one is stored (delete it first), or a restore would overwrite
//	5  no backup to retrieve or delete
//	6  the backup does not open or check out: wrong password, corrupt file (one with no
//	   manifest.json, or with more secrets than a sensitive backup holds, included), md5
//	   mismatch, a download longer than the backup (the partial file is removed), a
//	   restored count that differs from the backup's
//	7  unauthorized: no token or a wrong one, or the MongoDB server or the bucket
//	   refused the credentials
//	8  unreachable: the agent, the MongoDB server or the bucket does not answer, or a
//	   download broke off (run the command again to resume)
//	9  not enough free disk space on the node
//	10 the oplog rolled over during the backup: it is too small for the dump's duration
//	11 a collection was dropped or replaced, or its cursor lost, while the backup read
//	   it: run the backup again
//	12 the MongoDB server is a mongos or a member of a sharded cluster, which
//	   keepslot does not back up
//	13 a restore drill failed: the restored data differ from the backup (package drill)
//
// These hold for every command: backup-status --wait and backup-export
// --wait end with the code of the backup's or the export's failure.
//
// A restore refuses, before it writes anything (exit 6), a file whose tar
// has no keepslot manifest.json, such as a tarred mongodump directory:
// --allow-missing-manifest restores it, without the manifest's check of
// its contents (a tar cut at an entry's boundary goes unnoticed).
//
// A restore replays the oplog the backup captured (--oplog-replay auto, the
// default), so that the data is consistent as of the backup's end;
// --oplog-limit stops earlier and --skip-users-and-roles leaves the users
// and roles out.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keepslot/keepslot/errcode"
)

// Exit codes; see the package documentation.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitNotBackup    = 3
	exitBusy         = 4
	exitNoBackup     = 5
	exitBadBackup    = 6
	exitUnauthorized = 7
	exitUnreachable  = 8
	exitNoSpace      = 9
	exitOplogRolled  = 10
	exitChanged      = 11
	exitSharded      = 12
	exitDrillFailed  = 13
)

// exitFor is the exit code for an error code of keepslot's (errcode.Of of
// a local error, or the code in the agent's answer).
func exitFor(c errcode.Code) int {
	switch c {
	case errcode.OK:
		return exitOK
	case errcode.EmptyPassword, errcode.Invalid:
		return exitUsage
	case errcode.NotBackupNode:
		return exitNotBackup
	case errcode.InProgress, errcode.SlotOccupied, errcode.Exists, errcode.DuplicateKey:
		return exitBusy
	case errcode.NoBackup:
		return exitNoBackup
	case errcode.WrongPassword, errcode.Corrupt, errcode.CountMismatch:
		return exitBadBackup
	case errcode.Unauthorized:
		return exitUnauthorized
	case errcode.Unreachable:
		return exitUnreachable
	case errcode.InsufficientSpace:
		return exitNoSpace
	case errcode.OplogRollover:
		return exitOplogRolled
	case errcode.SourceChanged:
		return exitChanged
	case errcode.Sharded:
		return exitSharded
	case errcode.DrillFailed:
		return exitDrillFailed
	default:
		return exitError
	}
}

// codedError is an error with the exit code it ends the program with.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &codedError{code: code, err: err} }

func usageErrorf(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(report(os.Stderr, err))
	}
}

// report writes err to w as keepslotctl reports an error, after its name
// once, and returns the exit code it ends with.
func report(w io.Writer, err error) int {
	fmt.Fprintf(w, "keepslotctl: %v\n", err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}
