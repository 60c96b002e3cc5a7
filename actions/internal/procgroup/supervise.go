package procgroup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Supervisor runs programs through a supervisor process so that an
// attempt can outlive the engine's process without being lost or run twice
// at once.
//
// The supervisor is a daemon: one per engine process and Dir, started by
// the first Run and living as long as the engine (each Run costs the
// engine a few frames on a socket and the daemon one fork and exec, not a
// process of its own). It is SupervisorName next to the running executable
// when there is one (cmd/rulebook-supervise, a small program), else this
// same binary executed again as /proc/self/exe with argv[0]
// "rulebook-supervise" (the init function of this package recognises it,
// so every binary that links an action using it, tests included, can act
// as the supervisor). It runs in a process group of its own (a terminal's
// Ctrl-C to the engine is not for it), catches termination signals and
// carries on, and talks to the engine over a socketpair (descriptor 3;
// frames in wire.go); its stderr is a pipe the engine copies to its own,
// so that an orphaned daemon does not hold the engine's stderr open.
// For each Run it
//
//  1. writes a record in the slot <Dir>/slot.<process>-<n>.rec the engine
//     chose, naming the invocation id, itself (its pid and start time from
//     /proc/self/stat), the boot id and the note, with no program yet
//     (pid 0, "pending"), not fsynced (see daemon.launch), and keeps it
//     open (records.go describes the file);
//  2. checks that its parent is still the engine: if the engine died, it
//     frees the record and does not start the program, so a program
//     never runs without a record a later engine can find;
//  3. starts the program in a process group of its own with SIGKILL as its
//     parent-death signal (should the daemon be killed, its programs die
//     with it instead of running unrecorded; the engine kills what is left
//     of their groups), its stdin the bytes the engine sent, its output
//     forwarded to the engine (once the engine is gone, kept but for a
//     tail, so an orphan never dies of SIGPIPE);
//  4. rewrites the record in place with the program's pid (its process
//     group id) and start time (where the engine reads it when it must
//     signal the group: no frame per start);
//  5. when the program ends, adds its exit status (and, when the engine
//     was gone, the tail of its output) to the record, fsynced only then,
//     and sends it to the engine.
//
// It exits once the engine's connection closed and no program runs.
//
// When the engine is killed (kill -9, OOM) while an attempt runs, the
// program and the daemon carry on. Reattach, called by the next engine
// before it runs that invocation again, finds the record: an exit record
// gives the attempt's result (the attempt is not run again); a program
// still alive is waited for (its timeout still applies, then its process
// group is killed); a program gone without an exit record whose daemon is
// gone too (killed with everything, e.g. by systemd's final SIGKILL)
// means the result is lost: its process group is killed and waited for
// before the retry. In every case nothing of the earlier attempt runs when
// Reattach returns. Records of the per-command supervisor of earlier
// versions (no daemon named) are handled as before: their supervisor led
// the program's group.
//
// When the daemon dies while the engine runs, Run kills what is left of
// its programs' groups and returns an Outcome whose WaitErr says so; the
// next Run starts a new daemon.
//
// Records outlive Run: the engine's store records the attempt's result
// after Run returns, and until it has, the records are what a later engine
// needs. Release removes the records of an attempt once its result is
// durable; Prune removes those of ended attempts left by any process.
//
// A Supervisor with an empty Dir runs programs directly, as Run does.
type Supervisor struct {
	// Dir holds the records, normally <data-dir>/procs.
	Dir string
	// Program, when set, is the supervisor binary to execute in place of
	// the one found next to the executable or /proc/self/exe.
	Program string
}

// RecordsDir is the directory, in an engine's data directory, of the
// records of every supervised action: run_command, run_playbook and
// run_module share it, and so one daemon.
const RecordsDir = "procs"

// InDataDir returns the Supervisor of the actions of an engine whose data
// directory is dataDir: the zero Supervisor (programs run directly) when
// there is none.
func InDataDir(dataDir string) Supervisor {
	if dataDir == "" {
		return Supervisor{}
	}
	return Supervisor{Dir: filepath.Join(dataDir, RecordsDir)}
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
	return selfExe
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
	// PID is the program's (its process group id), 0 while the daemon is
	// starting it; in a record of the per-command supervisor (Daemon 0),
	// the supervisor's, which led the program's group.
	PID       int       `json:"pid"`
	StartTime uint64    `json:"start_time"` // field 22 of /proc/PID/stat
	BootID    string    `json:"boot_id"`
	Note      string    `json:"note,omitempty"`
	Started   time.Time `json:"started"`
	// Daemon and DaemonStart name the supervisor daemon that started the
	// program.
	Daemon      int    `json:"daemon,omitempty"`
	DaemonStart uint64 `json:"daemon_start,omitempty"`
	// ID is the attempt's invocation ID: a record file is a slot that
	// this engine process reuses (see records.go), its name says nothing
	// of the attempt.
	ID string `json:"id,omitempty"`
	// Free marks a slot that holds no attempt.
	Free bool `json:"free,omitempty"`
}

// daemonAlive reports whether the daemon named in the record still runs.
func (pr pidRecord) daemonAlive() bool {
	return pidRecord{PID: pr.Daemon, StartTime: pr.DaemonStart, BootID: pr.BootID}.alive()
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

// Run starts cmd through the supervisor daemon when s.Dir is set (see
// Supervisor), else directly, and waits for it like Run. id names the
// attempt's records (the invocation ID); note is kept in the record and
// given back by Reattach and Notes (a scratch directory the program uses,
// say). The daemon is given cmd's Path, Args, Environ() and Dir; cmd.Stdin,
// when set, is read to its end first and becomes the program's stdin;
// cmd.Stdout and cmd.Stderr get its output (one pipe for both when they are
// the same writer, as os/exec does), written from one goroutine that
// serves every Run of the daemon, so they must not block. Other fields of
// cmd (SysProcAttr, Cancel, WaitDelay) are not used.
//
// The records stay when Run returns (Release removes them). Run must not
// be called for an id that an earlier process may have left running: the
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
	return s.runDaemon(ctx, cmd, grace, id, note)
}

// procTag names this process in its record names: its pid and the time it
// started, so that an earlier process with the same pid (a container's
// engine is often pid 1) is told apart.
var procTag = sync.OnceValue(func() string {
	return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
})

var baseSeq atomic.Uint64

// slotPrefix starts the name of every record slot: slot.<process>-<n>.rec.
const slotPrefix = "slot."

// slotPool holds, per records directory, the free record slots of this
// process (paths without suffix): a slot is written in place for each
// attempt and freed by Release, so that no file is created or removed on
// the path of a command (each a noticeable part of its budget on ext4).
type slotPool struct {
	mu   sync.Mutex
	free map[string][]string
}

var slots = &slotPool{free: map[string][]string{}}

// get returns a free slot of dir, naming a new one when none is free (the
// daemon creates its file).
func (p *slotPool) get(dir string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.free[dir]; len(f) > 0 {
		base := f[len(f)-1]
		p.free[dir] = f[:len(f)-1]
		return base
	}
	return filepath.Join(dir, slotPrefix+procTag()+"-"+strconv.FormatUint(baseSeq.Add(1), 36))
}

// put marks the slot at base free, in its file and in the pool.
func (p *slotPool) put(dir, base string) {
	if err := freeRecord(base + recSuffix); err != nil {
		// Not reused: the file, if any, is left to Prune.
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free[dir] = append(p.free[dir], base)
}

// ownRecord reports whether the record file name is of this process.
func ownRecord(name string) bool {
	i := strings.IndexByte(name, '.')
	return i >= 0 && strings.HasPrefix(name[i+1:], procTag()+"-")
}

// Release removes the records of id's attempts that this process ran and
// whose Run returned. The dispatcher calls it once the attempt's result is
// durable in its store: from then on no later engine needs them. Records
// of a Run of id still running are kept.
func (s Supervisor) Release(id string) {
	if s.Dir == "" {
		return
	}
	for _, base := range ran.take(s.Dir, id) {
		slots.put(s.Dir, base)
	}
}

// Prune removes the records in s.Dir, of any process, of attempts that
// have ended (an exit record is there, or neither the program nor the
// daemon that started it runs) and whose invocation id is not in keep
// (ids are compared as they appear in file names, so an id whose name
// part equals a kept one's is kept too), and returns how many attempts it
// removed. A record whose program (or the daemon that starts it) still
// runs is never removed; what is left of the process group of an attempt
// whose result is lost is killed first. The dispatcher calls it with the
// ids of the invocations it has yet to finish, for which Reattach needs
// the records.
func (s Supervisor) Prune(keep map[string]bool) int {
	if s.Dir == "" {
		return 0
	}
	kept := make(map[string]bool, len(keep))
	for id := range keep {
		kept[fileID(id)] = true
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return 0
	}
	n := 0
	for base, fid := range recordBases(s.Dir, entries) {
		if kept[fid] {
			continue
		}
		path := filepath.Join(s.Dir, base)
		a := readAttempt(path)
		if !a.found {
			continue
		}
		if pr := a.pid; a.havePid {
			if pr.alive() || pr.Daemon > 0 && pr.daemonAlive() && !a.haveExit {
				continue
			}
			if !a.haveExit && pr.PID > 0 && pr.sameBoot() {
				killGroupOf(pr.PID, pr.StartTime)
			}
		}
		removeAttempt(path)
		n++
	}
	// The free slots of earlier processes served their last attempt.
	for _, path := range freeSlots(s.Dir, entries) {
		_ = os.Remove(path)
	}
	return n
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
//
// Only records of earlier processes are reattached, and those all exist
// before this process first looks: a daemon writes an attempt's pid
// record before it checks that its engine still runs, so a record an
// earlier engine's daemon writes after that engine died is freed again
// and its program never starts. So the first Reattach (or Prune) lists Dir
// once, and an id without records there is answered from that listing:
// the dispatcher calls Reattach for every invocation it recovers.
func (s Supervisor) Reattach(ctx context.Context, id string, grace time.Duration) Reattached {
	var r Reattached
	if s.Dir == "" {
		return r
	}
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	for _, base := range listings.take(s.Dir, fileID(id)) {
		base = filepath.Join(s.Dir, base)
		a := readAttempt(base)
		if !a.found {
			continue // removed since the listing
		}
		pr := a.pid
		r.Found = true
		if a.havePid {
			r.Note = pr.Note
			if pr.Daemon > 0 {
				r.Outcome.CtxErr = reattachDaemon(ctx, base, a, &pr, grace)
			} else {
				r.Outcome.CtxErr = waitGone(ctx, pr, grace)
				if pr.PID > 0 && pr.sameBoot() {
					// The supervisor is gone but something it started may not be.
					killGroupOf(pr.PID, pr.StartTime)
				}
			}
		}
		if a = readAttempt(base); a.haveExit {
			rec := a.exit
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
		removeAttempt(base)
	}
	return r
}

// reattachDaemon waits for the attempt of a daemon's record to end: while
// the daemon is starting the program, while the program runs (killing its
// group when ctx ends: then ctx's error is returned), and while the daemon
// still lives and has yet to write the exit record (it does right after
// reaping the program, at most pipeDrain later). Then it kills what is
// left of the program's group, when no exit record says the daemon saw it
// end. a is the attempt as Reattach read it, pr its pid record, updated
// once the daemon wrote the program's pid: each poll reads the file once.
func reattachDaemon(ctx context.Context, base string, a attempt, pr *pidRecord, grace time.Duration) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for pr.PID == 0 && !a.haveExit && pr.daemonAlive() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			// A daemon that takes that long to fork is stuck; whatever it
			// starts dies with it only, so give up on this attempt.
			return ctx.Err()
		}
		if a = readAttempt(base); !a.found {
			return nil // freed or removed: the program never started
		}
		if a.havePid {
			*pr = a.pid
		}
	}
	if pr.PID == 0 {
		return nil
	}
	if err := waitGone(ctx, *pr, grace); err != nil {
		return err
	}
	deadline := time.Now().Add(pipeDrain + 10*time.Second)
	for !exited(base) && pr.daemonAlive() && time.Now().Before(deadline) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			killGroupOf(pr.PID, pr.StartTime)
			return ctx.Err()
		}
	}
	if !exited(base) && pr.sameBoot() {
		killGroupOf(pr.PID, pr.StartTime)
	}
	return nil
}

// listingSet holds, per records directory, the records of earlier
// processes as the first Reattach or Prune found them: file id → bases.
type listingSet struct {
	mu sync.Mutex
	m  map[string]map[string][]string
}

var listings = &listingSet{m: map[string]map[string][]string{}}

// take returns the bases of fid in dir's listing, listing dir first when
// this process has not yet, and forgets them.
func (l *listingSet) take(dir, fid string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	byID := l.listLocked(dir)
	bases := byID[fid]
	delete(byID, fid)
	return bases
}

// has reports whether dir's listing holds records of fid, listing dir
// first when this process has not yet.
func (l *listingSet) has(dir, fid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.listLocked(dir)[fid]) > 0
}

// listLocked returns dir's listing, taking it the first time; l.mu is
// held.
func (l *listingSet) listLocked(dir string) map[string][]string {
	byID, ok := l.m[dir]
	if !ok {
		byID = map[string][]string{}
		entries, _ := os.ReadDir(dir)
		for base, id := range recordBases(dir, entries) {
			if !ownRecord(base) {
				byID[id] = append(byID[id], base)
			}
		}
		l.m[dir] = byID
	}
	return byID
}

// LeftBehind reports whether an earlier process left records of an
// attempt of id in s.Dir (as the first call of LeftBehind, Reattach or
// Prune found the directory): Reattach must deal with that attempt before
// id runs again. Cheap: a look-up in that listing.
func (s Supervisor) LeftBehind(id string) bool {
	if s.Dir == "" {
		return false
	}
	return listings.has(s.Dir, fileID(id))
}

// Notes returns the notes of every attempt recorded in s.Dir, ended or
// not (free slots hold none): what must not be cleaned up before Reattach,
// Release or Prune removes the attempt's records.
func (s Supervisor) Notes() []string {
	if s.Dir == "" {
		return nil
	}
	entries, _ := os.ReadDir(s.Dir)
	var out []string
	for base := range recordBases(s.Dir, entries) {
		if a := readAttempt(filepath.Join(s.Dir, base)); a.havePid && a.pid.Note != "" {
			out = append(out, a.pid.Note)
		}
	}
	return out
}

// waitGone waits until the group leader of pr has exited (the program of
// a daemon's record; the per-command supervisor in an old one), or ctx
// ends: then its process group gets SIGTERM, SIGKILL after grace, and
// ctx's error is returned once it is gone.
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
	// Read with plain system calls into a buffer on the stack: the daemon
	// reads one per command started, and os.ReadFile's stat, poller
	// registration and allocations doubled its cost.
	var buf [1024]byte
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return stat{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			_ = syscall.Close(fd)
			return stat{}, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	_ = syscall.Close(fd)
	if n == len(buf) {
		return stat{}, fmt.Errorf("%s: longer than %d bytes", path, len(buf))
	}
	b := buf[:n]
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
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

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
