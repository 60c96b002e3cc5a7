package playbook

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultKillGrace is how long a process group has between SIGTERM and
// SIGKILL once the invocation's context ends.
const DefaultKillGrace = 3 * time.Second

// procOutcome is how a process ended.
type procOutcome struct {
	// startErr is set when the process could not be started.
	startErr error
	// ctxErr is the context's error when the context ended the process.
	ctxErr error
	// exitCode is the exit status; -1 when the process was killed by a
	// signal or never started.
	exitCode int
	signal   syscall.Signal
	signaled bool
	// heldOpen: the process exited but something it started kept its
	// output open; the pipes were closed after the grace period.
	heldOpen bool
	waitErr  error
	duration time.Duration
}

// runGroup starts cmd (built with exec.CommandContext) in its own process
// group and waits for it. When ctx ends, the whole group gets SIGTERM and,
// grace later, SIGKILL; the group is killed once more after Wait so that
// members that ignored SIGTERM and do not hold the output pipes go too.
func runGroup(ctx context.Context, cmd *exec.Cmd, grace time.Duration) procOutcome {
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	var (
		mu        sync.Mutex
		cancelled bool
		killTimer *time.Timer
	)
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		mu.Lock()
		defer mu.Unlock()
		cancelled = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		killTimer = time.AfterFunc(grace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		return nil
	}
	// WaitDelay bounds how long Wait waits for the output pipes once the
	// process exited or ctx ended: a background grandchild holding them
	// must not hang the invocation.
	cmd.WaitDelay = grace + time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		out := procOutcome{startErr: err, exitCode: -1}
		if ctx.Err() != nil {
			out.ctxErr = ctx.Err()
		}
		return out
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	out := procOutcome{exitCode: -1, duration: time.Since(start)}
	mu.Lock()
	if cancelled {
		if killTimer != nil {
			killTimer.Stop()
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		out.ctxErr = ctx.Err()
	}
	mu.Unlock()
	if st := cmd.ProcessState; st != nil {
		out.exitCode = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.signaled = true
			out.signal = ws.Signal()
		}
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		out.heldOpen = true
	} else if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) && out.ctxErr == nil {
			out.waitErr = err
		}
	}
	return out
}
