package drill

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"time"

	"github.com/keepslot/keepslot/restore"
)

// Report is what a drill did and found. It marshals to JSON with stable
// snake_case names; durations are in nanoseconds.
type Report struct {
	// Backup is "main" (Run) or "sensitive" (RunSensitive).
	Backup string `json:"backup"`
	// Passed is true when nothing differs (see the package documentation
	// for what that proves). A clean-up that fails after a pass leaves it
	// true, and the drill returns the clean-up's error.
	Passed  bool      `json:"passed"`
	Started time.Time `json:"started"`
	// FileBytes is the size of the backup file drilled.
	FileBytes int64 `json:"file_bytes"`
	// RestoreTime is the time to restore (RTO): from the start of the
	// restore to its end, the oplog replay included and the drill's own
	// checks left out.
	RestoreTime time.Duration `json:"restore_time_ns"`
	// CheckTime is what the drill's read-back and comparisons took beyond
	// the restore.
	CheckTime time.Duration `json:"check_time_ns"`
	// Documents and Bytes are the documents (secrets) restored and their
	// BSON (file) bytes; the rates are per second of RestoreTime.
	Documents          int64   `json:"documents"`
	Bytes              int64   `json:"bytes"`
	BytesPerSecond     float64 `json:"bytes_per_second"`
	DocumentsPerSecond float64 `json:"documents_per_second"`

	Namespaces []NamespaceReport `json:"namespaces,omitempty"`
	// Replay is what replaying the backup's oplog did; nil when it held
	// none.
	Replay  *ReplayReport  `json:"replay,omitempty"`
	Secrets []SecretReport `json:"secrets,omitempty"`

	// Differences lists what differs; empty when Passed.
	Differences []Difference `json:"differences,omitempty"`
	// Error is the error the drill ended with, if any.
	Error string `json:"error,omitempty"`
	// Dropped names the databases (or, for a sensitive backup, the
	// directory) the drill removed afterwards.
	Dropped []string `json:"dropped,omitempty"`
	// Notes say what the drill did not check and why.
	Notes []string `json:"notes,omitempty"`
}

// NamespaceReport is what a drill expected of one namespace, from the
// backup, and found on the target.
type NamespaceReport struct {
	Namespace string `json:"namespace"` // in the backup
	Target    string `json:"target"`    // on the target server
	Type      string `json:"type"`      // "collection", "view", ...
	// Documents and digests: see the package documentation for the
	// digest. A view's are not compared (it holds no documents of its
	// own), nor those of a namespace the restore did not reach.
	ExpectedDocuments int64  `json:"expected_documents"`
	FoundDocuments    int64  `json:"found_documents"`
	ExpectedDigest    string `json:"expected_digest"`
	FoundDigest       string `json:"found_digest"`
	Bytes             int64  `json:"bytes"` // of the backup's documents
	// ExpectedIndexes names the indexes of the backup's metadata;
	// FoundIndexes those of them found on the target with the same key
	// and uniqueness.
	ExpectedIndexes []string `json:"expected_indexes"`
	FoundIndexes    []string `json:"found_indexes"`
	// Checked is false when the restore failed before the namespace
	// could be read back.
	Checked bool `json:"checked"`
}

// ReplayReport is what replaying a backup's oplog did (see
// restore.OplogReport, whose counts these are).
type ReplayReport struct {
	Entries      int64 `json:"entries"`
	Inserts      int64 `json:"inserts"`
	Updates      int64 `json:"updates"`
	Deletes      int64 `json:"deletes"`
	Commands     int64 `json:"commands"`
	Transactions int64 `json:"transactions"`
	Skipped      int64 `json:"skipped"`
	Conflicts    int64 `json:"conflicts"`
	Uncommitted  int64 `json:"uncommitted"`
	Incomplete   int64 `json:"incomplete"`
}

func replayReport(o *restore.OplogReport) *ReplayReport {
	if o == nil {
		return nil
	}
	return &ReplayReport{
		Entries: o.Entries, Inserts: o.Inserts, Updates: o.Updates, Deletes: o.Deletes, Commands: o.Commands,
		Transactions: o.Transactions, Skipped: o.Skipped, Conflicts: o.Conflicts, Uncommitted: o.Uncommitted, Incomplete: o.Incomplete,
	}
}

// SecretReport is one secret of a sensitive backup: its manifest's size
// and sha256, and those of the file restored.
type SecretReport struct {
	Name           string `json:"name"`
	ExpectedSize   int64  `json:"expected_size"`
	FoundSize      int64  `json:"found_size"`
	ExpectedSHA256 string `json:"expected_sha256"`
	FoundSHA256    string `json:"found_sha256"`
}

// rates fills the throughput from RestoreTime.
func (r *Report) rates() {
	if s := r.RestoreTime.Seconds(); s > 0 {
		r.BytesPerSecond = float64(r.Bytes) / s
		r.DocumentsPerSecond = float64(r.Documents) / s
	}
}

// digest is an order-independent digest of documents: the sum, modulo
// 2^256, of each document's SHA-256 read as a big-endian number, held in
// four 64-bit words, most significant first.
type digest [4]uint64

// add adds the SHA-256 of doc.
func (d *digest) add(doc []byte) {
	sum := sha256.Sum256(doc)
	var carry uint64
	for i := 3; i >= 0; i-- {
		d[i], carry = bits.Add64(d[i], binary.BigEndian.Uint64(sum[i*8:]), carry)
	}
}

// String is the digest as 64 hex digits.
func (d digest) String() string {
	var b [32]byte
	for i, w := range d {
		binary.BigEndian.PutUint64(b[i*8:], w)
	}
	return hex.EncodeToString(b[:])
}
