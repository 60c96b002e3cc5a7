package procgroup

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// errSupervisorDied is the WaitErr of a Run whose daemon died (or whose
// connection to it broke) while the program ran: what was left of the
// program's process group was killed, its result is unknown. The actions
// classify a WaitErr as retryable.
var errSupervisorDied = errors.New("the supervisor process died; the program's process group was killed")

// client is the engine's connection to its supervisor daemon.
type client struct {
	w    *frameWriter
	conn net.Conn
	proc *exec.Cmd

	mu    sync.Mutex
	calls map[uint32]*call
	next  uint32
	// dead is closed once the daemon or the connection is gone; every
	// call then ends.
	dead     chan struct{}
	deadOnce sync.Once
	// exited is closed once the daemon exited and was reaped.
	exited chan struct{}
	// readDone is closed once read returned: no output is written to a
	// Run's writers after that.
	readDone chan struct{}
}

// call is one Run waiting for its program.
type call struct {
	stdout, stderr io.Writer
	exit           chan exitRecord
	fail           chan string
}

// leader is the program's pid (its process group id) and start time, as
// the daemon wrote them in the record (no frame carries them).
type leader struct {
	pid   int
	start uint64
}

type clientKey struct{ dir, program string }

var (
	clientsMu sync.Mutex
	clients   = map[clientKey]*client{}
)

// getClient returns the live daemon of (dir, program), starting one when
// there is none (the first Run, or the last daemon died).
func getClient(dir, program string) (*client, error) {
	key := clientKey{dir, program}
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c := clients[key]; c != nil {
		select {
		case <-c.dead:
		default:
			return c, nil
		}
	}
	c, err := startDaemon(dir, program)
	if err != nil && program != selfExe {
		// A rulebook-supervise of another build (an upgrade that left
		// the old one next to rulebook): this binary can supervise too.
		fmt.Fprintf(os.Stderr, "%s: %v; supervising with %s instead\n", supervisorArg0, err, selfExe)
		c, err = startDaemon(dir, selfExe)
	}
	if err != nil {
		return nil, err
	}
	clients[key] = c
	return c, nil
}

// selfExe is this binary, which can always act as the supervisor.
const selfExe = "/proc/self/exe"

// startDaemon executes the supervisor daemon for dir with one end of a
// socketpair as its descriptor 3.
func startDaemon(dir, program string) (*client, error) {
	return startDaemonFor(dir, program, os.Getpid())
}

// startDaemonFor is startDaemon with the engine's pid the daemon checks
// its parent against.
func startDaemonFor(dir, program string, ppid int) (*client, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("supervisor socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "supervisor"), os.NewFile(uintptr(fds[1]), "engine")
	defer mine.Close()
	defer theirs.Close()
	proc := exec.Command(program)
	proc.Args = []string{supervisorArg0, "-serve", "-dir", dir, "-ppid", strconv.Itoa(ppid)}
	proc.ExtraFiles = []*os.File{theirs}
	// Its diagnostics go to the engine's stderr through a pipe the engine
	// copies, not its stderr itself: an orphaned daemon must not keep the
	// engine's stderr open (whoever reads it would wait for the orphans).
	proc.Stderr = engineStderr{}
	// Its own process group: a terminal's Ctrl-C to the engine's group
	// is not for it.
	proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := proc.Start(); err != nil {
		return nil, fmt.Errorf("start supervisor %s: %w", program, err)
	}
	conn, err := net.FileConn(mine)
	if err != nil {
		_ = proc.Process.Kill()
		_ = proc.Wait()
		return nil, fmt.Errorf("supervisor socket: %w", err)
	}
	c := &client{w: &frameWriter{conn: conn}, conn: conn, proc: proc, calls: map[uint32]*call{}, dead: make(chan struct{}), exited: make(chan struct{}), readDone: make(chan struct{})}
	go func() {
		_ = proc.Wait()
		close(c.exited)
		c.die()
	}()
	r := bufio.NewReaderSize(conn, 64<<10)
	if err := c.hello(r); err != nil {
		c.die()
		_ = proc.Process.Kill()
		<-c.exited
		return nil, fmt.Errorf("supervisor %s: %w", program, err)
	}
	go c.read(r)
	return c, nil
}

// hello reads the daemon's first frame, which must name this protocol.
func (c *client) hello(r *bufio.Reader) error {
	_ = c.conn.SetReadDeadline(time.Now().Add(helloTimeout))
	defer c.conn.SetReadDeadline(time.Time{})
	f, err := readFrame(r)
	switch {
	case err != nil:
		select {
		case <-c.exited:
			return fmt.Errorf("exited (%s) before its hello: not this build's supervisor", c.proc.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		return fmt.Errorf("no hello (an incompatible or failing binary): %w", err)
	case f.typ != frameHello || string(f.payload) != protocolVersion:
		return fmt.Errorf("speaks %q, want %q", f.payload, protocolVersion)
	}
	return nil
}

// engineStderr writes to the engine's stderr; a type of its own, so that
// os/exec gives the daemon a pipe.
type engineStderr struct{}

func (engineStderr) Write(p []byte) (int, error) { return os.Stderr.Write(p) }

// die marks the daemon gone: every waiting Run ends.
func (c *client) die() {
	c.deadOnce.Do(func() {
		close(c.dead)
		_ = c.conn.Close()
	})
}

// read dispatches the daemon's frames to the waiting Runs.
func (c *client) read(r *bufio.Reader) {
	defer close(c.readDone)
	defer c.die()
	for {
		f, err := readFrame(r)
		if err != nil {
			return
		}
		c.mu.Lock()
		k := c.calls[f.id]
		if k != nil && (f.typ == frameExit || f.typ == frameFail) {
			delete(c.calls, f.id)
		}
		c.mu.Unlock()
		if k == nil {
			continue
		}
		switch f.typ {
		case frameStdout:
			if k.stdout != nil {
				_, _ = k.stdout.Write(f.payload)
			}
		case frameStderr:
			if k.stderr != nil {
				_, _ = k.stderr.Write(f.payload)
			}
		case frameExit:
			var rec exitRecord
			if err := json.Unmarshal(f.payload, &rec); err != nil {
				rec = exitRecord{ExitCode: -1, StartError: "supervisor: bad exit frame: " + err.Error()}
			}
			k.exit <- rec
		case frameFail:
			k.fail <- string(f.payload)
		}
	}
}

// start sends a start request and registers its call.
func (c *client) start(q *startRequest, stdout, stderr io.Writer) (uint32, *call, error) {
	k := &call{stdout: stdout, stderr: stderr, exit: make(chan exitRecord, 1), fail: make(chan string, 1)}
	c.mu.Lock()
	c.next++
	id := c.next
	c.calls[id] = k
	c.mu.Unlock()
	if err := c.w.write(frameStart, id, q.encode()); err != nil {
		c.mu.Lock()
		delete(c.calls, id)
		c.mu.Unlock()
		c.die()
		return 0, nil, err
	}
	return id, k, nil
}

// runDaemon is Supervisor.Run through the daemon.
func (s Supervisor) runDaemon(ctx context.Context, cmd *exec.Cmd, grace time.Duration, id, note string) Outcome {
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	q := &startRequest{Note: note, Path: cmd.Path, Args: cmd.Args, Env: cmd.Environ(), Dir: cmd.Dir}
	if cmd.Stdin != nil {
		b, err := io.ReadAll(cmd.Stdin)
		if err != nil {
			return Outcome{StartErr: fmt.Errorf("read stdin: %w", err), ExitCode: -1}
		}
		q.Stdin, q.HasIn = b, true
	}
	if cmd.Stdout != nil {
		q.Stdout = outStream
	}
	switch {
	case cmd.Stderr == nil:
	case cmd.Stderr == cmd.Stdout:
		q.Stderr = outSame
	default:
		q.Stderr = outStream
	}
	if err := ctx.Err(); err != nil {
		return Outcome{StartErr: err, CtxErr: err, ExitCode: -1}
	}
	start := time.Now()
	c, err := getClient(s.Dir, s.program())
	if err != nil {
		return Outcome{StartErr: err, ExitCode: -1}
	}
	q.Base, q.ID = slots.get(s.Dir), id
	_, k, err := c.start(q, cmd.Stdout, cmd.Stderr)
	if err != nil {
		// The daemon is gone; it may have had the request.
		<-c.readDone
		return s.daemonDied(ctx, q.Base, id, leader{}, false, start)
	}

	var (
		st        leader
		cancelled bool
		killTimer *time.Timer
		poll      *time.Ticker
		pollC     <-chan time.Time
	)
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	// The daemon does not say when the program started (a frame the
	// engine would wake up for, on every command): its pid is in the
	// record, read when ctx ends it.
	term := func() bool {
		if a := readAttempt(q.Base); a.havePid && a.pid.PID > 0 {
			st = leader{a.pid.PID, a.pid.StartTime}
		} else {
			return false // not started yet: poll
		}
		pgid := st.pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		killTimer = time.AfterFunc(grace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		return true
	}
	done := ctx.Done()
	for {
		select {
		case <-done:
			done = nil
			cancelled = true
			if !term() {
				poll = time.NewTicker(5 * time.Millisecond)
				pollC = poll.C
			}
			continue
		case <-pollC:
			if term() {
				poll.Stop()
				pollC = nil
			}
			continue
		case msg := <-k.fail:
			return Outcome{StartErr: errors.New(msg), ExitCode: -1}
		case rec := <-k.exit:
			return s.ended(ctx, q.Base, id, rec, st, cancelled, killTimer, start)
		case <-c.dead:
		}
		// The daemon is gone: the frames it sent before are read, and
		// none is written to cmd's writers once Run returned.
		<-c.readDone
		select {
		case rec := <-k.exit:
			return s.ended(ctx, q.Base, id, rec, st, cancelled, killTimer, start)
		default:
		}
		if killTimer != nil {
			killTimer.Stop()
		}
		return s.daemonDied(ctx, q.Base, id, st, cancelled, start)
	}
}

// daemonDied finishes a Run whose daemon died before the program's exit
// frame came: what is left of the program's group is killed (its pid from
// the record when the engine did not read it yet) and the Outcome says the
// supervisor died.
func (s Supervisor) daemonDied(ctx context.Context, base, id string, st leader, cancelled bool, start time.Time) Outcome {
	if a := readAttempt(base); a.havePid && a.pid.PID > 0 {
		st = leader{a.pid.PID, a.pid.StartTime}
	}
	if st.pid > 0 {
		killGroupOf(st.pid, st.start)
	}
	ran.add(s.Dir, id, base)
	out := Outcome{WaitErr: errSupervisorDied, ExitCode: -1, Duration: time.Since(start)}
	if cancelled {
		out.CtxErr = ctx.Err()
	}
	return out
}

// ended finishes a Run whose program ended: the group is killed once
// more when ctx had ended it (members that ignored SIGTERM and do not hold
// the output go too), and the record is kept for Release.
func (s Supervisor) ended(ctx context.Context, base, id string, rec exitRecord, st leader, cancelled bool, killTimer *time.Timer, start time.Time) Outcome {
	out := Outcome{ExitCode: -1, Duration: time.Since(start)}
	if cancelled {
		if killTimer != nil {
			killTimer.Stop()
		}
		if st.pid == 0 {
			if a := readAttempt(base); a.havePid {
				st.pid = a.pid.PID // it ended before the engine read it
			}
		}
		if st.pid > 0 {
			_ = syscall.Kill(-st.pid, syscall.SIGKILL)
		}
		out.CtxErr = ctx.Err()
	}
	ran.add(s.Dir, id, base)
	return rec.apply(out)
}

// killGroupOf kills what is left of the process group of pid, the leader
// that started at start (clock ticks since boot), and waits until it is
// gone. A live process with that pid and another start time means the pid
// was reused, which the kernel does only once the group is empty: that
// group is someone else's and is left alone.
func killGroupOf(pid int, start uint64) {
	if st, err := readStat(pid); err == nil && st.running() && st.start != start {
		return
	}
	if !groupAlive(pid) {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	waitGroupGone(context.Background(), pid)
}

// ranSet holds, per records directory and invocation, the records of
// this process's Runs that returned: Release removes them.
type ranSet struct {
	mu sync.Mutex
	m  map[string][]string // ranKey(dir, id) → bases
}

var ran = &ranSet{m: map[string][]string{}}

func ranKey(dir, id string) string { return dir + "\x00" + id }

func (r *ranSet) add(dir, id, base string) {
	k := ranKey(dir, id)
	r.mu.Lock()
	r.m[k] = append(r.m[k], base)
	r.mu.Unlock()
}

func (r *ranSet) take(dir, id string) []string {
	k := ranKey(dir, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.m[k]
	delete(r.m, k)
	return b
}
