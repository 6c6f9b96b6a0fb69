//go:build !unix

package mongotest

import "testing"

// Freezer would return functions that suspend and resume the embedded
// server's process; this system has no SIGSTOP, so it skips the test.
func (s *Server) Freezer(t testing.TB) (freeze, thaw func()) {
	t.Helper()
	t.Skip("mongotest: freezing the embedded server needs SIGSTOP, which this system lacks")
	return func() {}, func() {}
}
