package store

import (
	"os"
	"syscall"
)

const syncFileRangeWrite = 0x2 // SYNC_FILE_RANGE_WRITE

// startWriteback asks the kernel to start writing out n bytes of f from off,
// without waiting for them. It is a hint; errors surface at fsync.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
	})
}
