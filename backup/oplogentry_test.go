package backup

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestOplogSpanJSON checks that a span survives JSON, as Status carries it.
func TestOplogSpanJSON(t *testing.T) {
	s := OplogSpan{Start: bson.Timestamp{T: 1, I: 2}, End: bson.Timestamp{T: 3, I: 4}, Entries: 5}
	b, err := s.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, `{"start":{"t":1,"i":2},"end":{"t":3,"i":4},"entries":5}`, string(b))
	var back OplogSpan
	require.NoError(t, back.UnmarshalJSON(b))
	assert.Equal(t, s, back)
	span, notes := statusMeta(map[string]string{"oplog_start": "1.2", "oplog_end": "3.4", "oplog_entries": "5", "notes": `["a","b"]`})
	assert.Equal(t, &s, span)
	assert.Equal(t, []string{"a", "b"}, notes)
	span, _ = statusMeta(map[string]string{"oplog_start": "1"})
	assert.Nil(t, span)
}
