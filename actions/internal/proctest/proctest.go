// Package proctest holds test helpers for the actions that run processes:
// whether a process is still alive, and polling with a deadline for a
// condition such as a pid file a test script writes.
package proctest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Alive reports whether pid exists and is not a zombie (an orphan may stay
// a zombie when PID 1 of a container does not reap).
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// WaitFor polls cond every 10ms until it holds, and fails the test when it
// does not within d.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitForPID waits up to d for path to hold a process id and a newline
// (written as `echo $! > file`) and returns the id.
func WaitForPID(t testing.TB, what, path string, d time.Duration) int {
	t.Helper()
	var pid int
	WaitFor(t, what, d, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// WaitExited waits up to d for pid to be gone (or a zombie).
func WaitExited(t testing.TB, what string, pid int, d time.Duration) {
	t.Helper()
	WaitFor(t, fmt.Sprintf("%s (pid %d) to die", what, pid), d, func() bool { return !Alive(pid) })
}

// Receive returns the value that comes on ch within d, and fails the test
// when none does; what names the awaited event in the failure.
func Receive[T any](t testing.TB, what string, ch <-chan T, d time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
	}
	panic("unreachable")
}
