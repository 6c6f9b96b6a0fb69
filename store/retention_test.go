package store

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// copiesAt makes one verified copy per time, keyed by the time.
func copiesAt(times ...time.Time) []Entry {
	var c []Entry
	for _, t := range times {
		c = append(c, Entry{
			Key:  "n/" + t.Format("2006-01-02T15"),
			Info: Info{Created: t, MD5: "m", SHA256: "s"},
		})
	}
	return c
}

func keys(c []Entry) []string {
	out := []string{}
	for _, b := range c {
		out = append(out, b.Key[2:])
	}
	return out
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02T15", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRetentionSelect(t *testing.T) {
	// Two copies a day for 70 days, at 01:00 and 13:00, from 2026-01-01
	// (a Thursday).
	var times []time.Time
	start := at("2026-01-01T01")
	for d := range 70 {
		times = append(times, start.AddDate(0, 0, d), start.AddDate(0, 0, d).Add(12*time.Hour))
	}
	copies := copiesAt(times...)
	tests := []struct {
		name string
		r    Retention
		keep []string
	}{
		{"none keeps all", Retention{}, nil},
		{"last 3", Retention{Last: 3}, []string{"2026-03-11T13", "2026-03-11T01", "2026-03-10T13"}},
		{"daily 3", Retention{Daily: 3}, []string{"2026-03-11T13", "2026-03-10T13", "2026-03-09T13"}},
		// 2026-03-11 is a Wednesday; ISO weeks start on Monday.
		{"weekly 3", Retention{Weekly: 3}, []string{"2026-03-11T13", "2026-03-08T13", "2026-03-01T13"}},
		{"monthly 4", Retention{Monthly: 4}, []string{"2026-03-11T13", "2026-02-28T13", "2026-01-31T13"}},
		{"last 1, daily 2, monthly 2", Retention{Last: 1, Daily: 2, Monthly: 2},
			[]string{"2026-03-11T13", "2026-03-10T13", "2026-02-28T13"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep, drop := tt.r.split(copies)
			assert.Len(t, keep, max(len(tt.keep), len(copies)*boolInt(tt.keep == nil)))
			if tt.keep != nil {
				assert.Equal(t, tt.keep, keys(keep))
			}
			assert.Equal(t, len(copies), len(keep)+len(drop))
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The newest verified copy is kept even when every rule would drop it.
func TestRetentionKeepsNewestVerified(t *testing.T) {
	copies := copiesAt(at("2026-01-01T01"), at("2026-01-02T01"), at("2026-01-03T01"), at("2026-01-04T01"))
	copies[2].Info.MD5, copies[2].Info.SHA256 = "", "" // unverified
	copies[3].Info.MD5, copies[3].Info.SHA256 = "", "" // the newest: unverified
	keep, drop := Retention{Last: 1}.split(copies)
	assert.Equal(t, []string{"2026-01-04T01", "2026-01-02T01"}, keys(keep))
	assert.Equal(t, []string{"2026-01-03T01", "2026-01-01T01"}, keys(drop))
}

func TestPruneDryRunAndDelete(t *testing.T) {
	ctx := context.Background()
	remote := MemoryRemote()
	for i := range 5 {
		_, err := remote.Put(ctx, fmt.Sprintf("p/n/b%d", i), bytes.NewReader([]byte{byte(i)}),
			Info{Name: fmt.Sprint(i), Created: at("2026-01-01T01").AddDate(0, 0, i)})
		require.NoError(t, err)
	}
	// Objects in a folder beneath the node's (its oplog slices) are no
	// copies of it: Prune leaves them alone.
	_, err := remote.Put(ctx, "p/n/oplog/s0", bytes.NewReader([]byte{9}), Info{Created: at("2025-01-01T01")})
	require.NoError(t, err)
	res, err := Prune(ctx, remote, "p/n/", Retention{Last: 2, DryRun: true})
	require.NoError(t, err)
	assert.True(t, res.DryRun)
	assert.Equal(t, []string{"p/n/b4", "p/n/b3"}, res.Keep)
	assert.Equal(t, []string{"p/n/b2", "p/n/b1", "p/n/b0"}, res.Delete)
	l, err := remote.List(ctx, "")
	require.NoError(t, err)
	assert.Len(t, l, 6, "a dry run deletes nothing")

	res, err = Prune(ctx, remote, "p/n/", Retention{Last: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"p/n/b2", "p/n/b1", "p/n/b0"}, res.Delete)
	l, err = remote.List(ctx, "")
	require.NoError(t, err)
	assert.Len(t, l, 3)
	assert.Equal(t, "p/n/oplog/s0", l[2].Key)
}
