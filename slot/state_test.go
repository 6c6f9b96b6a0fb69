package slot

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/store"
)

// TestReadMeta checks that the oplog span and notes recorded with a backup
// are read back for its status.
func TestReadMeta(t *testing.T) {
	s := archive.OplogSpan{Start: bson.Timestamp{T: 1, I: 2}, End: bson.Timestamp{T: 3, I: 4}, Entries: 5}
	span, notes := readMeta(map[string]string{metaOplog: string(must(s.MarshalJSON())), metaNotes: `["a","b"]`})
	assert.Equal(t, &s, span)
	assert.Equal(t, []string{"a", "b"}, notes)
	assert.Equal(t, &s, OplogOf(store.Info{Meta: map[string]string{metaOplog: string(must(s.MarshalJSON()))}}))
	assert.Nil(t, OplogOf(store.Info{}))
	span, notes = readMeta(map[string]string{metaOplog: "1.2"})
	assert.Nil(t, span)
	assert.Nil(t, notes)
}
