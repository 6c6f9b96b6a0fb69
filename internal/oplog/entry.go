// Package oplog reads MongoDB oplog entries for the backup that captures
// them, the slices of package pitr and the restore that replays them: an
// entry's fields, the namespaces whose writes are captured and replayed,
// what of the oplog concerns a filter (Scope), and the translation of
// MongoDB 5.0's $v: 2 update diffs into update operators.
package oplog

import (
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/mongodb"
)

// Namespace is the oplog collection of a replica set member.
const Namespace = "local.oplog.rs"

// Replayable reports whether the writes to namespace ns are captured and
// replayed: not those to local and config, nor to system collections (users
// and roles are restored from their backup, not from the oplog; time-series
// buckets are not replayed).
func Replayable(ns string) bool {
	db, coll, ok := mongodb.Split(ns)
	return ok && !mongodb.ServerDatabase(db) && !strings.HasPrefix(coll, "system.") && coll != "$cmd"
}

// Entry is an oplog entry, or an operation nested in an applyOps.
type Entry struct {
	TS    bson.Timestamp // zero for nested operations
	Op    string         // i, u, d, c, n
	NS    string
	O, O2 bson.Raw
	Raw   bson.Raw
}

// Parse reads the fields of an entry that capture and replay use, checking
// their types. Nested entries (inside applyOps) carry no timestamp.
func Parse(raw bson.Raw, nested bool) (Entry, error) {
	e := Entry{Raw: raw}
	if err := raw.Validate(); err != nil {
		return e, fmt.Errorf("oplog entry is not a BSON document: %w", err)
	}
	var ok bool
	if e.Op, ok = raw.Lookup("op").StringValueOK(); !ok {
		return e, fmt.Errorf("oplog entry has no op string")
	}
	if !nested {
		t, i, ok := raw.Lookup("ts").TimestampOK()
		if !ok {
			return e, fmt.Errorf("oplog entry has no ts timestamp")
		}
		e.TS = bson.Timestamp{T: t, I: i}
	}
	if e.Op == "n" {
		return e, nil
	}
	if e.NS, ok = raw.Lookup("ns").StringValueOK(); !ok {
		return e, fmt.Errorf("oplog entry %s has no ns string", e)
	}
	if e.O, ok = raw.Lookup("o").DocumentOK(); !ok {
		return e, fmt.Errorf("oplog entry %s has no o document", e)
	}
	if v, err := raw.LookupErr("o2"); err == nil {
		if e.O2, ok = v.DocumentOK(); !ok {
			return e, fmt.Errorf("oplog entry %s has an o2 that is no document", e)
		}
	}
	return e, nil
}

// String describes the entry for a message: its op, namespace and time.
func (e Entry) String() string {
	if e.TS.IsZero() {
		return fmt.Sprintf("(op %q on %s)", e.Op, e.NS)
	}
	return fmt.Sprintf("(op %q on %s at %s)", e.Op, e.NS, FormatTS(e.TS))
}

// Command returns the name of a command entry's command: the first key of
// its o.
func (e Entry) Command() string {
	elems, err := e.O.Elements()
	if err != nil || len(elems) == 0 {
		return ""
	}
	return elems[0].Key()
}

// DB is the database of the entry's namespace.
func (e Entry) DB() string {
	db, _, _ := strings.Cut(e.NS, ".")
	return db
}

// Target is the namespace a command entry acts on: its database and the
// collection its command names, "" when the command names none.
func (e Entry) Target() string {
	name, ok := e.O.Lookup(e.Command()).StringValueOK()
	if !ok || name == "" {
		return ""
	}
	return e.DB() + "." + name
}

// TxnKey identifies the transaction an applyOps or commit/abort entry
// belongs to: its lsid and txnNumber; ok is false outside a transaction.
func (e Entry) TxnKey() (key string, ok bool) {
	lsid, err := e.Raw.LookupErr("lsid")
	if err != nil {
		return "", false
	}
	n, err := e.Raw.LookupErr("txnNumber")
	if err != nil {
		return "", false
	}
	return string(lsid.Value) + "/" + string(n.Value), true
}

// PrevTS is the timestamp of the previous entry of the entry's transaction
// (prevOpTime.ts), zero for its first.
func (e Entry) PrevTS() bson.Timestamp {
	t, i, _ := e.Raw.Lookup("prevOpTime", "ts").TimestampOK()
	return bson.Timestamp{T: t, I: i}
}

// Flag reports whether the boolean field name of doc is true.
func Flag(doc bson.Raw, name string) bool {
	b, ok := doc.Lookup(name).BooleanOK()
	return ok && b
}

// FormatTS formats ts for a message as mongorestore's --oplogLimit reads
// it: seconds, a colon and the ordinal.
func FormatTS(ts bson.Timestamp) string { return fmt.Sprintf("%d:%d", ts.T, ts.I) }

// ReplaceField returns doc with the value of its field key replaced by v.
func ReplaceField(doc bson.Raw, key string, v any) (bson.Raw, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	d := make(bson.D, 0, len(elems))
	for _, el := range elems {
		if el.Key() == key {
			d = append(d, bson.E{Key: key, Value: v})
		} else {
			d = append(d, bson.E{Key: el.Key(), Value: el.Value()})
		}
	}
	return bson.Marshal(d)
}

// WithoutKeys returns doc without the given top-level keys.
func WithoutKeys(doc bson.Raw, keys ...string) bson.D {
	elems, _ := doc.Elements()
	var d bson.D
	for _, e := range elems {
		if !slices.Contains(keys, e.Key()) {
			d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return d
}
