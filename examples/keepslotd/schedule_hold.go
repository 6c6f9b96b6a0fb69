//go:build keepslotd_testhold

package main

import (
	"context"
	"fmt"
	"os"
)

// envScheduleHold: when set to a step's name, a scheduled run stops once
// that step's start is saved, prints "keepslotd: test hold: schedule at
// STEP" and waits until the agent stops, so that a test can kill it there.
const envScheduleHold = "KEEPSLOTD_TEST_SCHEDULE_HOLD"

func testScheduleHold() func(ctx context.Context, step string) {
	at := os.Getenv(envScheduleHold)
	if at == "" {
		return nil
	}
	return func(ctx context.Context, step string) {
		if step != at {
			return
		}
		fmt.Println("keepslotd: test hold: schedule at " + step)
		<-ctx.Done()
	}
}
