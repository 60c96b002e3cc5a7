// Package procgroup runs a program in a process group of its own, so that
// when the invocation's context ends (a timeout, a shutdown) the program and
// everything it started get SIGTERM and, after a grace period, SIGKILL; and
// it reports how the program ended in a form the actions classify.
package procgroup

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

// Outcome is how a process ended.
type Outcome struct {
	// StartErr is set when the process could not be started.
	StartErr error
	// CtxErr is the context's error when the context ended the process.
	CtxErr error
	// ExitCode is the exit status; -1 when the process was killed by a
	// signal or never started.
	ExitCode int
	// Signal is the signal that killed the process, when Signaled.
	Signal   syscall.Signal
	Signaled bool
	// HeldOpen: the process exited but something it started kept its
	// output open; the pipes were closed after the grace period.
	HeldOpen bool
	// WaitErr is an error of Wait other than a non-zero exit, such as a
	// failure to copy the output.
	WaitErr error
	// Duration is the time from start to the end of Wait.
	Duration time.Duration
}

// Run starts cmd (built with exec.CommandContext) in its own process
// group and waits for it. When ctx ends, the whole group gets SIGTERM and,
// grace later, SIGKILL; the group is killed once more after Wait so that
// members that ignored SIGTERM and do not hold the output pipes go too.
//
// A grace that is not positive means DefaultKillGrace. Run sets
// cmd.SysProcAttr.Setpgid, cmd.Cancel and cmd.WaitDelay; the caller sets
// the rest (Dir, Env, Stdin, Stdout, Stderr).
func Run(ctx context.Context, cmd *exec.Cmd, grace time.Duration) Outcome {
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
		out := Outcome{StartErr: err, ExitCode: -1}
		if ctx.Err() != nil {
			out.CtxErr = ctx.Err()
		}
		return out
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	out := Outcome{ExitCode: -1, Duration: time.Since(start)}
	mu.Lock()
	if cancelled {
		if killTimer != nil {
			killTimer.Stop()
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		out.CtxErr = ctx.Err()
	}
	mu.Unlock()
	if st := cmd.ProcessState; st != nil {
		out.ExitCode = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.Signaled = true
			out.Signal = ws.Signal()
		}
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		out.HeldOpen = true
	} else if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) && out.CtxErr == nil {
			out.WaitErr = err
		}
	}
	return out
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGILL: "SIGILL", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS",
	syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL", syscall.SIGSEGV: "SIGSEGV",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
	syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGXCPU: "SIGXCPU",
	syscall.SIGXFSZ: "SIGXFSZ",
}

// SignalName returns the conventional name of sig ("SIGTERM"), or its
// description when it has none here.
func SignalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return sig.String()
}
