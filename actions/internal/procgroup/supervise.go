package procgroup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Supervisor runs each program through a small supervisor process so
// that an attempt can outlive the engine's process without being lost or
// run twice at once.
//
// The supervisor is this same binary, executed again as
// /proc/self/exe with argv[0] "rulebook-supervise" (the init function of
// this package recognises it, so every binary that links an action using
// it, tests included, can act as the supervisor). It
//
//  1. writes a record (its pid, which is the process group id, its start
//     time from /proc/self/stat, the boot id and a note of the action) to
//     <Dir>/<id>.<nonce>.pid (not fsynced: see superviseMain);
//  2. checks that its parent is still the engine that started it: if the
//     engine died before the record was written, it removes the record and
//     exits without starting the program, so the program never runs
//     without a record;
//  3. starts the program (in its process group, which the engine made
//     for it), passes stdin through,
//     copies the program's output to the engine (and, once the engine is
//     gone, discards it but for a tail, so the orphan never dies of
//     SIGPIPE), and ignores termination signals itself;
//  4. when the program ends, writes its exit status (and, when the engine
//     was gone, the tail of its output) to <Dir>/<id>.<nonce>.exit,
//     fsynced when the engine was gone, and exits.
//
// When the engine is killed (kill -9, OOM) while an attempt runs, the
// program and its supervisor carry on. Reattach, called by the next engine
// before it runs that invocation again, finds the record: an exit record
// gives the attempt's result (the attempt is not run again); a supervisor
// still alive is waited for (its timeout still applies, then its process
// group is killed); a supervisor gone without an exit record (killed with
// everything, e.g. by systemd's final SIGKILL) means the result is lost,
// and its process group is killed and waited for before the retry. In
// every case nothing of the earlier attempt runs when Reattach returns.
//
// The supervisor binary is SupervisorName next to the running executable
// when there is one (cmd/rulebook-supervise, a small program: starting it
// costs a fraction of starting the engine again, and it starts once per
// command), else /proc/self/exe.
//
// A Supervisor with an empty Dir runs programs directly, as Run does.
type Supervisor struct {
	// Dir holds the records, normally <data-dir>/procs.
	Dir string
	// Program, when set, is the supervisor binary to execute in place of
	// the one found next to the executable or /proc/self/exe.
	Program string
}

// SupervisorName is the file name of the dedicated supervisor binary.
const SupervisorName = "rulebook-supervise"

// siblingSupervisor is SupervisorName in the directory of the running
// executable when it is an executable file there, else "".
var siblingSupervisor = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return supervisorNextTo(exe)
})

// supervisorNextTo returns SupervisorName in the directory of exe (after
// symbolic links) when it is an executable file, else "".
func supervisorNextTo(exe string) string {
	exe, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), SupervisorName)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return ""
	}
	return p
}

// program returns the supervisor binary to execute.
func (s Supervisor) program() string {
	if s.Program != "" {
		return s.Program
	}
	if p := siblingSupervisor(); p != "" {
		return p
	}
	return "/proc/self/exe"
}

// supervisorArg0 is argv[0] of a supervisor process; ps shows it.
const supervisorArg0 = "rulebook-supervise"

// outputTail is how much of its output an orphaned program keeps for the
// exit record.
const outputTail = 4096

// pipeDrain bounds how long the supervisor waits for the program's output
// to close once the program exited (a background grandchild may hold it).
const pipeDrain = 2 * time.Second

func init() {
	if len(os.Args) > 0 && os.Args[0] == supervisorArg0 {
		os.Exit(SuperviseMain(os.Args[1:]))
	}
}

// pidRecord is the record written before the program starts.
type pidRecord struct {
	PID       int       `json:"pid"`
	StartTime uint64    `json:"start_time"` // field 22 of /proc/PID/stat
	BootID    string    `json:"boot_id"`
	Note      string    `json:"note,omitempty"`
	Started   time.Time `json:"started"`
}

// exitRecord is the record written when the program ended.
type exitRecord struct {
	ExitCode   int    `json:"exit_code"`
	Signal     int    `json:"signal,omitempty"`
	StartError string `json:"start_error,omitempty"`
	HeldOpen   bool   `json:"held_open,omitempty"`
	// Orphaned: the engine was gone before the program ended; Output
	// holds the tail of what the program printed after that.
	Orphaned bool   `json:"orphaned,omitempty"`
	Output   string `json:"output,omitempty"`
}

// Run starts cmd through a supervisor when s.Dir is set (see Supervisor),
// else directly, and waits for it like Run. id names the attempt's records
// (the invocation ID); note is kept in the record and given back by
// Reattach and Notes (a scratch directory the program uses, say). While a
// record of id exists, Run must not be called again for id: the
// dispatcher calls Reattach first after a crash.
func (s Supervisor) Run(ctx context.Context, cmd *exec.Cmd, grace time.Duration, id, note string) Outcome {
	if s.Dir == "" {
		return Run(ctx, cmd, grace)
	}
	if cmd.Err != nil {
		return Outcome{StartErr: cmd.Err, ExitCode: -1}
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return Outcome{StartErr: fmt.Errorf("process records: %w", err), ExitCode: -1}
	}
	base := filepath.Join(s.Dir, fileID(id)+"."+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	args := []string{supervisorArg0, "-record", base, "-ppid", strconv.Itoa(os.Getpid()), "-note", note, "--", cmd.Path}
	args = append(args, cmd.Args[1:]...)
	sup := exec.CommandContext(ctx, s.program())
	sup.Args = args
	sup.Env, sup.Dir = cmd.Env, cmd.Dir
	sup.Stdin, sup.Stdout, sup.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	sup.SysProcAttr = cmd.SysProcAttr
	out := Run(ctx, sup, grace)
	defer os.Remove(base + ".pid")
	defer os.Remove(base + ".exit")
	if out.StartErr != nil {
		return out
	}
	var rec exitRecord
	if err := readJSON(base+".exit", &rec); err != nil {
		// The supervisor died without recording (SIGKILL, OOM): what it
		// started may still run; it must not outlive the attempt.
		killOrphanGroup(sup.Process.Pid)
		return out
	}
	return rec.apply(out)
}

// apply returns out with the program's status from the exit record in
// place of the supervisor's.
func (rec exitRecord) apply(out Outcome) Outcome {
	out.ExitCode, out.Signaled, out.Signal = rec.ExitCode, false, 0
	if rec.Signal != 0 {
		out.ExitCode, out.Signaled, out.Signal = -1, true, syscall.Signal(rec.Signal)
	}
	out.HeldOpen = out.HeldOpen || rec.HeldOpen
	if rec.StartError != "" {
		out.StartErr = errors.New(rec.StartError)
		out.ExitCode = -1
	}
	return out
}

// Reattached is what Reattach found of an attempt that an earlier engine
// process started.
type Reattached struct {
	// Outcome is how the program ended; valid when Known.
	Outcome Outcome
	// Known: the program ended and its exit status was recorded (or it
	// was killed by Reattach when ctx ended: then Outcome.CtxErr is set).
	Known bool
	// Output is the tail of what the program printed once the engine was
	// gone.
	Output string
	// Note is the note given to Run.
	Note string
	// Found: a record of the attempt existed.
	Found bool
}

// Reattach deals with what an earlier engine process left of the attempt
// id: it waits for a program still running (killing its process group
// when ctx ends, then reporting ctx's error as CtxErr), reads how it
// ended, and removes the records. When it returns, nothing of that attempt
// runs any more.
func (s Supervisor) Reattach(ctx context.Context, id string, grace time.Duration) Reattached {
	var r Reattached
	if s.Dir == "" {
		return r
	}
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	pids, _ := filepath.Glob(filepath.Join(s.Dir, globEscape(fileID(id))+".*.pid"))
	exits, _ := filepath.Glob(filepath.Join(s.Dir, globEscape(fileID(id))+".*.exit"))
	bases := map[string]bool{}
	for _, p := range append(pids, exits...) {
		bases[strings.TrimSuffix(strings.TrimSuffix(p, ".pid"), ".exit")] = true
	}
	for base := range bases {
		r.Found = true
		var pr pidRecord
		havePid := readJSON(base+".pid", &pr) == nil
		if havePid {
			r.Note = pr.Note
			if pr.alive() {
				r.Outcome.CtxErr = waitGone(ctx, pr, grace)
			}
			if pr.PID > 0 && pr.sameBoot() {
				// The supervisor is gone but something it started may not be.
				killOrphanGroup(pr.PID)
			}
		}
		var rec exitRecord
		if readJSON(base+".exit", &rec) == nil {
			r.Known = true
			r.Outcome = rec.apply(r.Outcome)
			r.Output = rec.Output
			if !pr.Started.IsZero() {
				r.Outcome.Duration = time.Since(pr.Started)
			}
		} else if r.Outcome.CtxErr != nil {
			r.Known = true
			r.Outcome.ExitCode, r.Outcome.Signaled, r.Outcome.Signal = -1, true, syscall.SIGKILL
		}
		_ = os.Remove(base + ".pid")
		_ = os.Remove(base + ".exit")
	}
	return r
}

// Notes returns the notes of the records in s.Dir whose supervisor may
// still run: what must not be cleaned up before Reattach.
func (s Supervisor) Notes() []string {
	if s.Dir == "" {
		return nil
	}
	pids, _ := filepath.Glob(filepath.Join(s.Dir, "*.pid"))
	var out []string
	for _, p := range pids {
		var pr pidRecord
		if readJSON(p, &pr) == nil && pr.Note != "" {
			out = append(out, pr.Note)
		}
	}
	return out
}

// waitGone waits until the supervisor of pr has exited, or ctx ends: then
// its process group gets SIGTERM, SIGKILL after grace, and ctx's error is
// returned once it is gone.
func waitGone(ctx context.Context, pr pidRecord, grace time.Duration) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for pr.alive() {
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		_ = syscall.Kill(-pr.PID, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for groupAlive(pr.PID) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(-pr.PID, syscall.SIGKILL)
		waitGroupGone(context.Background(), pr.PID)
		return ctx.Err()
	}
	return nil
}

// killOrphanGroup kills what is left of the process group pgid whose
// leader (a supervisor) has exited, and waits until it is gone. A process
// whose pid is pgid means the pid was reused, which the kernel does only
// once the group is empty: that group is someone else's and is left alone.
func killOrphanGroup(pgid int) {
	if _, err := os.Stat("/proc/" + strconv.Itoa(pgid)); err == nil {
		if st, err := readStat(pgid); err == nil && st.running() {
			return
		}
	}
	if !groupAlive(pgid) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitGroupGone(context.Background(), pgid)
}

// waitGroupGone polls until no process is in the process group pgid, for
// at most a minute (a process in uninterruptible sleep may take a while to
// die of SIGKILL).
func waitGroupGone(ctx context.Context, pgid int) {
	deadline := time.Now().Add(time.Minute)
	for groupAlive(pgid) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether a live process (not a zombie) is in the
// process group pgid. Zombies do not count: an orphan's zombie stays until
// PID 1 reaps it, which some container inits never do.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err == nil && st.pgrp == pgid && st.running() {
			return true
		}
	}
	return false
}

// alive reports whether the process of the record still runs: same boot,
// same pid, same start time, and not a zombie.
func (pr pidRecord) alive() bool {
	if pr.PID <= 0 || !pr.sameBoot() {
		return false
	}
	st, err := readStat(pr.PID)
	return err == nil && st.start == pr.StartTime && st.running()
}

func (pr pidRecord) sameBoot() bool { return pr.BootID == bootID() }

// stat is what /proc/PID/stat says of a process.
type stat struct {
	state byte   // field 3
	pgrp  int    // field 5
	start uint64 // field 22, in clock ticks since boot
}

// running reports whether the process is neither a zombie nor dead.
func (st stat) running() bool { return st.state != 'Z' && st.state != 'X' }

// readStat reads /proc/PID/stat.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3, so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: pgrp: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return stat{state: f[0][0], pgrp: pgrp, start: start}, nil
}

// bootID is this boot's id, read once.
var bootID = sync.OnceValue(func() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
})

// fileID turns an invocation ID into a file name part.
func fileID(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeRecord writes v as JSON to path in one write. With sync it then
// fsyncs the file and its directory, so the record survives a power loss.
//
// The file is written in place, not through a temporary file and a
// rename: a record is read only by a later engine, and a record torn by a
// power loss is one whose fsync never returned, so the supervisor had not
// acted on it (a pid record: the program was not started; Reattach takes
// an unreadable record as none). An engine killed alone (kill -9, OOM)
// leaves every written byte in the page cache.
func writeRecord(path string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	if !sync {
		return nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SuperviseMain is the supervisor process, run with args (the arguments
// after argv[0]) by init and by cmd/rulebook-supervise; it returns its
// exit status: 0 once the exit record is written, 3 when it did not start
// the program because the engine was gone, 2 on a usage or record error.
func SuperviseMain(args []string) int {
	var record, note, prog string
	ppid := -1
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			args = args[1:]
			break
		}
		if len(args) < 2 {
			fmt.Fprintf(os.Stderr, "%s: flag %s needs a value\n", supervisorArg0, a)
			return 2
		}
		switch a {
		case "-record":
			record = args[1]
		case "-note":
			note = args[1]
		case "-ppid":
			ppid, _ = strconv.Atoi(args[1])
		default:
			fmt.Fprintf(os.Stderr, "%s: unknown flag %s\n", supervisorArg0, a)
			return 2
		}
		args = args[2:]
	}
	if record == "" || len(args) == 0 {
		fmt.Fprintf(os.Stderr, "%s: usage: -record PATH -ppid PID [-note TEXT] -- PROGRAM [ARG...]\n", supervisorArg0)
		return 2
	}
	prog = args[0]
	// Termination signals aimed at the group (the engine's timeout, a
	// group or cgroup kill) are for the program; the supervisor stays to
	// record how it ended. Caught, not ignored: the program gets the
	// default dispositions. SIGPIPE, once the engine is gone, turns into
	// an EPIPE on write.
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
	pr := pidRecord{PID: os.Getpid(), StartTime: self.start, BootID: bootID(), Note: note, Started: time.Now()}
	// Written, not fsynced: the record is there for a later engine to
	// find a supervisor or program that still runs, and a write is
	// visible to every process at once. Only a kernel crash or power loss
	// loses unsynced data, and that also ends every process the record
	// could name, so the next engine, finding no record, runs the
	// attempt again as it would on finding one without an exit record
	// (a pid record of an earlier boot names nothing alive): never two
	// runs at once. The engine's own synced "running" state, written
	// before the supervisor starts, is what records the attempt.
	if err := writeRecord(record+".pid", pr, false); err != nil {
		fmt.Fprintf(os.Stderr, "%s: write record: %v\n", supervisorArg0, err)
		return 2
	}
	if os.Getppid() != ppid {
		// The engine died before the record was durable: it does not know
		// of this attempt, so the program must not run.
		_ = os.Remove(record + ".pid")
		return 3
	}

	out := &forwarder{w: os.Stdout}
	cmd := exec.Command(prog, args[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = pipeDrain
	var rec exitRecord
	if err := cmd.Start(); err != nil {
		rec = exitRecord{ExitCode: -1, StartError: startErrText(err)}
	} else {
		rec.HeldOpen = errors.Is(cmd.Wait(), exec.ErrWaitDelay)
		rec.ExitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Signal = int(ws.Signal())
		}
	}
	if os.Getppid() != ppid || out.broken() {
		rec.Orphaned = true
		rec.Output = out.tailString()
	}
	// The exit record is synced only for an orphan: an engine that still
	// runs reads it as soon as the supervisor exits and records the
	// result in its own synced store, and should the engine be killed
	// before that, the page cache still holds the record for the next
	// one. Only a power loss in that window loses it, and then the pid
	// record (synced) makes the next engine take the result as lost and
	// run the attempt again, as after a power loss while it ran: never
	// two at once. This saves two fsyncs per command.
	if err := writeRecord(record+".exit", rec, rec.Orphaned); err != nil {
		fmt.Fprintf(os.Stderr, "%s: write exit record: %v\n", supervisorArg0, err)
		return 2
	}
	return 0
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

// forwarder copies the program's output to the engine; once a write fails
// (the engine is gone), it keeps only the last outputTail bytes.
type forwarder struct {
	mu   sync.Mutex
	w    io.Writer
	dead bool
	tail []byte
}

func (f *forwarder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dead {
		if _, err := f.w.Write(p); err == nil {
			return len(p), nil
		}
		f.dead = true
	}
	f.tail = append(f.tail, p...)
	if len(f.tail) > outputTail {
		f.tail = append(f.tail[:0], f.tail[len(f.tail)-outputTail:]...)
	}
	return len(p), nil
}

func (f *forwarder) broken() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dead
}

func (f *forwarder) tailString() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.tail)
}
