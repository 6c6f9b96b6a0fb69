package backup

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
)

// Toggle is a setting that is on, off, or left to its default, which the
// field that holds it documents.
type Toggle int

// The values of a Toggle.
const (
	Auto Toggle = iota // the default
	On
	Off
)

// String returns "auto", "on" or "off".
func (t Toggle) String() string {
	switch t {
	case Auto:
		return "auto"
	case On:
		return "on"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Toggle(%d)", int(t))
}

// MarshalText returns String's text, so that a Toggle can be a flag
// (flag.TextVar) or a field of a configuration file.
func (t Toggle) MarshalText() ([]byte, error) {
	if t < Auto || t > Off {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, t)
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses "auto", "on" or "off"; anything else is ErrInvalid.
func (t *Toggle) UnmarshalText(b []byte) error {
	switch string(b) {
	case "auto", "":
		*t = Auto
	case "on":
		*t = On
	case "off":
		*t = Off
	default:
		return fmt.Errorf("%w: %q is not auto, on or off", ErrInvalid, b)
	}
	return nil
}

// OplogSpan is the oplog a backup captured: the entries with Start <= ts
// <= End, of which Entries are in the backup. Restored with replay, the
// backup is consistent as of End.
type OplogSpan struct {
	Start, End bson.Timestamp
	Entries    int64
}

// spanJSON is the JSON shape of an OplogSpan: timestamps as {"t":…,"i":…},
// as manifest.json has them.
type spanJSON struct {
	Start   tsJSON `json:"start"`
	End     tsJSON `json:"end"`
	Entries int64  `json:"entries"`
}

type tsJSON struct {
	T uint32 `json:"t"`
	I uint32 `json:"i"`
}

// MarshalJSON encodes s with its timestamps as {"t":…,"i":…}.
func (s OplogSpan) MarshalJSON() ([]byte, error) {
	return json.Marshal(spanJSON{Start: tsJSON{s.Start.T, s.Start.I}, End: tsJSON{s.End.T, s.End.I}, Entries: s.Entries})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (s *OplogSpan) UnmarshalJSON(b []byte) error {
	var j spanJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = OplogSpan{Start: bson.Timestamp{T: j.Start.T, I: j.Start.I}, End: bson.Timestamp{T: j.End.T, I: j.End.I}, Entries: j.Entries}
	return nil
}

// The oplog namespace of a replica set member.
const (
	oplogDB   = "local"
	oplogColl = "oplog.rs"
)

// replayable reports whether the writes to namespace ns are captured and
// replayed: not those to local and config, nor to system collections (users
// and roles are restored from their backup, not from the oplog; time-series
// buckets are not replayed).
func replayable(ns string) bool {
	db, coll, ok := strings.Cut(ns, ".")
	return ok && db != "" && coll != "" && !skippedDatabases[db] && !strings.HasPrefix(coll, "system.") && coll != "$cmd"
}

// entry is an oplog entry, or an operation nested in an applyOps.
type entry struct {
	ts    bson.Timestamp // zero for nested operations
	op    string         // i, u, d, c, n
	ns    string
	o, o2 bson.Raw
	raw   bson.Raw
}

// parseEntry reads the fields of an entry that replay uses, checking their
// types. nested entries (inside applyOps) carry no timestamp.
func parseEntry(raw bson.Raw, nested bool) (entry, error) {
	e := entry{raw: raw}
	if err := raw.Validate(); err != nil {
		return e, fmt.Errorf("oplog entry is not a BSON document: %w", err)
	}
	var ok bool
	if e.op, ok = raw.Lookup("op").StringValueOK(); !ok {
		return e, fmt.Errorf("oplog entry has no op string")
	}
	if !nested {
		t, i, ok := raw.Lookup("ts").TimestampOK()
		if !ok {
			return e, fmt.Errorf("oplog entry has no ts timestamp")
		}
		e.ts = bson.Timestamp{T: t, I: i}
	}
	if e.op == "n" {
		return e, nil
	}
	if e.ns, ok = raw.Lookup("ns").StringValueOK(); !ok {
		return e, fmt.Errorf("oplog entry %s has no ns string", e.describe())
	}
	if e.o, ok = raw.Lookup("o").DocumentOK(); !ok {
		return e, fmt.Errorf("oplog entry %s has no o document", e.describe())
	}
	if v, err := raw.LookupErr("o2"); err == nil {
		if e.o2, ok = v.DocumentOK(); !ok {
			return e, fmt.Errorf("oplog entry %s has an o2 that is no document", e.describe())
		}
	}
	return e, nil
}

func (e entry) describe() string {
	if e.ts.IsZero() {
		return fmt.Sprintf("(op %q on %s)", e.op, e.ns)
	}
	return fmt.Sprintf("(op %q on %s at %d.%d)", e.op, e.ns, e.ts.T, e.ts.I)
}

// command returns the name of a command entry's command: the first key of
// its o.
func (e entry) command() string {
	elems, err := e.o.Elements()
	if err != nil || len(elems) == 0 {
		return ""
	}
	return elems[0].Key()
}

// db is the database of the entry's namespace.
func (e entry) db() string {
	db, _, _ := strings.Cut(e.ns, ".")
	return db
}

// target is the namespace a command entry acts on: its database and the
// collection its command names, "" when the command names none.
func (e entry) target() string {
	name, ok := e.o.Lookup(e.command()).StringValueOK()
	if !ok || name == "" {
		return ""
	}
	return e.db() + "." + name
}

// txnKey identifies the transaction an applyOps or commit/abort entry
// belongs to: its lsid and txnNumber; ok is false outside a transaction.
func (e entry) txnKey() (string, bool) {
	lsid, err := e.raw.LookupErr("lsid")
	if err != nil {
		return "", false
	}
	n, err := e.raw.LookupErr("txnNumber")
	if err != nil {
		return "", false
	}
	return string(lsid.Value) + "/" + string(n.Value), true
}

// prevTS is the timestamp of the previous entry of the entry's transaction
// (prevOpTime.ts), zero for its first.
func (e entry) prevTS() bson.Timestamp {
	t, i, _ := e.raw.Lookup("prevOpTime", "ts").TimestampOK()
	return bson.Timestamp{T: t, I: i}
}

// flag reports whether the boolean field name of o is true.
func flag(o bson.Raw, name string) bool {
	b, ok := o.Lookup(name).BooleanOK()
	return ok && b
}

func tsString(ts bson.Timestamp) string { return fmt.Sprintf("%d.%d", ts.T, ts.I) }

// addStatusMeta records the oplog span and the notes of a backup in the
// metadata of its slot, for Status.
func addStatusMeta(meta map[string]string, oplog *archive.OplogStats, notes []string) {
	if oplog != nil {
		meta["oplog_start"] = tsString(oplog.Start)
		meta["oplog_end"] = tsString(oplog.End)
		meta["oplog_entries"] = strconv.FormatInt(oplog.Entries, 10)
	}
	if len(notes) > 0 {
		b, _ := json.Marshal(notes) // a slice of strings always marshals
		meta["notes"] = string(b)
	}
}

// statusMeta reads back what addStatusMeta recorded.
func statusMeta(meta map[string]string) (*OplogSpan, []string) {
	var span *OplogSpan
	start, err1 := parseTS(meta["oplog_start"])
	end, err2 := parseTS(meta["oplog_end"])
	n, err3 := strconv.ParseInt(meta["oplog_entries"], 10, 64)
	if err1 == nil && err2 == nil && err3 == nil {
		span = &OplogSpan{Start: start, End: end, Entries: n}
	}
	var notes []string
	if s := meta["notes"]; s != "" {
		_ = json.Unmarshal([]byte(s), &notes)
	}
	return span, notes
}

func parseTS(s string) (bson.Timestamp, error) {
	t, i, ok := strings.Cut(s, ".")
	if !ok {
		return bson.Timestamp{}, fmt.Errorf("timestamp %q is not T.I", s)
	}
	tv, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return bson.Timestamp{}, err
	}
	iv, err := strconv.ParseUint(i, 10, 32)
	if err != nil {
		return bson.Timestamp{}, err
	}
	return bson.Timestamp{T: uint32(tv), I: uint32(iv)}, nil
}
