package drill

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func ix(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	assert.NoError(t, err)
	return b
}

func TestCompareIndexes(t *testing.T) {
	key := func(f string, v any) bson.E { return bson.E{Key: "key", Value: bson.D{{Key: f, Value: v}}} }
	name := func(n string) bson.E { return bson.E{Key: "name", Value: n} }
	uniq := bson.E{Key: "unique", Value: true}
	expected := []bson.Raw{
		ix(t, bson.D{{Key: "v", Value: 2}, key("_id", int32(1)), name("_id_")}),
		ix(t, bson.D{key("a", int32(1)), name("a_1"), uniq}),
		ix(t, bson.D{key("b", -1.0), name("b_-1"), {Key: "sparse", Value: true}}),
		ix(t, bson.D{key("c", "hashed"), name("c_hashed")}),
		ix(t, bson.D{key("d", int32(1)), name("d_1")}),
		ix(t, bson.D{key("e", int32(1)), name("e_1"), uniq}),
	}
	found := []bson.Raw{
		ix(t, bson.D{key("_id", int64(1)), name("_id_")}),   // 1L is 1
		ix(t, bson.D{key("a", 1.0), name("a_1"), uniq}),     // 1.0 is 1
		ix(t, bson.D{key("b", int32(-1)), name("b_-1")}),    // sparse is not compared
		ix(t, bson.D{key("c", "hashed"), name("c_hashed")}), // a string key
		ix(t, bson.D{key("d", int32(-1)), name("d_1")}),     // another direction
		ix(t, bson.D{key("e", int32(1)), name("e_1")}),      // no longer unique
		ix(t, bson.D{key("f", int32(1)), name("f_1")}),      // an index of the target's own
	}
	names, diffs := compareIndexes(expected, found)
	assert.Equal(t, []string{"_id_", "a_1", "b_-1", "c_hashed"}, names)
	assert.Equal(t, []string{
		`index d_1 has key {"d": -1}, the backup's {"d": 1}`,
		`index e_1 {"e": 1} is unique: false, in the backup: true`,
	}, diffs)

	names, diffs = compareIndexes(expected[1:2], nil)
	assert.Empty(t, names)
	assert.Equal(t, []string{`index a_1 {"a": 1} is missing`}, diffs)
	// A malformed spec from a hostile archive is reported, not a panic.
	_, diffs = compareIndexes([]bson.Raw{{1, 2, 3}}, nil)
	assert.Len(t, diffs, 1)
}
