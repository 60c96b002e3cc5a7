//go:build unix

package engine_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system, every thread: GC included)
// the process used so far. On a shared machine it measures the cost of
// work where wall time measures the neighbours too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
