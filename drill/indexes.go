package drill

import (
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// compareIndexes returns the names of the expected indexes found with the
// same key and uniqueness, and what differs of the others. Other options
// are not compared: FerretDB keeps name, key and unique, drops sparse, and
// refuses partial and TTL indexes (a restore then fails on them).
func compareIndexes(expected, found []bson.Raw) (names, diffs []string) {
	byName := map[string]bson.Raw{}
	for _, ix := range found {
		if name, ok := ix.Lookup("name").StringValueOK(); ok {
			byName[name] = ix
		}
	}
	for _, want := range expected {
		name, _ := want.Lookup("name").StringValueOK()
		got, ok := byName[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("index %s %s is missing", name, indexKey(want)))
		case indexKey(got) != indexKey(want):
			diffs = append(diffs, fmt.Sprintf("index %s has key %s, the backup's %s", name, indexKey(got), indexKey(want)))
		case unique(got) != unique(want):
			diffs = append(diffs, fmt.Sprintf("index %s %s is unique: %t, in the backup: %t", name, indexKey(want), unique(got), unique(want)))
		default:
			names = append(names, name)
		}
	}
	return names, diffs
}

// indexKey writes an index's key as {field: direction, ...}, numbers
// compared by value whatever their BSON type (1, 1.0 and 1L are one key).
func indexKey(ix bson.Raw) string {
	key, ok := ix.Lookup("key").DocumentOK()
	if !ok {
		return "{}"
	}
	elems, err := key.Elements()
	if err != nil {
		return "{?}"
	}
	var b strings.Builder
	b.WriteString("{")
	for i, e := range elems {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(e.Key()))
		b.WriteString(": ")
		v := e.Value()
		if f, ok := v.AsFloat64OK(); ok {
			b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		} else if s, ok := v.StringValueOK(); ok {
			b.WriteString(strconv.Quote(s))
		} else {
			b.WriteString(v.String())
		}
	}
	b.WriteString("}")
	return b.String()
}

// unique reports an index's unique option.
func unique(ix bson.Raw) bool {
	v, err := ix.LookupErr("unique")
	if err != nil {
		return false
	}
	if b, ok := v.BooleanOK(); ok {
		return b
	}
	f, ok := v.AsFloat64OK()
	return ok && f != 0
}
