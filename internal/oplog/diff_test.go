package oplog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	require.NoError(t, err)
	return b
}

// ext renders v as relaxed Extended JSON, for comparisons that show what
// differs.
func ext(t *testing.T, v any) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, false, false)
	require.NoError(t, err)
	return string(b)
}

// TestDiffUpdates checks the translation of $v: 2 diffs into update
// operators, section by section.
func TestDiffUpdates(t *testing.T) {
	type D = bson.D
	type E = bson.E
	for _, tc := range []struct {
		name  string
		diff  D
		set   D
		unset D
		trunc []Truncation
		err   string
	}{
		{name: "fields", diff: D{{Key: "d", Value: D{{Key: "gone", Value: false}}}, {Key: "u", Value: D{{Key: "a", Value: int32(2)}}}, {Key: "i", Value: D{{Key: "new", Value: "x"}}}},
			set: D{{Key: "a", Value: int32(2)}, {Key: "new", Value: "x"}}, unset: D{{Key: "gone", Value: ""}}},
		{name: "nested object", diff: D{{Key: "sa", Value: D{{Key: "sb", Value: D{{Key: "u", Value: D{{Key: "c", Value: true}}}, {Key: "d", Value: D{{Key: "e", Value: false}}}}}}}},
			set: D{{Key: "a.b.c", Value: true}}, unset: D{{Key: "a.b.e", Value: ""}}},
		{name: "array elements", diff: D{{Key: "sarr", Value: D{{Key: "a", Value: true}, {Key: "u0", Value: int32(9)}, {Key: "u12", Value: "z"}, {Key: "s3", Value: D{{Key: "u", Value: D{{Key: "x", Value: int32(1)}}}}}}}},
			set: D{{Key: "arr.0", Value: int32(9)}, {Key: "arr.12", Value: "z"}, {Key: "arr.3.x", Value: int32(1)}}},
		{name: "array truncated", diff: D{{Key: "sarr", Value: D{{Key: "a", Value: true}, {Key: "l", Value: int32(2)}, {Key: "u1", Value: int32(5)}}}},
			set: D{{Key: "arr.1", Value: int32(5)}}, trunc: []Truncation{{Path: "arr", Length: 2}}},
		{name: "array in array, outer first", diff: D{{Key: "sm", Value: D{{Key: "a", Value: true}, {Key: "l", Value: int32(3)}, {Key: "s1", Value: D{{Key: "a", Value: true}, {Key: "l", Value: int64(0)}}}}}},
			trunc: []Truncation{{Path: "m", Length: 3}, {Path: "m.1", Length: 0}}},
		{name: "array in object in array", diff: D{{Key: "so", Value: D{{Key: "a", Value: true}, {Key: "s0", Value: D{{Key: "stags", Value: D{{Key: "a", Value: true}, {Key: "u2", Value: "t"}}}}}}}},
			set: D{{Key: "o.0.tags.2", Value: "t"}}},
		{name: "binary section", diff: D{{Key: "b", Value: D{{Key: "bin", Value: D{}}}}}, err: "binary diffs"},
		{name: "unknown section", diff: D{{Key: "x", Value: D{}}}, err: "unknown section"},
		{name: "bad index", diff: D{{Key: "sarr", Value: D{{Key: "a", Value: true}, {Key: "ufoo", Value: int32(1)}}}}, err: "no array index"},
		{name: "dotted name", diff: D{{Key: "u", Value: D{{Key: "a.b", Value: int32(1)}}}}, err: "holds a dot"},
		{name: "negative length", diff: D{{Key: "sarr", Value: D{{Key: "a", Value: true}, {Key: "l", Value: int32(-1)}}}}, err: "not a count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := DiffUpdates(raw(t, tc.diff))
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			var trunc []Truncation
			var upd D
			for i, s := range steps {
				if s.Trunc != nil {
					assert.Nil(t, upd, "truncations come first")
					trunc = append(trunc, *s.Trunc)
				} else {
					assert.Equal(t, len(steps)-1, i, "one update, last")
					upd = s.Update
				}
			}
			assert.Equal(t, tc.trunc, trunc)
			var want D
			if len(tc.set) > 0 {
				want = append(want, E{Key: "$set", Value: tc.set})
			}
			if len(tc.unset) > 0 {
				want = append(want, E{Key: "$unset", Value: tc.unset})
			}
			assert.Equal(t, ext(t, want), ext(t, upd))
		})
	}
}

// TestTruncation checks that a truncation cuts the array at its path, and
// does nothing where there is nothing to cut.
func TestTruncation(t *testing.T) {
	doc := raw(t, bson.D{{Key: "arr", Value: bson.A{1, 2, 3}}, {Key: "o", Value: bson.A{bson.D{{Key: "tags", Value: bson.A{"a", "b"}}}}}, {Key: "s", Value: "x"}})
	assert.Equal(t, ext(t, bson.D{{Key: "$set", Value: bson.D{{Key: "arr", Value: bson.A{int32(1)}}}}}), ext(t, Truncation{Path: "arr", Length: 1}.Update(doc)))
	assert.Equal(t, ext(t, bson.D{{Key: "$set", Value: bson.D{{Key: "o.0.tags", Value: bson.A{}}}}}), ext(t, Truncation{Path: "o.0.tags", Length: 0}.Update(doc)))
	assert.Nil(t, Truncation{Path: "arr", Length: 3}.Update(doc), "short enough")
	assert.Nil(t, Truncation{Path: "s", Length: 0}.Update(doc), "no array")
	assert.Nil(t, Truncation{Path: "missing.x", Length: 0}.Update(doc))
	assert.Nil(t, Truncation{Path: "o.5.tags", Length: 0}.Update(doc))
}
