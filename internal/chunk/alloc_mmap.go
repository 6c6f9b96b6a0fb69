//go:build (linux || darwin || freebsd || netbsd || openbsd) && !race

package chunk

import "syscall"

// alloc returns Size bytes of a new anonymous mapping, outside the Go
// heap: zeroed, and faulted in as they are written.
func alloc() []byte {
	b, err := syscall.Mmap(-1, 0, Size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		// The system is out of memory or of mappings, where the Go heap
		// would be too: fail as an allocation would.
		panic("chunk: cannot map " + err.Error())
	}
	return b[:0]
}

// dealloc unmaps b, a chunk of alloc's that no one holds.
func dealloc(b []byte) {
	if err := syscall.Munmap(b[:cap(b)]); err != nil {
		panic("chunk: cannot unmap " + err.Error())
	}
}
