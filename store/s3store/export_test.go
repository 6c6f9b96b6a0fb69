package s3store

import (
	"context"
	"time"
)

// SetClock makes s observe locks' leases on now instead of time.Now.
// Tests only.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// RenewLock renews the lock s holds now, as its renewal goroutine does
// every third of the lease. Tests only.
func RenewLock(s *Store) error { return s.renewLock(context.Background()) }
