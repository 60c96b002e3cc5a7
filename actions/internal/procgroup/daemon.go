package procgroup

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// daemonFD is the descriptor of the daemon's end of the socketpair.
const daemonFD = 3

// SuperviseMain is the supervisor daemon, run with args (the arguments
// after argv[0], "-serve -dir DIR -ppid PID"; -serve changes nothing here,
// the per-command supervisor of earlier versions rejects it: see
// protocolVersion) by this package's init function and
// by cmd/rulebook-supervise, its connection to the engine on descriptor 3.
// It returns its exit status: 0 once the engine's connection closed and
// every program it started ended and was recorded, 2 on a usage error.
func SuperviseMain(args []string) int {
	var dir string
	ppid := -1
	for len(args) > 0 {
		a := args[0]
		if a == "-serve" {
			args = args[1:]
			continue
		}
		if len(args) < 2 {
			fmt.Fprintf(os.Stderr, "%s: flag %s needs a value\n", supervisorArg0, a)
			return 2
		}
		switch a {
		case "-dir":
			dir = args[1]
		case "-ppid":
			ppid, _ = strconv.Atoi(args[1])
		default:
			fmt.Fprintf(os.Stderr, "%s: unknown flag %s\n", supervisorArg0, a)
			return 2
		}
		args = args[2:]
	}
	if dir == "" || ppid <= 0 {
		fmt.Fprintf(os.Stderr, "%s: usage: -serve -dir DIR -ppid PID, the engine's socket on descriptor 3 (the engine starts it)\n", supervisorArg0)
		return 2
	}
	// Programs must not inherit the engine's socket: the engine learns
	// of the daemon's death from its end closing.
	syscall.CloseOnExec(daemonFD)
	f := os.NewFile(daemonFD, "engine")
	conn, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: descriptor 3 is not the engine's socket: %v\n", supervisorArg0, err)
		return 2
	}
	// Termination signals aimed at the daemon (a group or cgroup kill,
	// a terminal) are for the programs; the daemon stays to record how
	// they end. Caught, not ignored: programs get the default
	// dispositions. SIGPIPE, once the engine is gone, turns into an
	// EPIPE on write.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	go func() {
		for range sigs {
		}
	}()
	self, err := readStat(os.Getpid())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", supervisorArg0, err)
		return 2
	}
	d := &daemon{
		ppid:  ppid,
		pid:   os.Getpid(),
		start: self.start,
		w:     &frameWriter{conn: conn},
	}
	d.send(frameHello, 0, []byte(protocolVersion))
	d.serve(conn)
	return 0
}

// daemon is the supervisor: one per engine process and records
// directory; it starts every supervised program and records it.
type daemon struct {
	ppid  int    // the engine
	pid   int    // this process
	start uint64 // its start time
	w     *frameWriter
	// gone: the engine's connection failed (EOF, a failed write): the
	// engine is gone and what runs is an orphan.
	gone atomic.Bool
	wg   sync.WaitGroup
	// inflight counts the programs being started or run.
	inflight atomic.Int64
}

// done ends one program's time in flight.
func (d *daemon) done() {
	d.inflight.Add(-1)
	d.wg.Done()
}

// serve reads start requests until the engine's connection closes, then
// waits for the programs still running.
func (d *daemon) serve(conn net.Conn) {
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		f, err := readFrame(r)
		if err != nil {
			break
		}
		if f.typ != frameStart {
			continue
		}
		var q startRequest
		if err := q.decode(f.payload); err != nil {
			d.send(frameFail, f.id, []byte(err.Error()))
			continue
		}
		// Alone, a program is started here and waited for in a goroutine
		// of its own: one hand-off less on the path of every command run
		// one after the other. With others in flight, it is started in a
		// goroutine too, so that the reader goes on to the next request:
		// the forks are serialized by the runtime (syscall.ForkLock), but
		// the record, the pipes and the read of a program's start time
		// overlap the next fork: at 1,100 parallel commands/s the backlog
		// drained 0.3-1.5 s after the load instead of 1.7-2.8 s, and
		// commands one after the other are no slower.
		id := f.id
		d.wg.Add(1)
		if d.inflight.Add(1) == 1 {
			if wait := d.launch(id, &q); wait != nil {
				go func() {
					defer d.done()
					wait()
				}()
			} else {
				d.done()
			}
			continue
		}
		go func() {
			defer d.done()
			if wait := d.launch(id, &q); wait != nil {
				wait()
			}
		}()
	}
	d.gone.Store(true)
	d.wg.Wait()
	_ = conn.Close()
}

// send writes a frame to the engine; a failure means the engine is gone.
func (d *daemon) send(typ byte, id uint32, payload []byte) {
	if d.gone.Load() {
		return
	}
	if err := d.w.write(typ, id, payload); err != nil {
		d.gone.Store(true)
	}
}

// orphaned reports whether the engine is gone.
func (d *daemon) orphaned() bool {
	return d.gone.Load() || os.Getppid() != d.ppid
}

// launch records and starts one program; it returns what waits for it
// and records how it ended, nil when there is nothing to wait for.
func (d *daemon) launch(id uint32, q *startRequest) (wait func()) {
	pr := pidRecord{BootID: bootID(), Note: q.Note, Started: time.Now(), Daemon: d.pid, DaemonStart: d.start, ID: q.ID}
	// Written, not fsynced: the record is there for a later engine to
	// find a program that still runs, and a write is visible to every
	// process at once. Only a kernel crash or power loss loses unsynced
	// data, and that also ends every process the record could name, so
	// the next engine, finding no record, runs the attempt again as it
	// would on finding one without an exit record (a pid record of an
	// earlier boot names nothing alive): never two runs at once. The
	// engine's own synced "running" state, written before it asks for
	// the start, is what records the attempt.
	rf, err := openRecord(q.Base+recSuffix, pr)
	if err != nil {
		d.send(frameFail, id, []byte("write process record: "+err.Error()))
		return nil
	}
	if os.Getppid() != d.ppid {
		// The engine died before the record was written: it does not
		// know of this attempt (a later engine listing the records may
		// already have missed it), so the program must not run.
		_ = rf.Close()
		_ = freeRecord(rf.path)
		return nil
	}
	tail := &tailBuf{}
	cmd := &exec.Cmd{Path: q.Path, Args: q.Args, Env: q.Env, Dir: q.Dir}
	var stdinR *os.File
	if q.HasIn {
		stdinR = prefilledPipe(q.Stdin)
		if stdinR != nil {
			cmd.Stdin = stdinR
		} else {
			cmd.Stdin = bytes.NewReader(q.Stdin)
		}
	}
	if q.Stdout == outStream {
		cmd.Stdout = &forwarder{d: d, id: id, typ: frameStdout, tail: tail}
	}
	switch q.Stderr {
	case outSame:
		cmd.Stderr = cmd.Stdout
	case outStream:
		cmd.Stderr = &forwarder{d: d, id: id, typ: frameStderr, tail: tail}
	}
	// Its own process group, so that the engine's timeout kills what it
	// started too; Pdeathsig, so that should the daemon itself be killed
	// the program dies with it rather than run with no one to record it
	// (the engine then kills what is left of its group). The daemon
	// never locks goroutines to threads: Pdeathsig fires when the thread
	// that forked exits, and the runtime keeps its threads.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = pipeDrain
	err = cmd.Start()
	if stdinR != nil {
		_ = stdinR.Close() // the program has its copy
	}
	if err != nil {
		return func() { d.ended(id, rf, exitRecord{ExitCode: -1, StartError: startErrText(err)}, tail) }
	}
	pid := cmd.Process.Pid
	pr.PID = pid
	if st, err := readStat(pid); err == nil {
		pr.StartTime = st.start
	}
	if err := rf.setPid(pr); err != nil {
		fmt.Fprintf(os.Stderr, "%s: rewrite process record: %v\n", supervisorArg0, err)
	}
	return func() {
		var rec exitRecord
		rec.HeldOpen = errors.Is(cmd.Wait(), exec.ErrWaitDelay)
		rec.ExitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Signal = int(ws.Signal())
		}
		d.ended(id, rf, rec, tail)
	}
}

// ended records how a program ended and tells the engine.
func (d *daemon) ended(id uint32, rf *recordFile, rec exitRecord, tail *tailBuf) {
	defer rf.Close()
	if d.orphaned() {
		rec.Orphaned = true
		rec.Output = tail.String()
	}
	// The exit record is synced only for an orphan: an engine that still
	// runs gets the result in the exit frame and records it in its own
	// synced store; should it be killed before that, the page cache still
	// holds this record for the next one. Only a power loss in that
	// window loses it, and then the next engine finds no exit record (or
	// no record at all) and runs the attempt again, as after a power
	// loss while it ran: never two at once.
	if err := rf.setExit(rec, rec.Orphaned); err != nil {
		fmt.Fprintf(os.Stderr, "%s: write exit record: %v\n", supervisorArg0, err)
	}
	b, _ := json.Marshal(rec)
	d.send(frameExit, id, b)
}

func startErrText(err error) string {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err.Error()
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// forwarder sends a program's output to the engine; once the engine is
// gone, the output goes to the tail kept for the exit record, so an orphan
// never dies of SIGPIPE.
type forwarder struct {
	d    *daemon
	id   uint32
	typ  byte
	tail *tailBuf
}

func (f *forwarder) Write(p []byte) (int, error) {
	if !f.d.gone.Load() {
		f.d.send(f.typ, f.id, p)
		if !f.d.gone.Load() {
			return len(p), nil
		}
	}
	f.tail.Write(p)
	return len(p), nil
}

// tailBuf keeps the last outputTail bytes written to it.
type tailBuf struct {
	mu   sync.Mutex
	tail []byte
}

func (t *tailBuf) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tail = append(t.tail, p...)
	if len(t.tail) > outputTail {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-outputTail:]...)
	}
}

func (t *tailBuf) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.tail)
}

// prefilledPipe returns the read end of a pipe that holds b and whose
// write end is closed, or nil when b does not fit in a pipe's buffer
// (then os/exec copies it from a goroutine). A command's stdin (an event
// as JSON) is almost always small: a goroutine less, and its wake-ups, on
// the path of every command.
func prefilledPipe(b []byte) *os.File {
	if len(b) > 60<<10 { // under the 64 KiB a pipe holds by default
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	if len(b) > 0 {
		if n, err := w.Write(b); err != nil || n != len(b) {
			_ = r.Close()
			_ = w.Close()
			return nil
		}
	}
	_ = w.Close()
	return r
}
