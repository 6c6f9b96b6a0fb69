package namespace_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keepslot/keepslot/namespace"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, ns string
		want        bool
	}{
		{"app.*", "app.users", true},
		{"app.*", "app.", true},
		{"app.*", "apps.users", false},
		{"*.users", "crm.users", true},
		{"*.users", "crm.users2", false},
		{"*", "a.b.c", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyycd", false},
		{"app.logs_*", "app.logs", false},
		{"app.us?rs", "app.users", false}, // ? is literal
		{"app.us?rs", "app.us?rs", true},
		{"app.[ab]", "app.a", false}, // [ is literal
		{"app.[ab]", "app.[ab]", true},
		{`app.\*`, "app.*", true},
		{`app.\*`, "app.x", false},
		{`app.\\*`, `app.\x`, true},
		{"exact.name", "exact.name", true},
		{"exact.name", "exact.names", false},
	} {
		f := namespace.Filter{Include: []string{tc.pattern}}
		if got := f.Match(tc.ns); got != tc.want {
			t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.ns, got, tc.want)
		}
	}
}

func TestFilter(t *testing.T) {
	f := namespace.Filter{Include: []string{"app.*", "crm.*"}, Exclude: []string{"*.secrets"}}
	for ns, want := range map[string]bool{"app.users": true, "crm.x": true, "shop.orders": false, "app.secrets": false} {
		if got := f.Match(ns); got != want {
			t.Errorf("Match(%q) = %v, want %v", ns, got, want)
		}
	}
	if !(namespace.Filter{}).Match("any.thing") {
		t.Error("an empty filter does not select everything")
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []string{"", `app.\`} {
		if err := (namespace.Filter{Exclude: []string{p}}).Validate(); !errors.Is(err, namespace.ErrBadPattern) {
			t.Errorf("Validate(%q) = %v, want ErrBadPattern", p, err)
		}
	}
	if err := (namespace.Filter{Include: []string{"a.[", "b.?", `c.\\`}}).Validate(); err != nil {
		t.Errorf("valid patterns refused: %v", err)
	}
	bad := namespace.Renames{{From: "app.*", To: "*.*"}}
	if err := bad.Validate(); !errors.Is(err, namespace.ErrBadPattern) {
		t.Errorf("a target with more wildcards than its source: %v", err)
	}
	if err := (namespace.Renames{{From: "*.*", To: "x.*"}}).Validate(); err != nil {
		t.Errorf("a target with fewer wildcards refused: %v", err)
	}
}

func TestRename(t *testing.T) {
	for _, tc := range []struct{ from, to, ns, want string }{
		{"app.*", "app2.*", "app.users", "app2.users"},
		{"*.users", "*.people", "crm.users", "crm.people"},
		{"*.*", "x_*.*", "a.b.c", "x_a.b.c"},
		{"*.*", "*_restored.*", "app.users", "app_restored.users"},
		{"app.users", "app.u", "app.users2", "app.users2"},
		{"app.users", "app.u", "app.users", "app.u"},
		{"app.u?", "app.v", "app.u?", "app.v"},
		{`app.\*`, "app.star", "app.*", "app.star"},
		{"*", "dry_*", "a.b", "dry_a.b"},
	} {
		if got := (namespace.Renames{{From: tc.from, To: tc.to}}).Apply(tc.ns); got != tc.want {
			t.Errorf("rename %q to %q of %q: %q, want %q", tc.from, tc.to, tc.ns, got, tc.want)
		}
	}
	first := namespace.Renames{{From: "app.users", To: "a.first"}, {From: "app.*", To: "a.*"}}
	if got := first.Apply("app.users"); got != "a.first" {
		t.Errorf("the first matching rename does not win: %q", got)
	}
}

// Restore options like mongorestore's --nsFrom and --nsTo.
func ExampleRenames_Apply() {
	renames := namespace.Renames{{From: "app.*", To: "app_restored.*"}}
	fmt.Println(renames.Apply("app.users"))
	fmt.Println(renames.Apply("crm.users"))
	// Output:
	// app_restored.users
	// crm.users
}

func ExampleFilter_Match() {
	f := namespace.Filter{Include: []string{"app.*"}, Exclude: []string{"app.cache_*"}}
	fmt.Println(f.Match("app.users"), f.Match("app.cache_sessions"), f.Match("crm.users"))
	// Output: true false false
}
