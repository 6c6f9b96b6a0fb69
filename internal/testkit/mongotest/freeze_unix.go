//go:build unix

package mongotest

import (
	"syscall"
	"testing"
)

// Freezer returns functions that suspend (SIGSTOP) and resume (SIGCONT) an
// embedded server's process, to test what happens when the database stops
// answering without going away: its connections stay open, the kernel
// still accepts new ones, and nothing is answered. On Linux freeze returns
// once the process is stopped, so that no request sent after it is
// answered; elsewhere once the signal is sent. Both may be called from any
// goroutine, more than once. The server is resumed when the test ends,
// before the cleanup that talks to it. Freezer fails the test for a server
// given by URI, which no test may freeze: check Embedded first.
func (s *Server) Freezer(t testing.TB) (freeze, thaw func()) {
	t.Helper()
	if s.child == nil {
		t.Fatalf("mongotest: Freezer needs the embedded server; %s points at a shared one", EnvURI)
	}
	p := s.child.cmd.Process
	signal := func(sig syscall.Signal) {
		if err := p.Signal(sig); err != nil && !s.child.exited() {
			t.Errorf("mongotest: send %v to the embedded server: %v", sig, err)
		}
	}
	freeze = func() {
		signal(syscall.SIGSTOP)
		if err := waitStopped(p.Pid); err != nil && !s.child.exited() {
			t.Errorf("mongotest: wait for the embedded server to stop: %v", err)
		}
	}
	thaw = func() { signal(syscall.SIGCONT) }
	t.Cleanup(thaw)
	return freeze, thaw
}
