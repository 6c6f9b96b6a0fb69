package pitr

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/store"
)

// Folder is the folder, beneath a node's prefix (Prefix/Node/), that holds
// its oplog slices: Prefix/Node/oplog/<from>-<until>.bson.
const Folder = "oplog/"

// Slice is an oplog slice on the remote: the entries in scope with
// From <= ts < Until, oldest first, in mongodump's oplog.bson form (BSON
// documents one after the other), then a no-op entry that repeats, under
// the encryption, what the slice's name and metadata say of it; the whole
// a cipher stream. A slice that holds no entry still says that the oplog
// held none in scope between From and Until.
type Slice struct {
	Key   string         `json:"key"`
	From  bson.Timestamp `json:"from"`
	Until bson.Timestamp `json:"until"`
	// Prev is the Until of the slice before it, as the slicer knew it: From,
	// unless a gap precedes the slice; zero for the first slice of a node.
	Prev bson.Timestamp `json:"prev"`
	// First and Last are the timestamps of its first and last entries; zero
	// when it holds none.
	First   bson.Timestamp `json:"first"`
	Last    bson.Timestamp `json:"last"`
	Entries int64          `json:"entries"`
	// Gap says why the oplog from Prev to From is in no slice, when the
	// slicer found that the oplog had rolled over.
	Gap string `json:"gap,omitempty"`
	// Node is the name of the node whose oplog it holds (Config.Location's
	// Node): a restore refuses a slice of another node.
	Node string `json:"node"`
	// PrevSHA256 is the SHA-256 of the stored bytes of the slice before it
	// in its chain, the one that ends at Prev; empty for the first slice of
	// a chain. Base is the name of the base backup a chain's first slice
	// continues, if any.
	PrevSHA256 string `json:"prev_sha256,omitempty"`
	Base       string `json:"base,omitempty"`
	// Lost are entries in scope that the slicer read but no slice holds:
	// logged after the slice for their time was stored, or too large for
	// a restore to read. Each is a gap of one entry, recorded in the next
	// slice stored after the slicer met it.
	Lost []Gap `json:"lost,omitempty"`
	// Size is the slice's size in bytes as stored; SHA256 is their hash,
	// known once the slice was stored or read whole.
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256,omitempty"`
	Created time.Time `json:"created"`
}

// FromTime is the wall-clock second of From.
func (s Slice) FromTime() time.Time { return tsTime(s.From) }

// UntilTime is the wall-clock second of Until.
func (s Slice) UntilTime() time.Time { return tsTime(s.Until) }

func tsTime(ts bson.Timestamp) time.Time { return time.Unix(int64(ts.T), 0).UTC() }

// next is the timestamp right after ts.
func next(ts bson.Timestamp) bson.Timestamp {
	if ts.I == math.MaxUint32 {
		return bson.Timestamp{T: ts.T + 1}
	}
	return bson.Timestamp{T: ts.T, I: ts.I + 1}
}

// prev is the timestamp right before ts (ts not zero).
func prev(ts bson.Timestamp) bson.Timestamp {
	if ts.I == 0 {
		return bson.Timestamp{T: ts.T - 1, I: math.MaxUint32}
	}
	return bson.Timestamp{T: ts.T, I: ts.I - 1}
}

// keyTS formats ts for a key: zero-padded, so that keys sort by time.
func keyTS(ts bson.Timestamp) string { return fmt.Sprintf("%010d.%010d", ts.T, ts.I) }

// sliceKey is the key of the slice [from, until) under the node prefix.
func sliceKey(nodePrefix string, from, until bson.Timestamp) string {
	return nodePrefix + Folder + keyTS(from) + "-" + keyTS(until) + ".bson"
}

var keyRE = regexp.MustCompile(`^(\d{10})\.(\d{10})-(\d{10})\.(\d{10})\.bson$`)

// parseKeyName reads from and until from a slice's name (the key's last
// segment).
func parseKeyName(name string) (from, until bson.Timestamp, ok bool) {
	m := keyRE.FindStringSubmatch(name)
	if m == nil {
		return from, until, false
	}
	n := make([]uint32, 4)
	for i := range n {
		v, err := strconv.ParseUint(m[i+1], 10, 32)
		if err != nil {
			return from, until, false
		}
		n[i] = uint32(v)
	}
	return bson.Timestamp{T: n[0], I: n[1]}, bson.Timestamp{T: n[2], I: n[3]}, true
}

// The metadata of a slice on the remote.
const (
	metaKind    = "kind"
	kindSlice   = "oplog-slice/1"
	metaFrom    = "from"
	metaUntil   = "until"
	metaPrev    = "prev"
	metaFirst   = "first"
	metaLast    = "last"
	metaEntries = "entries"
	metaGap     = "gap"
	metaNode    = "node"
	metaPrevSum = "prev-sha256"
	metaBase    = "base"
	metaLost    = "lost" // FROM-UNTIL,… of Lost, up to maxLostMeta
)

// maxLostMeta bounds the lost entries that a slice's metadata lists (the
// metadata of an S3 object holds 2 KiB); its own record holds them all.
const maxLostMeta = 40

func (s Slice) meta() map[string]string {
	m := map[string]string{
		metaKind:    kindSlice,
		metaFrom:    oplog.FormatTS(s.From),
		metaUntil:   oplog.FormatTS(s.Until),
		metaPrev:    oplog.FormatTS(s.Prev),
		metaEntries: strconv.FormatInt(s.Entries, 10),
	}
	if s.Entries > 0 {
		m[metaFirst], m[metaLast] = oplog.FormatTS(s.First), oplog.FormatTS(s.Last)
	}
	if s.Gap != "" {
		m[metaGap] = s.Gap
	}
	if s.Node != "" {
		m[metaNode] = s.Node
	}
	if s.PrevSHA256 != "" {
		m[metaPrevSum] = s.PrevSHA256
	}
	if s.Base != "" {
		m[metaBase] = s.Base
	}
	if len(s.Lost) > 0 {
		var b strings.Builder
		for i, g := range s.Lost[:min(len(s.Lost), maxLostMeta)] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(oplog.FormatTS(g.From) + "-" + oplog.FormatTS(g.Until))
		}
		m[metaLost] = b.String()
	}
	return m
}

// lostOf reads the lost entries that a slice's metadata lists, for a
// listing; the slice's own record says why each was lost.
func lostOf(key, v string) []Gap {
	var out []Gap
	for _, p := range strings.Split(v, ",") {
		a, b, ok := strings.Cut(p, "-")
		if !ok {
			continue
		}
		from, err1 := ParseTimestamp(a)
		until, err2 := ParseTimestamp(b)
		if err1 != nil || err2 != nil || !from.Before(until) {
			continue
		}
		out = append(out, Gap{From: from, Until: until,
			Reason: fmt.Sprintf("an entry in scope that the slicer read is in no slice (recorded in %s: logged late, or too large for a restore)", key)})
	}
	return out
}

// ParseTimestamp reads a timestamp written SECONDS:ORDINAL, as
// mongorestore's --oplogLimit takes it; SECONDS alone is SECONDS:0.
func ParseTimestamp(s string) (bson.Timestamp, error) {
	sec, ord, hasOrd := strings.Cut(s, ":")
	t, err := strconv.ParseUint(sec, 10, 32)
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("%w: %q is no timestamp: SECONDS or SECONDS:ORDINAL", ErrInvalid, s)
	}
	var i uint64
	if hasOrd {
		if i, err = strconv.ParseUint(ord, 10, 32); err != nil {
			return bson.Timestamp{}, fmt.Errorf("%w: %q is no timestamp: SECONDS or SECONDS:ORDINAL", ErrInvalid, s)
		}
	}
	return bson.Timestamp{T: uint32(t), I: uint32(i)}, nil
}

// sliceOf reads a slice from a remote entry: its name and metadata must
// agree; ok is false for any other object.
func sliceOf(e store.Entry) (Slice, bool) {
	m := e.Info.Meta
	if m[metaKind] != kindSlice {
		return Slice{}, false
	}
	from, until, ok := parseKeyName(e.Key[strings.LastIndex(e.Key, "/")+1:])
	if !ok || oplog.FormatTS(from) != m[metaFrom] || oplog.FormatTS(until) != m[metaUntil] || !from.Before(until) {
		return Slice{}, false
	}
	s := Slice{Key: e.Key, From: from, Until: until, Gap: m[metaGap], Size: e.Info.Size, Created: e.Info.Created,
		Node: m[metaNode], PrevSHA256: m[metaPrevSum], Base: m[metaBase]}
	if v := m[metaLost]; v != "" {
		s.Lost = lostOf(e.Key, v)
	}
	var err error
	if s.Prev, err = ParseTimestamp(m[metaPrev]); err != nil {
		return Slice{}, false
	}
	if s.Entries, err = strconv.ParseInt(m[metaEntries], 10, 64); err != nil || s.Entries < 0 {
		return Slice{}, false
	}
	if s.Entries > 0 {
		if s.First, err = ParseTimestamp(m[metaFirst]); err != nil {
			return Slice{}, false
		}
		if s.Last, err = ParseTimestamp(m[metaLast]); err != nil {
			return Slice{}, false
		}
	}
	return s, true
}

// record is a slice's own record of itself: the no-op entry that ends its
// plaintext, authenticated with its entries. It says what its name and
// metadata say, and binds it to its node and its chain.
type record struct {
	Msg        string         `bson:"msg"`
	From       bson.Timestamp `bson:"from"`
	Until      bson.Timestamp `bson:"until"`
	Prev       bson.Timestamp `bson:"prev"`
	Entries    int64          `bson:"entries"`
	Gap        string         `bson:"gap,omitempty"`
	Node       string         `bson:"node,omitempty"`
	PrevSHA256 string         `bson:"prev_sha256,omitempty"`
	Base       string         `bson:"base,omitempty"`
	Lost       []lostRecord   `bson:"lost,omitempty"`
}

type lostRecord struct {
	From   bson.Timestamp `bson:"from"`
	Until  bson.Timestamp `bson:"until"`
	Reason string         `bson:"reason"`
}

const recordMsg = "keepslot oplog slice"

// trailer is the no-op entry that ends a slice's plaintext: its record.
// Its timestamp is the last before Until, so that it sorts after every
// entry of the slice; restore and mongorestore pass no-ops over.
func (s Slice) trailer() ([]byte, error) {
	r := record{Msg: recordMsg, From: s.From, Until: s.Until, Prev: s.Prev, Entries: s.Entries, Gap: s.Gap,
		Node: s.Node, PrevSHA256: s.PrevSHA256, Base: s.Base}
	for _, g := range s.Lost {
		r.Lost = append(r.Lost, lostRecord{From: g.From, Until: g.Until, Reason: g.Reason})
	}
	return bson.Marshal(bson.D{
		{Key: "ts", Value: prev(s.Until)},
		{Key: "op", Value: "n"},
		{Key: "ns", Value: ""},
		{Key: "o", Value: r},
	})
}

// parseTrailer reads a slice's record from its last document.
func parseTrailer(raw bson.Raw) (record, error) {
	var t struct {
		Op string `bson:"op"`
		O  record `bson:"o"`
	}
	if err := bson.Unmarshal(raw, &t); err != nil || t.Op != "n" || t.O.Msg != recordMsg {
		return record{}, fmt.Errorf("it does not end with keepslot's slice record")
	}
	if !t.O.From.Before(t.O.Until) {
		return record{}, fmt.Errorf("its record gives an empty span, from %s until %s", oplog.FormatTS(t.O.From), oplog.FormatTS(t.O.Until))
	}
	return t.O, nil
}

// slice returns the slice as its record r says, with First and Last
// as its entries say.
func (r record) slice(key string, first, last bson.Timestamp) Slice {
	s := Slice{Key: key, From: r.From, Until: r.Until, Prev: r.Prev, Entries: r.Entries, Gap: r.Gap,
		Node: r.Node, PrevSHA256: r.PrevSHA256, Base: r.Base, First: first, Last: last}
	for _, g := range r.Lost {
		s.Lost = append(s.Lost, Gap{From: g.From, Until: g.Until, Reason: g.Reason})
	}
	return s
}

// differs says how the slice listed as s (its name and metadata) differs
// from a, the same slice as its own record and entries say; "" if not.
func (s Slice) differs(a Slice) string {
	switch {
	case s.From != a.From || s.Until != a.Until || s.Prev != a.Prev || s.Entries != a.Entries || s.Gap != a.Gap:
		return fmt.Sprintf("it records from %s until %s, previous %s, %d entries; its name and metadata say from %s until %s, previous %s, %d entries",
			oplog.FormatTS(a.From), oplog.FormatTS(a.Until), oplog.FormatTS(a.Prev), a.Entries,
			oplog.FormatTS(s.From), oplog.FormatTS(s.Until), oplog.FormatTS(s.Prev), s.Entries)
	case s.First != a.First || s.Last != a.Last:
		return fmt.Sprintf("its entries run from %s to %s; its metadata says from %s to %s",
			oplog.FormatTS(a.First), oplog.FormatTS(a.Last), oplog.FormatTS(s.First), oplog.FormatTS(s.Last))
	case s.Node != a.Node || s.PrevSHA256 != a.PrevSHA256 || s.Base != a.Base:
		return fmt.Sprintf("it records node %q, previous slice SHA-256 %q, base %q; its metadata says node %q, %q, %q",
			a.Node, a.PrevSHA256, a.Base, s.Node, s.PrevSHA256, s.Base)
	}
	return ""
}
