package pitr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/store"
)

func ts(t, i uint32) bson.Timestamp { return bson.Timestamp{T: t, I: i} }

// crafted is a remote that holds, for node n1 under keepslot/, base
// backups and slices described in memory.
type crafted struct {
	t      *testing.T
	remote store.Remote
	at     Location
}

func newCrafted(t *testing.T) *crafted {
	r := store.MemoryRemote()
	return &crafted{t: t, remote: r, at: Location{Remote: r, Prefix: "keepslot", Node: "n1"}}
}

func (c *crafted) put(key string, meta map[string]string) {
	c.t.Helper()
	_, err := c.remote.Put(context.Background(), key, bytes.NewReader([]byte("x")), store.Info{Name: key, Meta: meta})
	require.NoError(c.t, err)
}

// base puts a backup consistent as of end.
func (c *crafted) base(name string, end bson.Timestamp) string {
	span, err := json.Marshal(archive.OplogSpan{Start: ts(end.T-10, 1), End: end})
	require.NoError(c.t, err)
	key := "keepslot/n1/" + name
	c.put(key, map[string]string{"oplog": string(span)})
	return key
}

// slice puts a slice of [from, until) after prevUntil, with gap recorded.
func (c *crafted) slice(from, until, prevUntil bson.Timestamp, gap string) string {
	s := Slice{From: from, Until: until, Prev: prevUntil, Gap: gap}
	key := sliceKey("keepslot/n1/", from, until)
	c.put(key, s.meta())
	return key
}

func (c *crafted) scan() *Coverage {
	c.t.Helper()
	cov, err := Scan(context.Background(), c.at)
	require.NoError(c.t, err)
	return cov
}

// TestCoverage works out the windows, gaps and plans of a remote with two
// base backups, slices with a recorded gap, a missing slice, two slicers'
// overlapping slices, and objects that are neither.
func TestCoverage(t *testing.T) {
	c := newCrafted(t)
	b1 := c.base("backup-1.tar.gz", ts(100, 5))
	b2 := c.base("backup-2.tar.gz", ts(300, 1))
	c.put("keepslot/n1/backup-0.tar.gz", nil) // captured no oplog: no base
	c.put("keepslot/n1/oplog/README", nil)    // no slice
	c.put("keepslot/n2/"+"backup-9.tar.gz", nil)
	s1 := c.slice(ts(100, 6), ts(180, 0), ts(100, 6), "")
	s1b := c.slice(ts(100, 6), ts(200, 0), ts(100, 6), "") // another slicer's, overlapping
	s2 := c.slice(ts(180, 0), ts(250, 0), ts(180, 0), "")
	s3 := c.slice(ts(260, 3), ts(400, 0), ts(250, 0), "the oplog rolled over")
	c.slice(ts(450, 0), ts(500, 0), ts(450, 0), "") // after a missing slice [400, 450)

	cov := c.scan()
	require.Len(t, cov.Bases, 2)
	assert.Equal(t, b1, cov.Bases[0].Key)
	assert.Len(t, cov.Slices, 5)
	assert.Equal(t, s1, cov.Slices[0].Key, "by start, then end")
	assert.Equal(t, []string{"keepslot/n1/oplog/README"}, cov.Foreign)
	assert.Equal(t, ts(500, 0), cov.Until)
	assert.Equal(t, []Window{{From: ts(100, 5), Until: ts(250, 0)}, {From: ts(300, 1), Until: ts(400, 0)}}, cov.Windows)
	assert.Equal(t, "1970-01-01T00:01:40Z .. 1970-01-01T00:04:09Z", cov.Windows[0].String())
	require.Len(t, cov.Gaps, 2)
	assert.Equal(t, Gap{From: ts(250, 0), Until: ts(260, 3), Reason: "the oplog rolled over"}, cov.Gaps[0])
	assert.Equal(t, ts(400, 0), cov.Gaps[1].From)
	assert.Equal(t, ts(450, 0), cov.Gaps[1].Until)
	assert.Equal(t, "keepslot/n1/oplog/0000000400.0000000000-0000000450.0000000000.bson", cov.Gaps[1].Missing)
	assert.Contains(t, cov.Gaps[1].Reason, cov.Gaps[1].Missing)
	assert.Equal(t, 10*time.Second, cov.Lag(time.Unix(510, 0)))

	for _, tc := range []struct {
		limit  bson.Timestamp
		base   string
		slices []string
		why    string // of ErrNotCovered
	}{
		{limit: ts(100, 6), base: b1},                                    // the base backup's own point
		{limit: ts(150, 0), base: b1, slices: []string{s1b}},             // the longer of the overlapping
		{limit: ts(250, 0), base: b1, slices: []string{s1b, s2}},         // up to the end of a window
		{limit: ts(250, 1), why: "continued by slices up to 250:0 only"}, // in the recorded gap
		{limit: ts(300, 2), base: b2},
		{limit: ts(350, 0), base: b2, slices: []string{s3}},
		{limit: ts(420, 0), why: "Gap: 1970-01-01T00:06:40Z .. 1970-01-01T00:07:30Z"}, // the missing slice
		{limit: ts(100, 5), why: "no base backup on the remote is older than it"},
	} {
		p, err := cov.Plan(tc.limit)
		if tc.why != "" {
			require.ErrorIs(t, err, ErrNotCovered, "limit %v", tc.limit)
			assert.Contains(t, err.Error(), tc.why)
			assert.Contains(t, err.Error(), "Restorable windows: 1970-01-01T00:01:40Z .. 1970-01-01T00:04:09Z (100:5 .. 250:0); 1970-01-01T00:05:00Z .. 1970-01-01T00:06:39Z (300:1 .. 400:0)")
			continue
		}
		require.NoError(t, err, "limit %v", tc.limit)
		assert.Equal(t, tc.base, p.Base.Key, "limit %v", tc.limit)
		var keys []string
		for _, s := range p.Slices {
			keys = append(keys, s.Key)
		}
		assert.Equal(t, tc.slices, keys, "limit %v", tc.limit)
	}

	// Without base backups there is no window, however many slices.
	c = newCrafted(t)
	c.slice(ts(100, 6), ts(180, 0), ts(100, 6), "")
	cov = c.scan()
	assert.Empty(t, cov.Windows)
	_, err := cov.Plan(ts(150, 0))
	assert.ErrorContains(t, err, "No window is restorable")
}

// TestPrune deletes the slices that end before the oldest base backup's
// point, and none when there is no base backup; a dry run deletes nothing.
func TestPrune(t *testing.T) {
	c := newCrafted(t)
	old1 := c.slice(ts(50, 0), ts(90, 0), ts(0, 0), "")
	old2 := c.slice(ts(90, 0), ts(100, 6), ts(90, 0), "")
	keep1 := c.slice(ts(100, 6), ts(150, 0), ts(100, 6), "")
	res, err := Prune(context.Background(), c.at, false)
	require.NoError(t, err)
	assert.Equal(t, []string{old1, old2, keep1}, res.Keep, "no base backup: every slice is kept")

	c.base("backup-1.tar.gz", ts(100, 5))
	c.base("backup-2.tar.gz", ts(140, 1))
	res, err = Prune(context.Background(), c.at, true)
	require.NoError(t, err)
	assert.True(t, res.DryRun)
	assert.Equal(t, []string{old1, old2}, res.Delete)
	assert.Equal(t, []string{keep1}, res.Keep)
	assert.Len(t, c.scan().Slices, 3, "a dry run deletes nothing")

	res, err = Prune(context.Background(), c.at, false)
	require.NoError(t, err)
	assert.Equal(t, []string{old1, old2}, res.Delete)
	cov := c.scan()
	require.Len(t, cov.Slices, 1)
	assert.Equal(t, keep1, cov.Slices[0].Key)
	assert.Len(t, cov.Windows, 1, "the oldest base backup's window is whole")
}

// TestRestoreTarget checks how a target becomes the oplog limit.
func TestRestoreTarget(t *testing.T) {
	at := time.Date(2026, 12, 2, 17, 59, 0, 500e6, time.UTC)
	l, err := (&RestoreOptions{Time: at}).limit()
	require.NoError(t, err)
	assert.Equal(t, ts(uint32(at.Unix())+1, 0), l, "a time includes its whole second")
	l, err = (&RestoreOptions{Timestamp: ts(7, 3)}).limit()
	require.NoError(t, err)
	assert.Equal(t, ts(7, 3), l, "a timestamp is the limit, exclusive")
	_, err = (&RestoreOptions{Time: at, Timestamp: ts(7, 3)}).limit()
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = (&RestoreOptions{}).limit()
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = Restore(context.Background(), Location{}, []byte("pw"), &RestoreOptions{Timestamp: ts(1, 1)})
	assert.ErrorIs(t, err, ErrInvalid, "no server")
	assert.ErrorContains(t, err, "Client or URI")
	_, err = Restore(context.Background(), Location{}, []byte("pw"), &RestoreOptions{Timestamp: ts(1, 1), Restore: restore.Options{DryRun: true}})
	assert.ErrorIs(t, err, ErrInvalid, "no remote")
	assert.ErrorContains(t, err, "no remote")

	for in, want := range map[string]bson.Timestamp{"17": ts(17, 0), "17:4": ts(17, 4)} {
		got, err := ParseTimestamp(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "x", "1:", "1:2:3", "-1", "4294967296"} {
		_, err := ParseTimestamp(in)
		assert.True(t, errors.Is(err, ErrInvalid), in)
	}
}

// TestLagInTheFuture: slices that end after the clock's now are an error
// in the status, not a lag below zero that no alert on lag catches.
func TestLagInTheFuture(t *testing.T) {
	key, err := cipher.NewKey([]byte("pw"), testnode.LowKDF)
	require.NoError(t, err)
	s, err := New(Config{Conn: conn.Config{URI: "mongodb://127.0.0.1:1"}, Location: Location{Remote: store.MemoryRemote(), Node: "n"}, Key: key})
	require.NoError(t, err)
	s.st.Until = ts(uint32(time.Now().Add(90*time.Second).Unix()), 0)
	st := s.Status()
	assert.Zero(t, st.Lag)
	assert.Equal(t, errcode.Internal, st.Code)
	assert.Contains(t, st.Error, "ahead of this clock")
	s.st.Until = ts(uint32(time.Now().Add(-90*time.Second).Unix()), 0)
	st = s.Status()
	assert.Empty(t, st.Error)
	assert.Greater(t, st.Lag, 80*time.Second)
}
