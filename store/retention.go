package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Retention says which copies of a node's backups to keep on the remote, in
// the grandfather-father-son manner of restic's forget: a copy is kept when
// any rule keeps it, and the others are deleted. Days, weeks (ISO weeks)
// and months are those of the copies' creation times in UTC. A Retention
// with no rule set keeps everything.
//
// Whatever the rules say, the newest verified copy (one whose MD5 and
// SHA-256 the remote records, as Export's copies have) is never deleted.
type Retention struct {
	Last    int // keep the newest Last copies
	Daily   int // keep the newest copy of each of the Daily latest days that have one
	Weekly  int // ... of each of the Weekly latest weeks
	Monthly int // ... of each of the Monthly latest months

	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
}

// PruneResult is what Prune kept and deleted (or, in a dry run, would
// delete), by key.
type PruneResult struct {
	Keep   []string `json:"keep"`
	Delete []string `json:"delete"`
	DryRun bool     `json:"dry_run,omitempty"`
	Error  string   `json:"error,omitempty"` // set when pruning failed
}

func (r Retention) any() bool { return r.Last > 0 || r.Daily > 0 || r.Weekly > 0 || r.Monthly > 0 }

// split splits copies into those r keeps and those it drops, each newest
// first.
func (r Retention) split(copies []Entry) (keep, drop []Entry) {
	c := slices.Clone(copies)
	slices.SortStableFunc(c, func(a, b Entry) int {
		return cmp.Or(b.Info.Created.Compare(a.Info.Created), cmp.Compare(b.Key, a.Key))
	})
	if !r.any() {
		return c, nil
	}
	kept := make([]bool, len(c))
	for i := range min(r.Last, len(c)) {
		kept[i] = true
	}
	bucket := func(n int, period func(time.Time) string) {
		seen := map[string]bool{}
		for i, b := range c {
			if len(seen) >= n {
				return
			}
			p := period(b.Info.Created.UTC())
			if !seen[p] {
				seen[p] = true
				kept[i] = true
			}
		}
	}
	bucket(r.Daily, func(t time.Time) string { return t.Format("2006-01-02") })
	bucket(r.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) })
	bucket(r.Monthly, func(t time.Time) string { return t.Format("2006-01") })
	for i, b := range c {
		if verified(b.Info) {
			kept[i] = true // the newest verified copy
			break
		}
	}
	for i, b := range c {
		if kept[i] {
			keep = append(keep, b)
		} else {
			drop = append(drop, b)
		}
	}
	return keep, drop
}

// verified reports whether the remote records the copy's hashes.
func verified(i Info) bool { return i.MD5 != "" && i.SHA256 != "" }

// Prune applies r to the copies directly under prefix on remote (a node's
// copies, prefix ending in "/"; not the objects in folders beneath it, such
// as the node's oplog slices) and deletes those it drops, unless r.DryRun.
// It goes on past a failed delete and returns every failure.
func Prune(ctx context.Context, remote Remote, prefix string, r Retention) (PruneResult, error) {
	res := PruneResult{DryRun: r.DryRun, Keep: []string{}, Delete: []string{}}
	listed, err := remote.List(ctx, prefix)
	if err != nil {
		return res, fmt.Errorf("store: retention: listing %s: %w", prefix, err)
	}
	entries := listed[:0:0]
	for _, e := range listed {
		if !strings.Contains(strings.TrimPrefix(e.Key, prefix), "/") {
			entries = append(entries, e)
		}
	}
	keep, drop := r.split(entries)
	for _, k := range keep {
		res.Keep = append(res.Keep, k.Key)
	}
	var errs []error
	for _, d := range drop {
		if !r.DryRun {
			if err := remote.Delete(ctx, d.Key); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, fmt.Errorf("store: retention: deleting %s: %w", d.Key, err))
				continue
			}
		}
		res.Delete = append(res.Delete, d.Key)
	}
	return res, errors.Join(errs...)
}
