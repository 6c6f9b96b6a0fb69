//go:build !(linux || darwin || freebsd || netbsd || openbsd) || race

package chunk

// alloc returns Size bytes of the Go heap: elsewhere than on the systems
// of alloc_mmap.go, and with the race detector, which watches only the
// heap's memory.
func alloc() []byte { return make([]byte, 0, Size) }

// dealloc leaves b to the collector.
func dealloc([]byte) {}
