// Package namespace selects and renames MongoDB namespaces ("db.collection")
// by pattern, as mongorestore's --nsInclude, --nsExclude, --nsFrom and
// --nsTo do.
//
// A pattern is matched against a whole namespace. In a pattern, "*" matches
// any run of characters, dots included, and every other character matches
// itself, "?" and "[" too; "\*" matches a "*" and "\\" a "\":
//
//	app.*         every collection of database app
//	*.users       the collection users of every database
//	app.logs_*    app.logs_2026, app.logs_ (an empty run), not app.logs
//	*             every namespace
//
// Both a [Filter] and a [Rename] read patterns this way.
package namespace

import (
	"fmt"
	"strings"

	"github.com/keepslot/keepslot/errcode"
)

// ErrBadPattern reports a malformed pattern or rename.
var ErrBadPattern = errcode.New(errcode.Invalid, "namespace: malformed pattern")

// Filter selects namespaces: a namespace is selected when Include is empty
// or one of its patterns matches it, and none of Exclude's does.
type Filter struct {
	Include []string
	Exclude []string
}

// Match reports whether f selects the namespace ns.
func (f Filter) Match(ns string) bool {
	return (len(f.Include) == 0 || matchAny(f.Include, ns)) && !matchAny(f.Exclude, ns)
}

// Validate reports the first malformed pattern of f.
func (f Filter) Validate() error {
	for _, p := range f.Include {
		if err := validate(p); err != nil {
			return err
		}
	}
	for _, p := range f.Exclude {
		if err := validate(p); err != nil {
			return err
		}
	}
	return nil
}

// matchAny reports whether one of patterns matches the namespace ns.
func matchAny(patterns []string, ns string) bool {
	for _, p := range patterns {
		if _, ok := parse(p).match(ns); ok {
			return true
		}
	}
	return false
}

// Rename maps the namespaces that From matches to To: the runs that the
// "*"s of From match fill the "*"s of To in order. {From: "app.*",
// To: "app_restored.*"} maps app.users to app_restored.users.
type Rename struct {
	From, To string
}

// Renames are tried in order; the first whose From matches a namespace
// renames it.
type Renames []Rename

// Apply returns ns renamed by the first of rs whose From matches it, or ns
// unchanged when none does.
func (rs Renames) Apply(ns string) string {
	for _, r := range rs {
		runs, ok := parse(r.From).match(ns)
		if !ok {
			continue
		}
		var b strings.Builder
		to := parse(r.To)
		for i, lit := range to.literals {
			if i > 0 {
				b.WriteString(runs[i-1])
			}
			b.WriteString(lit)
		}
		return b.String()
	}
	return ns
}

// Validate reports the first malformed rename: a malformed pattern, or a To
// with more "*"s than its From has runs to fill them.
func (rs Renames) Validate() error {
	for _, r := range rs {
		if err := validate(r.From); err != nil {
			return err
		}
		if err := validate(r.To); err != nil {
			return err
		}
		if from, to := len(parse(r.From).literals), len(parse(r.To).literals); to > from {
			return fmt.Errorf("%w: the rename of %q to %q has %d wildcards in its target, %d in its source", ErrBadPattern, r.From, r.To, to-1, from-1)
		}
	}
	return nil
}

// pattern is a parsed pattern: the literal text around its "*"s, one more
// than there are "*"s.
type pattern struct {
	literals []string
}

func parse(p string) pattern {
	var lits []string
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '\\'):
			i++
			b.WriteByte(p[i])
		case c == '*':
			lits = append(lits, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return pattern{literals: append(lits, b.String())}
}

func validate(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: a pattern is empty", ErrBadPattern)
	case strings.HasSuffix(p, `\`) && !strings.HasSuffix(p, `\\`):
		return fmt.Errorf("%w: the pattern %q ends in an unescaped backslash", ErrBadPattern, p)
	}
	return nil
}

// match matches s against the whole pattern and returns the runs that its
// "*"s match, each as long as it can be, left to right.
func (p pattern) match(s string) ([]string, bool) {
	first := p.literals[0]
	if !strings.HasPrefix(s, first) {
		return nil, false
	}
	if len(p.literals) == 1 {
		return nil, s == first
	}
	return matchRuns(p.literals[1:], s[len(first):])
}

// matchRuns matches s against a "*" followed by lits[0], then a "*"
// followed by lits[1], and so on.
func matchRuns(lits []string, s string) ([]string, bool) {
	lit, rest := lits[0], lits[1:]
	for end := len(s) - len(lit); end >= 0; end-- { // longest run first
		if !strings.HasPrefix(s[end:], lit) {
			continue
		}
		tail := s[end+len(lit):]
		if len(rest) == 0 {
			if tail == "" {
				return []string{s[:end]}, true
			}
			continue
		}
		if runs, ok := matchRuns(rest, tail); ok {
			return append([]string{s[:end]}, runs...), true
		}
	}
	return nil, false
}
