package pitr

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// Base is a base backup of a point-in-time restore: a node's exported copy
// that captured the oplog, consistent as of its Oplog.End.
type Base struct {
	Key   string            `json:"key"`
	Info  store.Info        `json:"-"`
	Oplog archive.OplogSpan `json:"oplog"`
}

// Point is the wall-clock second of the base's consistency point.
func (b Base) Point() time.Time { return tsTime(b.Oplog.End) }

// Window is a span that a restore can reach: from a base backup's
// consistency point, through the slices that continue it without a gap.
// A restore whose limit L (the oplog replayed up to, not including, L)
// has From < L <= Until is within it.
type Window struct {
	From  bson.Timestamp `json:"from"`  // the oldest base backup's consistency point in the window
	Until bson.Timestamp `json:"until"` // the end of the slices, exclusive
}

// FromTime is the wall-clock second of From: the earliest time of the
// window.
func (w Window) FromTime() time.Time { return tsTime(w.From) }

// UntilTime is the last wall-clock second the window holds whole, the one
// before Until's (which is exclusive): a restore to any time from
// FromTime up to UntilTime, inclusive, reaches it.
func (w Window) UntilTime() time.Time { return tsTime(w.Until).Add(-time.Second) }

// String gives the window as "2026-12-01T03:00:12Z .. 2026-12-02T17:59:41Z".
func (w Window) String() string {
	return w.FromTime().Format(time.RFC3339) + " .. " + w.UntilTime().Format(time.RFC3339)
}

// contains reports whether a restore with the limit l is within w.
func (w Window) contains(l bson.Timestamp) bool { return w.From.Before(l) && !w.Until.Before(l) }

// Gap is a span of the oplog between slices that no slice holds.
type Gap struct {
	From  bson.Timestamp `json:"from"`
	Until bson.Timestamp `json:"until"`
	// Reason says why: that the slicer found the oplog rolled over, or that
	// slices are missing from the remote.
	Reason string `json:"reason"`
	// Missing is the key of the slice that is missing, when the gap is
	// one missing slice's.
	Missing string `json:"missing,omitempty"`
}

// String describes the gap for a message.
func (g Gap) String() string {
	return fmt.Sprintf("%s .. %s (%s .. %s): %s", tsTime(g.From).Format(time.RFC3339), tsTime(g.Until).Format(time.RFC3339),
		oplog.FormatTS(g.From), oplog.FormatTS(g.Until), g.Reason)
}

// Coverage is what a node's remote holds for point-in-time restores: the
// base backups, the slices, the windows they make restorable and the gaps
// between the slices.
type Coverage struct {
	Bases   []Base   `json:"bases"`   // by consistency point
	Slices  []Slice  `json:"slices"`  // by From
	Windows []Window `json:"windows"` // by From, none overlapping
	Gaps    []Gap    `json:"gaps"`    // by From
	// Until is the end of the newest slice: the oplog is in slices up to
	// it (zero when there is none).
	Until bson.Timestamp `json:"until"`
	// Foreign are the keys in the slices' folder that are no slices.
	Foreign []string `json:"foreign,omitempty"`
}

// Lag is how far the slices trail now: the time since Until, zero when
// there is no slice.
func (c *Coverage) Lag(now time.Time) time.Duration {
	if c.Until.IsZero() {
		return 0
	}
	return max(0, now.Sub(tsTime(c.Until)))
}

// Scan lists what the node's remote holds under at's Prefix/Node/: its
// exported backups that captured the oplog and its oplog slices, and
// works out the restorable windows and the gaps.
func Scan(ctx context.Context, at Location) (*Coverage, error) {
	prefix, err := at.NodePrefix()
	if err != nil {
		return nil, err
	}
	entries, err := at.Remote.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("pitr: list %s: %w", prefix, err)
	}
	c := &Coverage{}
	for _, e := range entries {
		rest := strings.TrimPrefix(e.Key, prefix)
		switch {
		case strings.HasPrefix(rest, Folder):
			if s, ok := sliceOf(e); ok {
				c.Slices = append(c.Slices, s)
			} else {
				c.Foreign = append(c.Foreign, e.Key)
			}
		case !strings.Contains(rest, "/"):
			if span := slot.OplogOf(e.Info); span != nil {
				c.Bases = append(c.Bases, Base{Key: e.Key, Info: e.Info, Oplog: *span})
			}
		}
	}
	c.compute()
	return c, nil
}

// compute sorts the bases and slices and works out the windows and gaps.
func (c *Coverage) compute() {
	slices.SortFunc(c.Bases, func(a, b Base) int {
		return cmp.Or(a.Oplog.End.Compare(b.Oplog.End), cmp.Compare(a.Key, b.Key))
	})
	slices.SortFunc(c.Slices, func(a, b Slice) int {
		return cmp.Or(a.From.Compare(b.From), a.Until.Compare(b.Until), cmp.Compare(a.Key, b.Key))
	})
	c.Windows, c.Gaps, c.Until = nil, nil, bson.Timestamp{}
	var cur bson.Timestamp
	for i, s := range c.Slices {
		if i > 0 && cur.Before(s.From) {
			c.Gaps = append(c.Gaps, gapsBefore(s, cur)...)
		}
		if i == 0 || cur.Before(s.Until) {
			cur = s.Until
		}
	}
	c.Until = cur
	var lost []Gap // entries the slicer read but no slice holds: a window ends at the first
	for _, s := range c.Slices {
		lost = append(lost, s.Lost...)
	}
	c.Gaps = append(c.Gaps, lost...)
	slices.SortStableFunc(c.Gaps, func(a, b Gap) int { return a.From.Compare(b.From) })
	for _, b := range c.Bases {
		w := Window{From: b.Oplog.End, Until: c.reach(next(b.Oplog.End))}
		for _, g := range lost {
			if b.Oplog.End.Before(g.From) && g.From.Before(w.Until) {
				w.Until = g.From
			}
		}
		if !next(w.From).Before(w.Until) {
			continue // the backup's own point only
		}
		if n := len(c.Windows); n > 0 && !c.Windows[n-1].Until.Before(w.From) {
			if c.Windows[n-1].Until.Before(w.Until) {
				c.Windows[n-1].Until = w.Until
			}
			continue
		}
		c.Windows = append(c.Windows, w)
	}
}

// gapsBefore describes the span from cur to s.From, which no slice holds.
func gapsBefore(s Slice, cur bson.Timestamp) []Gap {
	missing := func(from, until bson.Timestamp) Gap {
		g := Gap{From: from, Until: until}
		// The slicer names a slice by the span it holds, so the key of a
		// lone missing slice is known.
		dir := s.Key[:strings.LastIndex(s.Key, "/")+1]
		g.Missing = dir + keyTS(from) + "-" + keyTS(until) + ".bson"
		g.Reason = fmt.Sprintf("no slice on the remote holds the oplog from %s to %s: the slice %s (or the slices it was cut into) is missing; was it deleted?",
			oplog.FormatTS(from), oplog.FormatTS(until), g.Missing)
		return g
	}
	if s.Gap == "" || !s.Prev.Before(s.From) {
		return []Gap{missing(cur, s.From)}
	}
	recorded := Gap{From: later(s.Prev, cur), Until: s.From, Reason: s.Gap}
	if cur.Before(s.Prev) {
		return []Gap{missing(cur, s.Prev), recorded}
	}
	return []Gap{recorded}
}

// later returns the later of a and b.
func later(a, b bson.Timestamp) bson.Timestamp {
	if a.After(b) {
		return a
	}
	return b
}

// reach returns how far the slices hold the oplog without a gap from x:
// x itself when no slice holds x.
func (c *Coverage) reach(x bson.Timestamp) bson.Timestamp {
	cur := x
	for {
		best := cur
		for _, s := range c.Slices {
			if !cur.Before(s.From) && cur.Before(s.Until) && best.Before(s.Until) {
				best = s.Until
			}
		}
		if best == cur {
			return cur
		}
		cur = best
	}
}

// Plan is what a point-in-time restore uses: a base backup, restored with
// its own oplog, and the slices whose entries it replays after, before
// Limit.
type Plan struct {
	Base   Base           `json:"base"`
	Slices []Slice        `json:"slices"`
	Limit  bson.Timestamp `json:"limit"`
}

// Plan picks, for a restore that replays the oplog up to, not including,
// limit, the newest base backup whose consistency point is before limit
// and the slices after it up to limit. It fails with ErrNotCovered, listing
// the windows and gaps, when none reaches limit.
func (c *Coverage) Plan(limit bson.Timestamp) (*Plan, error) {
	var base *Base
	for i := len(c.Bases) - 1; i >= 0; i-- {
		if c.Bases[i].Oplog.End.Before(limit) {
			base = &c.Bases[i]
			break
		}
	}
	if base == nil {
		return nil, c.notCovered(limit, "no base backup on the remote is older than it")
	}
	p := &Plan{Base: *base, Limit: limit}
	cur := next(base.Oplog.End)
	for cur.Before(limit) {
		i := -1
		for j, s := range c.Slices {
			if !cur.Before(s.From) && cur.Before(s.Until) && (i < 0 || c.Slices[i].Until.Before(s.Until)) {
				i = j
			}
		}
		if i < 0 {
			return nil, c.notCovered(limit, fmt.Sprintf("the newest base backup before it, %s (consistent as of %s, %s), is continued by slices up to %s only",
				base.Key, base.Point().Format(time.RFC3339), oplog.FormatTS(base.Oplog.End), oplog.FormatTS(cur)))
		}
		p.Slices = append(p.Slices, c.Slices[i])
		cur = c.Slices[i].Until
	}
	return p, nil
}

// notCovered is ErrNotCovered for limit, listing the windows and the gaps.
func (c *Coverage) notCovered(limit bson.Timestamp, why string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the oplog up to %s (%s): %s. ", ErrNotCovered.Error(), oplog.FormatTS(limit), tsTime(limit).Format(time.RFC3339), why)
	if len(c.Windows) == 0 {
		b.WriteString("No window is restorable: the remote needs a base backup that captured the oplog, and the slices after it")
	} else {
		b.WriteString("Restorable windows:")
		for _, w := range c.Windows {
			fmt.Fprintf(&b, " %s (%s .. %s);", w, oplog.FormatTS(w.From), oplog.FormatTS(w.Until))
		}
	}
	for _, g := range c.Gaps {
		fmt.Fprintf(&b, " Gap: %s.", g)
	}
	return &coded{msg: strings.TrimSuffix(b.String(), ";"), err: ErrNotCovered}
}

// coded is an error with its own message that matches err.
type coded struct {
	msg string
	err error
}

func (e *coded) Error() string { return e.msg }
func (e *coded) Unwrap() error { return e.err }
