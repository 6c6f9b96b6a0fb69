package restore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestUpdateOps checks which writes each form of update entry becomes.
func TestUpdateOps(t *testing.T) {
	filter := raw(t, bson.D{{Key: "_id", Value: int32(1)}})
	kinds := func(ops []writeOp) []string {
		var out []string
		for _, o := range ops {
			switch m := o.model.(type) {
			case *mongo.ReplaceOneModel:
				out = append(out, "replace "+ext(t, m.Replacement))
			case *mongo.UpdateOneModel:
				require.True(t, *m.Upsert, "updates are upserts")
				out = append(out, "update "+ext(t, m.Update))
			default:
				out = append(out, "truncate "+o.trunc.Path)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		o    bson.D
		want []string
	}{
		{"operators", bson.D{{Key: "$v", Value: int32(1)}, {Key: "$set", Value: bson.D{{Key: "a", Value: int32(1)}}}, {Key: "$unset", Value: bson.D{{Key: "b", Value: true}}}},
			[]string{"update " + ext(t, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: int32(1)}}}, {Key: "$unset", Value: bson.D{{Key: "b", Value: true}}}})}},
		{"FerretDB's whole document", bson.D{{Key: "$v", Value: int32(1)}, {Key: "$set", Value: bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: int32(2)}}}},
			[]string{"replace " + ext(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: int32(2)}})}},
		{"a $set of another _id is no whole document", bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: int64(1)}}}},
			[]string{"update " + ext(t, bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: int64(1)}}}})}},
		{"replacement", bson.D{{Key: "_id", Value: int32(1)}, {Key: "z", Value: "y"}},
			[]string{"replace " + ext(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "z", Value: "y"}})}},
		{"diff", bson.D{{Key: "$v", Value: int32(2)}, {Key: "diff", Value: bson.D{{Key: "sarr", Value: bson.D{{Key: "a", Value: true}, {Key: "l", Value: int32(0)}}}, {Key: "u", Value: bson.D{{Key: "a", Value: int32(3)}}}}}},
			[]string{"truncate arr", "update " + ext(t, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: int32(3)}}}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := updateOps(filter, raw(t, tc.o))
			require.NoError(t, err)
			assert.Equal(t, tc.want, kinds(ops))
		})
	}
	_, err := updateOps(filter, raw(t, bson.D{{Key: "$v", Value: int32(2)}}))
	assert.ErrorIs(t, err, ErrCorrupt, "a $v: 2 update without its diff")
}

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
