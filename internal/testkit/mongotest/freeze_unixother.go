//go:build unix && !linux

package mongotest

// waitStopped does not wait on this system: freeze returns once SIGSTOP
// is sent.
func waitStopped(int) error { return nil }
