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
	// Size is the slice's size in bytes as stored.
	Size    int64     `json:"size"`
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
)

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
	return m
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
	s := Slice{Key: e.Key, From: from, Until: until, Gap: m[metaGap], Size: e.Info.Size, Created: e.Info.Created}
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

// trailer is the no-op entry that ends a slice's plaintext: what the
// slice's name and metadata say of it, authenticated with its entries.
// Its timestamp is the last before Until, so that it sorts after every
// entry of the slice; restore and mongorestore pass no-ops over.
func (s Slice) trailer() ([]byte, error) {
	o := bson.D{
		{Key: "msg", Value: "keepslot oplog slice"},
		{Key: "from", Value: s.From},
		{Key: "until", Value: s.Until},
		{Key: "prev", Value: s.Prev},
		{Key: "entries", Value: s.Entries},
	}
	if s.Gap != "" {
		o = append(o, bson.E{Key: "gap", Value: s.Gap})
	}
	return bson.Marshal(bson.D{
		{Key: "ts", Value: prev(s.Until)},
		{Key: "op", Value: "n"},
		{Key: "ns", Value: ""},
		{Key: "o", Value: o},
	})
}

// checkTrailer reports how the trailer raw differs from what s says.
func (s Slice) checkTrailer(raw bson.Raw) error {
	var t struct {
		TS bson.Timestamp `bson:"ts"`
		Op string         `bson:"op"`
		O  struct {
			Msg     string         `bson:"msg"`
			From    bson.Timestamp `bson:"from"`
			Until   bson.Timestamp `bson:"until"`
			Prev    bson.Timestamp `bson:"prev"`
			Entries int64          `bson:"entries"`
			Gap     string         `bson:"gap"`
		} `bson:"o"`
	}
	if err := bson.Unmarshal(raw, &t); err != nil || t.Op != "n" || t.O.Msg != "keepslot oplog slice" {
		return fmt.Errorf("it does not end with keepslot's slice record")
	}
	if t.O.From != s.From || t.O.Until != s.Until || t.O.Prev != s.Prev || t.O.Entries != s.Entries || t.O.Gap != s.Gap {
		return fmt.Errorf("it records from %s until %s, previous %s, %d entries, its name and metadata from %s until %s, previous %s, %d entries",
			oplog.FormatTS(t.O.From), oplog.FormatTS(t.O.Until), oplog.FormatTS(t.O.Prev), t.O.Entries,
			oplog.FormatTS(s.From), oplog.FormatTS(s.Until), oplog.FormatTS(s.Prev), s.Entries)
	}
	return nil
}
