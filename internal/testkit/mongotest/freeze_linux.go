//go:build linux

package mongotest

import "golang.org/x/sys/unix"

// waitStopped returns once the process pid, a child of this one, is
// stopped, leaving its state to be waited for by its owner (WNOWAIT). A
// SIGSTOP is delivered asynchronously: until then the process may still
// answer.
func waitStopped(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}
