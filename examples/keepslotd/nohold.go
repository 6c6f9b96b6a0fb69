//go:build !keepslotd_testhold

package main

import "github.com/keepslot/keepslot/store"

// testHold returns s: the agent as shipped has no test hold. A variant for
// tests, built with -tags keepslotd_testhold, has one (see hold.go).
func testHold(s store.Store) (store.Store, error) { return s, nil }
