package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// peakRSS returns VmHWM, the process's peak resident memory, in KiB.
func peakRSS() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w (memprobe needs Linux)", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("peak RSS: VmHWM %q: %w", rest, err)
			}
			return kib, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/self/status")
}
