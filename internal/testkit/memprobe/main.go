// Command memprobe runs a backup or a restore in a process of its own, so
// that a test or a benchmark can read the peak resident memory (RSS) of a
// real program doing it, not only the heap of a test process, or kill it
// midway. Tests build it without the race detector, so that its resident
// size is what a real program needs. It needs Linux.
//
// Usage:
//
//	memprobe backup -uri URI -dir DIR [-mode keepslot|mongodump] [flags]
//	    back up a server's databases and print one line of JSON (see
//	    backup.go); run by backup's BenchmarkBackupRSS
//	memprobe sensitive craft FILE ENTRIES
//	    write a sensitive backup whose manifest has ENTRIES entries
//	memprobe sensitive restore FILE DIR
//	    restore FILE into DIR; print the process's peak resident size,
//	    "peak_rss_kib N", then "ok" or "error CODE MESSAGE"
//	memprobe sensitive craft-big FILE
//	    write a sensitive backup of a small secret and a 12 MiB one
//	memprobe sensitive stall FILE DIR
//	    restore FILE into DIR, print "staged" once a secret is staged,
//	    then stall until killed
//
// The sensitive subcommands are run by sensitive's process tests.
//
// Every backup it writes or reads has the password "memprobe": this is a
// measuring tool.
//
// The peak is VmHWM of /proc/self/status, read by the process itself: the
// rusage a parent reads when a child ends is no measure, since Go starts a
// child with vfork and Linux counts the parent's peak, at exec, in the
// child's ru_maxrss.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

const password = "memprobe"

// errUsage is a command line memprobe cannot run: it exits with status 2.
var errUsage = errors.New("usage: memprobe backup -uri URI -dir DIR [flags] | " +
	"memprobe sensitive craft FILE ENTRIES | craft-big FILE | restore FILE DIR | stall FILE DIR")

// usage is errUsage with what was wrong with the command line.
func usage(format string, args ...any) error {
	return fmt.Errorf("%s\n%w", fmt.Sprintf(format, args...), errUsage)
}

func main() {
	err := run(context.Background(), os.Args[1:])
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "memprobe:", err)
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "backup":
		return backupCmd(ctx, args[1:])
	case "sensitive":
		return sensitiveCmd(ctx, args[1:])
	}
	return errUsage
}
