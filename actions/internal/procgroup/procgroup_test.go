package procgroup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/actions/internal/proctest"
)

func TestRunOutcome(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		exit     int
		signaled bool
		signal   syscall.Signal
		startErr error
		output   string
	}{
		{"success", []string{"sh", "-c", "echo out; echo err >&2"}, 0, false, 0, nil, "out\nerr\n"},
		{"exit status", []string{"sh", "-c", "exit 3"}, 3, false, 0, nil, ""},
		{"killed by signal", []string{"sh", "-c", "kill -KILL $$"}, -1, true, syscall.SIGKILL, nil, ""},
		{"missing program", []string{"/nonexistent/prog"}, -1, false, 0, os.ErrNotExist, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cmd := exec.CommandContext(ctx, tc.argv[0], tc.argv[1:]...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			o := Run(ctx, cmd, 0)
			if o.ExitCode != tc.exit || o.Signaled != tc.signaled || o.Signal != tc.signal {
				t.Errorf("outcome = %+v, want exit %d signaled %v %v", o, tc.exit, tc.signaled, tc.signal)
			}
			if tc.startErr == nil && o.StartErr != nil || tc.startErr != nil && !errors.Is(o.StartErr, tc.startErr) {
				t.Errorf("StartErr = %v, want %v", o.StartErr, tc.startErr)
			}
			if o.CtxErr != nil || o.WaitErr != nil || o.HeldOpen {
				t.Errorf("outcome = %+v, want no ctx, wait or held-open error", o)
			}
			if out.String() != tc.output {
				t.Errorf("output = %q, want %q", out.String(), tc.output)
			}
			if !cmd.SysProcAttr.Setpgid {
				t.Error("Setpgid not set")
			}
		})
	}
}

// When ctx ends, the child and the grandchild it started die, also when
// they ignore SIGTERM (then SIGKILL follows after the grace).
func TestContextEndKillsGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"obeys SIGTERM", `sleep 300 & echo $! > "$1"; wait`},
		{"ignores SIGTERM", `trap "" TERM; sleep 300 & echo $! > "$1"; wait; wait`},
		{"grandchild without pipes", `trap "" TERM; sleep 300 >/dev/null 2>&1 & echo $! > "$1"; wait`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", tc.script, "sh", pidfile)
			var out bytes.Buffer
			cmd.Stdout = &out
			done := make(chan Outcome, 1)
			go func() { done <- Run(ctx, cmd, 300*time.Millisecond) }()
			pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
			if !proctest.Alive(pid) {
				t.Fatalf("grandchild %d not running before cancellation", pid)
			}
			cancel()
			o := proctest.Receive(t, "Run to return after cancellation", done, 15*time.Second)
			if !errors.Is(o.CtxErr, context.Canceled) {
				t.Errorf("CtxErr = %v, want context.Canceled", o.CtxErr)
			}
			proctest.WaitExited(t, "the grandchild", pid, 5*time.Second)
		})
	}
}

func TestDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	o := Run(ctx, exec.CommandContext(ctx, "sleep", "30"), 0)
	if !errors.Is(o.CtxErr, context.DeadlineExceeded) || !o.Signaled || o.Signal != syscall.SIGTERM {
		t.Errorf("outcome = %+v, want deadline exceeded, killed by SIGTERM", o)
	}
}

// A grandchild that outlives the program and keeps its output pipe open
// does not hang Run: the pipe is closed grace+1s after the exit.
func TestOutputHeldOpen(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx := context.Background()
	cmd := exec.CommandContext(ctx, "sh", "-c", `sleep 300 & echo $! > "$1"; echo bye`, "sh", pidfile)
	var out bytes.Buffer
	cmd.Stdout = &out // not an *os.File: exec copies through a pipe
	o := Run(ctx, cmd, 50*time.Millisecond)
	pid := proctest.WaitForPID(t, "the pid file", pidfile, time.Second)
	defer syscall.Kill(pid, syscall.SIGKILL)
	if !o.HeldOpen || o.ExitCode != 0 || o.WaitErr != nil || o.CtxErr != nil {
		t.Errorf("outcome = %+v, want exit 0 with output held open", o)
	}
	if out.String() != "bye\n" {
		t.Errorf("output = %q", out.String())
	}
}
