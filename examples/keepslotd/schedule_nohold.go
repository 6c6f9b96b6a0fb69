//go:build !keepslotd_testhold

package main

import "context"

// testScheduleHold returns nil: the agent as shipped has no test hold. A
// variant for tests, built with -tags keepslotd_testhold, has one (see
// schedule_hold.go).
func testScheduleHold() func(ctx context.Context, step string) { return nil }
