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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/actions/internal/proctest"
)

// newSupervisor returns a Supervisor with a directory of its own whose
// daemon is told to go (its connection closed) when the test ends.
func newSupervisor(t *testing.T) Supervisor {
	t.Helper()
	s := Supervisor{Dir: t.TempDir()}
	t.Cleanup(func() { closeDaemon(s) })
	return s
}

// closeDaemon closes the connection to s's daemon, if any: it exits once
// its programs ended.
func closeDaemon(s Supervisor) {
	clientsMu.Lock()
	c := clients[clientKey{s.Dir, s.program()}]
	delete(clients, clientKey{s.Dir, s.program()})
	clientsMu.Unlock()
	if c != nil {
		c.close()
	}
}

// close ends the connection, as the engine never does before it exits:
// the daemon exits once its programs ended.
func (c *client) close() { c.die() }

// records returns the names of the files in dir.
func records(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if base, ok := strings.CutSuffix(name, recSuffix); ok {
			a := readAttempt(filepath.Join(dir, base))
			if !a.found {
				continue // a free slot
			}
			if strings.HasPrefix(base, slotPrefix) {
				name = fileID(a.pid.ID) + "." + name
			}
		}
		names = append(names, name)
	}
	return names
}

// baseOf returns the path, without suffix, of the record file that
// records names name.
func baseOf(dir, name string) string {
	if i := strings.Index(name, "."+slotPrefix); i >= 0 {
		name = name[i+1:]
	}
	return filepath.Join(dir, strings.TrimSuffix(name, recSuffix))
}

// A supervised program reports the same outcomes as one run directly,
// with its output; its records stay until Release.
func TestSupervisedOutcome(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		stdin    string
		exit     int
		signal   syscall.Signal
		startErr string
		output   string
	}{
		{"success", []string{"sh", "-c", "echo out; echo err >&2"}, "", 0, 0, "", "out\nerr\n"},
		{"stdin", []string{"cat"}, "the event\n", 0, 0, "", "the event\n"},
		{"exit status", []string{"sh", "-c", "exit 3"}, "", 3, 0, "", ""},
		{"killed by signal", []string{"sh", "-c", "kill -TERM $$"}, "", -1, syscall.SIGTERM, "", ""},
		{"not executable", []string{"/dev/null"}, "", -1, 0, "permission denied", ""},
		{"no such directory", []string{"true"}, "", -1, 0, "no such file or directory", ""},
	}
	s := newSupervisor(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cmd := exec.CommandContext(ctx, tc.argv[0], tc.argv[1:]...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.Stdin = strings.NewReader(tc.stdin)
			if tc.name == "no such directory" {
				cmd.Dir = filepath.Join(t.TempDir(), "missing")
			}
			o := s.Run(ctx, cmd, 0, "inv/1", "")
			if o.ExitCode != tc.exit || o.Signaled != (tc.signal != 0) || o.Signal != tc.signal {
				t.Errorf("outcome = %+v, want exit %d signal %v", o, tc.exit, tc.signal)
			}
			if tc.startErr == "" && o.StartErr != nil || tc.startErr != "" && (o.StartErr == nil || o.StartErr.Error() != tc.startErr) {
				t.Errorf("StartErr = %v, want %q", o.StartErr, tc.startErr)
			}
			if out.String() != tc.output {
				t.Errorf("output = %q, want %q", out.String(), tc.output)
			}
			if left := records(t, s.Dir); len(left) != 1 {
				t.Errorf("records after Run: %v, want one", left)
			} else if a := readAttempt(baseOf(s.Dir, left[0])); !a.havePid || !a.haveExit || a.exit.ExitCode != tc.exit {
				t.Errorf("record after Run: %+v, want the pid and the exit status", a)
			}
			s.Release("inv/1")
			if left := records(t, s.Dir); len(left) != 0 {
				t.Errorf("records left behind after Release: %v", left)
			}
		})
	}
}

// The program gets the environment, directory and argv[0] of cmd, and
// separate stdout and stderr writers get their own stream.
func TestSupervisedStreamsAndEnv(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `echo "$WHO in $(pwd) as $0"; echo oops >&2; echo more`, "argv-zero")
	cmd.Env = []string{"WHO=the program", "PATH=" + os.Getenv("PATH")}
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	o := s.Run(context.Background(), cmd, 0, "inv", "")
	if o.ExitCode != 0 || o.StartErr != nil || o.WaitErr != nil {
		t.Fatalf("outcome = %+v", o)
	}
	if want := "the program in " + dir + " as argv-zero\nmore\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if stderr.String() != "oops\n" {
		t.Errorf("stderr = %q, want %q", stderr.String(), "oops\n")
	}
	// Without writers the program's output goes nowhere, and it still runs.
	cmd = exec.Command("sh", "-c", "echo lost; echo lost >&2; exit 4")
	if o := s.Run(context.Background(), cmd, 0, "inv2", ""); o.ExitCode != 4 {
		t.Errorf("outcome without writers = %+v, want exit 4", o)
	}
}

// A program that exits while something it started holds its output is
// reported as such once the daemon stopped waiting for the output.
func TestSupervisedHeldOpen(t *testing.T) {
	s := newSupervisor(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command("sh", "-c", `sleep 30 & echo $! > "$1"; echo done`, "sh", pidfile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	o := s.Run(context.Background(), cmd, 0, "inv", "")
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	defer syscall.Kill(pid, syscall.SIGKILL)
	if !o.HeldOpen || o.ExitCode != 0 || out.String() != "done\n" {
		t.Errorf("outcome = %+v, output %q, want exit 0, held open, done", o, out.String())
	}
}

// Many Runs at once share one daemon and each gets its own output and
// exit status.
func TestSupervisedConcurrent(t *testing.T) {
	s := newSupervisor(t)
	const n = 64
	type result struct {
		o              Outcome
		stdout, stderr string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("sh", "-c", `cat; echo " out $1"; echo "err $1" >&2; exit $(($1 % 7))`, "sh", strconv.Itoa(i))
			cmd.Stdin = strings.NewReader("in " + strconv.Itoa(i))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			o := s.Run(context.Background(), cmd, 0, "inv-"+strconv.Itoa(i), "")
			results[i] = result{o, stdout.String(), stderr.String()}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.o.ExitCode != i%7 || r.o.StartErr != nil || r.o.WaitErr != nil {
			t.Errorf("run %d: outcome %+v, want exit %d", i, r.o, i%7)
		}
		if want := fmt.Sprintf("in %d out %d\n", i, i); r.stdout != want {
			t.Errorf("run %d: stdout %q, want %q", i, r.stdout, want)
		}
		if want := fmt.Sprintf("err %d\n", i); r.stderr != want {
			t.Errorf("run %d: stderr %q, want %q", i, r.stderr, want)
		}
	}
	daemons := map[int]bool{}
	for _, name := range records(t, s.Dir) {
		if a := readAttempt(baseOf(s.Dir, name)); a.havePid {
			daemons[a.pid.Daemon] = true
		}
	}
	if len(daemons) != 1 || daemons[0] {
		t.Errorf("daemons named in the records: %v, want one", daemons)
	}
}

// The end of ctx kills the supervised program's whole group,
// grandchildren included.
func TestSupervisedCancelKillsGroup(t *testing.T) {
	s := newSupervisor(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `trap "" TERM; sleep 300 & echo $! > "$1"; wait`, "sh", pidfile)
	done := make(chan Outcome, 1)
	go func() { done <- s.Run(ctx, cmd, 200*time.Millisecond, "inv", "") }()
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	cancel()
	o := proctest.Receive(t, "Run to return after cancellation", done, 15*time.Second)
	if !errors.Is(o.CtxErr, context.Canceled) {
		t.Errorf("outcome = %+v, want cancelled", o)
	}
	proctest.WaitExited(t, "the grandchild", pid, 5*time.Second)
}

// A context that ends at any moment of the start (before the daemon has
// the request, while it starts the program, after) ends the program: the
// engine finds its pid in the record.
func TestSupervisedCancelDuringStart(t *testing.T) {
	s := newSupervisor(t)
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.Command("sleep", "300")
		done := make(chan Outcome, 1)
		go func() { done <- s.Run(ctx, cmd, 100*time.Millisecond, "inv", "") }()
		time.Sleep(time.Duration(i%5) * 500 * time.Microsecond) // spreads the cancellations over the start
		cancel()
		o := proctest.Receive(t, "Run to return after cancellation", done, 10*time.Second)
		if !errors.Is(o.CtxErr, context.Canceled) {
			t.Fatalf("run %d: outcome = %+v, want cancelled", i, o)
		}
	}
}

// A context that ended before Run starts nothing.
func TestSupervisedCancelledBeforeStart(t *testing.T) {
	s := newSupervisor(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mark := filepath.Join(t.TempDir(), "mark")
	o := s.Run(ctx, exec.Command("touch", mark), 0, "inv", "")
	if !errors.Is(o.CtxErr, context.Canceled) || o.StartErr == nil {
		t.Errorf("outcome = %+v, want not started, cancelled", o)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the program ran")
	}
}

// daemonOf waits for the record of id in dir to name its program's pid
// and returns it (the daemon's pid in it too).
func daemonOf(t *testing.T, dir, id string) pidRecord {
	t.Helper()
	var pr pidRecord
	proctest.WaitFor(t, "the program's record", 10*time.Second, func() bool {
		for _, name := range records(t, dir) {
			if strings.HasPrefix(name, fileID(id)+".") && strings.HasSuffix(name, recSuffix) {
				if a := readAttempt(baseOf(dir, name)); a.havePid && a.pid.PID > 0 {
					pr = a.pid
					return true
				}
			}
		}
		return false
	})
	return pr
}

// When the daemon is killed while a program runs, the program dies with it
// (its parent-death signal), what it started is killed by the engine, Run
// returns an error outcome at once, and the next Run starts a new daemon.
func TestSupervisedDaemonKilled(t *testing.T) {
	s := newSupervisor(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command("sh", "-c", `sleep 300 & echo $! > "$1"; wait`, "sh", pidfile)
	done := make(chan Outcome, 1)
	go func() { done <- s.Run(context.Background(), cmd, 0, "inv", "") }()
	grandchild := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	pr := daemonOf(t, s.Dir, "inv")
	if err := syscall.Kill(pr.Daemon, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	o := proctest.Receive(t, "Run to return after the daemon's death", done, 15*time.Second)
	if !errors.Is(o.WaitErr, errSupervisorDied) || o.ExitCode != -1 {
		t.Errorf("outcome = %+v, want the supervisor died", o)
	}
	proctest.WaitExited(t, "the program", pr.PID, 5*time.Second)
	if proctest.Alive(grandchild) {
		t.Errorf("grandchild %d still runs after Run returned", grandchild)
	}

	var out bytes.Buffer
	cmd = exec.Command("echo", "again")
	cmd.Stdout = &out
	if o := s.Run(context.Background(), cmd, 0, "inv2", ""); o.ExitCode != 0 || out.String() != "again\n" {
		t.Fatalf("Run after the daemon died: %+v, output %q", o, out.String())
	}
	if pr2 := daemonOf(t, s.Dir, "inv2"); pr2.Daemon == pr.Daemon {
		t.Errorf("the second Run used the dead daemon %d", pr.Daemon)
	}
}

// TestHelperEngine is the engine of TestEngineKilled: it runs a program
// through a Supervisor until it is killed.
func TestHelperEngine(t *testing.T) {
	dir := os.Getenv("PROCGROUP_HELPER_DIR")
	if dir == "" {
		t.Skip("the engine of TestEngineKilled")
	}
	cmd := exec.Command("sh", "-c", os.Getenv("PROCGROUP_HELPER_SCRIPT"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	Supervisor{Dir: dir}.Run(context.Background(), cmd, 0, "inv-1", "scratch")
	t.Fatal("the program ended before the engine was killed")
}

// startEngine runs TestHelperEngine, the program script through a
// Supervisor in dir, in a process of its own, and returns it.
func startEngine(t *testing.T, dir, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestHelperEngine$")
	cmd.Env = append(os.Environ(), "PROCGROUP_HELPER_DIR="+dir, "PROCGROUP_HELPER_SCRIPT="+script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// When the engine is killed while a program runs, the program carries on,
// its exit status and the tail of what it printed after are recorded, and
// Reattach waits for it and returns them.
func TestEngineKilled(t *testing.T) {
	dir, marks := t.TempDir(), t.TempDir()
	// Should the test fail half way, the program's loop ends anyway.
	t.Cleanup(func() { _ = os.WriteFile(marks+"/go", nil, 0o600) })
	engine := startEngine(t, dir, `echo before; touch "`+marks+`/started"; while [ ! -e "`+marks+`/go" ]; do sleep 0.01; done; echo after; touch "`+marks+`/finished"; exit 7`)
	proctest.WaitFor(t, "the program to start", 10*time.Second, func() bool {
		_, err := os.Stat(marks + "/started")
		return err == nil
	})
	pr := daemonOf(t, dir, "inv-1")
	_ = engine.Process.Kill()
	_ = engine.Wait()
	if !proctest.Alive(pr.PID) {
		t.Fatal("the program died with its engine")
	}
	s := Supervisor{Dir: dir}
	if notes := s.Notes(); len(notes) != 1 || notes[0] != "scratch" {
		t.Errorf("Notes() = %q, want [scratch]", notes)
	}
	done := make(chan Reattached, 1)
	go func() { done <- s.Reattach(context.Background(), "inv-1", 0) }()
	select {
	case r := <-done:
		t.Fatalf("Reattach returned %+v while the program ran", r)
	case <-time.After(100 * time.Millisecond):
	}
	if err := os.WriteFile(marks+"/go", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := proctest.Receive(t, "Reattach to return", done, 15*time.Second)
	if _, err := os.Stat(marks + "/finished"); err != nil {
		t.Fatalf("Reattach returned before the orphan finished: %v", err)
	}
	if !r.Found || !r.Known || r.Outcome.ExitCode != 7 || r.Outcome.CtxErr != nil || r.Note != "scratch" {
		t.Errorf("Reattach = %+v, want found, known, exit 7, note scratch", r)
	}
	if r.Output != "after\n" {
		t.Errorf("output = %q, want %q", r.Output, "after\n")
	}
	if left := records(t, dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
	}
	if r := s.Reattach(context.Background(), "inv-1", 0); r.Found {
		t.Errorf("second Reattach = %+v, want nothing found", r)
	}
	// The daemon, its engine gone and nothing left to run, exits.
	proctest.WaitExited(t, "the orphaned daemon", pr.Daemon, 10*time.Second)
}

// When the attempt's time is up, Reattach kills the orphan's group.
func TestReattachDeadlineKills(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "pid")
	engine := startEngine(t, dir, `trap "" TERM; sleep 300 & echo $! > "`+pidfile+`"; wait`)
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	daemonOf(t, dir, "inv-1")
	_ = engine.Process.Kill()
	_ = engine.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := Supervisor{Dir: dir}.Reattach(ctx, "inv-1", 100*time.Millisecond)
	if !r.Known || !errors.Is(r.Outcome.CtxErr, context.DeadlineExceeded) {
		t.Errorf("Reattach = %+v, want known, deadline exceeded", r)
	}
	if proctest.Alive(pid) {
		t.Errorf("grandchild %d still runs after Reattach returned", pid)
	}
}

// A daemon killed with its program leaves no exit record: Reattach kills
// what is left of the program's group and reports the result unknown.
func TestReattachDaemonGone(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "pid")
	engine := startEngine(t, dir, `sleep 300 & echo $! > "`+pidfile+`"; wait`)
	grandchild := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	pr := daemonOf(t, dir, "inv-1")
	_ = engine.Process.Kill()
	_ = engine.Wait()
	_ = syscall.Kill(pr.Daemon, syscall.SIGKILL)
	proctest.WaitExited(t, "the daemon", pr.Daemon, 10*time.Second)
	// Its parent-death signal killed the program with it.
	proctest.WaitExited(t, "the program", pr.PID, 10*time.Second)
	reattachLost(t, dir, "inv-1", "grandchild", grandchild)
}

// reattachLost reattaches id in dir and checks that its record was found
// with the result lost (not known), and that pid, a process of the
// attempt's group (what is named what), no longer runs once Reattach
// returned.
func reattachLost(t *testing.T, dir, id, what string, pid int) {
	t.Helper()
	r := Supervisor{Dir: dir}.Reattach(context.Background(), id, 0)
	if !r.Found || r.Known {
		t.Errorf("Reattach = %+v, want found, not known", r)
	}
	if proctest.Alive(pid) {
		t.Errorf("%s %d still runs after Reattach returned", what, pid)
	}
}

// A daemon whose engine died before the record was written does not
// start the program, and frees the record.
func TestDaemonEngineGone(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(t.TempDir(), "mark")
	c, err := startDaemonFor(dir, "/proc/self/exe", 1) // not its parent
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	cmd := exec.Command("touch", mark)
	q := &startRequest{Base: filepath.Join(dir, "inv.1-x-1"), Path: cmd.Path, Args: cmd.Args}
	if _, _, err := c.start(q, nil, nil); err != nil {
		t.Fatal(err)
	}
	c.close()
	proctest.Receive(t, "the daemon to exit", c.exited, 10*time.Second)
	if code := c.proc.ProcessState.ExitCode(); code != 0 {
		t.Errorf("daemon exited with status %d, want 0", code)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the program ran although the engine was gone")
	}
	if left := records(t, dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
	}
}

// writeRec writes a record of the per-command supervisor of earlier
// versions (path ends in .pid or .exit).
func writeRec(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeAttempt writes the record file of a daemon's attempt at base, as an
// earlier process's daemon would have: pr, and rec when not nil. Like the
// daemon, it writes in place (a reader polling the file never finds it
// missing meanwhile).
func writeAttempt(t *testing.T, base string, pr pidRecord, rec *exitRecord) {
	t.Helper()
	rf, err := openRecord(base+recSuffix, pr)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	if rec != nil {
		if err := rf.setExit(*rec, false); err != nil {
			t.Fatal(err)
		}
	}
}

// startLeader starts a process (sh -c script with args) leading a group
// of its own, as a stand-in for a supervisor or a daemon, and returns it
// and its start time.
func startLeader(t *testing.T, script string, args ...string) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	st, err := readStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, st.start
}

// A record left while the daemon was starting the program (pid 0): while
// the daemon lives, Reattach waits for the program's pid or the record's
// removal; with the daemon gone, the attempt is lost at once.
func TestReattachPending(t *testing.T) {
	dir := t.TempDir()
	daemon, start := startLeader(t, "sleep 300")
	pending := pidRecord{BootID: bootID(), Started: time.Now(), Daemon: daemon.Process.Pid, DaemonStart: start}

	// The daemon removes the record: the program never started.
	writeAttempt(t, filepath.Join(dir, "a.1-x-1"), pending, nil)
	// The daemon writes the exit record (a start error).
	writeAttempt(t, filepath.Join(dir, "b.1-x-2"), pending, nil)
	// The daemon is gone: nothing will start.
	gone := pending
	gone.DaemonStart--
	writeAttempt(t, filepath.Join(dir, "c.1-x-3"), gone, nil)

	s := Supervisor{Dir: dir}
	if r := s.Reattach(context.Background(), "c", 0); !r.Found || r.Known {
		t.Errorf("Reattach with the daemon gone = %+v, want found, not known", r)
	}
	done := make(chan Reattached, 1)
	go func() { done <- s.Reattach(context.Background(), "a", 0) }()
	select {
	case r := <-done:
		t.Fatalf("Reattach returned %+v while the daemon was starting the program", r)
	case <-time.After(100 * time.Millisecond):
	}
	_ = os.Remove(filepath.Join(dir, "a.1-x-1.rec"))
	if r := proctest.Receive(t, "Reattach to return", done, 10*time.Second); !r.Found || r.Known {
		t.Errorf("Reattach of a removed pending record = %+v, want found, not known", r)
	}

	go func() { done <- s.Reattach(context.Background(), "b", 0) }()
	select {
	case r := <-done:
		t.Fatalf("Reattach returned %+v while the daemon was starting the program", r)
	case <-time.After(100 * time.Millisecond):
	}
	writeAttempt(t, filepath.Join(dir, "b.1-x-2"), pending, &exitRecord{ExitCode: -1, StartError: "no such file or directory", Orphaned: true})
	r := proctest.Receive(t, "Reattach to return", done, 10*time.Second)
	if !r.Known || r.Outcome.StartErr == nil || r.Outcome.StartErr.Error() != "no such file or directory" {
		t.Errorf("Reattach = %+v, want known, a start error", r)
	}
	if left := records(t, dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
	}
}

// The records of the per-command supervisor of earlier versions (no
// daemon named; the supervisor led the program's group) are still
// reattached: an upgrade while programs run loses nothing.
func TestReattachOldRecord(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "inv.1-x")
	exitRec, _ := json.Marshal(exitRecord{ExitCode: 7, Orphaned: true, Output: "finished\n"})
	mark := filepath.Join(t.TempDir(), "mark")
	t.Cleanup(func() { _ = os.WriteFile(mark, nil, 0o600) })
	sup, start := startLeader(t, `while [ ! -e "$3" ]; do sleep 0.01; done; printf '%s' "$1" > "$2"`, string(exitRec), base+".exit", mark)
	writeRec(t, base+".pid", pidRecord{PID: sup.Process.Pid, StartTime: start, BootID: bootID(), Note: "scratch", Started: time.Now()})
	done := make(chan Reattached, 1)
	go func() { done <- Supervisor{Dir: dir}.Reattach(context.Background(), "inv", 0) }()
	select {
	case r := <-done:
		t.Fatalf("Reattach returned %+v while the supervisor ran", r)
	case <-time.After(100 * time.Millisecond):
	}
	if err := os.WriteFile(mark, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := proctest.Receive(t, "Reattach to return", done, 10*time.Second)
	if !r.Found || !r.Known || r.Outcome.ExitCode != 7 || r.Note != "scratch" || r.Output != "finished\n" {
		t.Errorf("Reattach = %+v, want found, known, exit 7, note scratch, output finished", r)
	}
	if left := records(t, dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
	}
}

// A per-command supervisor of earlier versions killed with SIGKILL left
// its program running and no exit record: Reattach kills what is left and
// reports the result unknown.
func TestReattachOldSupervisorGone(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "pid")
	sup, start := startLeader(t, `sleep 300 & echo $! > "$1"; wait`, pidfile)
	writeRec(t, filepath.Join(dir, "inv.1-x.pid"), pidRecord{PID: sup.Process.Pid, StartTime: start, BootID: bootID(), Started: time.Now()})
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	_ = sup.Process.Kill()
	_ = sup.Wait()
	reattachLost(t, dir, "inv", "program", pid)
}

// Release removes this process's records of an id once its Runs returned;
// Prune removes the records of ended attempts of any process but those of
// kept ids, and never those of a program still running.
func TestReleaseAndPrune(t *testing.T) {
	s := newSupervisor(t)
	run := func(id string) {
		if o := s.Run(context.Background(), exec.Command("true"), 0, id, ""); o.ExitCode != 0 {
			t.Fatalf("Run %s: %+v", id, o)
		}
	}
	run("a")
	run("a") // a retry: two attempts
	run("b")
	run("c")
	s.Release("a")
	for _, name := range records(t, s.Dir) {
		if strings.HasPrefix(name, "a.") {
			t.Errorf("Release left %s", name)
		}
	}
	if n := len(records(t, s.Dir)); n != 2 {
		t.Errorf("%d records after Release of a, want those of b and c", n)
	}

	// One running, one of an earlier process whose program and daemon are
	// gone with no exit record (its group's leftovers are killed), one
	// whose program runs under an earlier daemon.
	mark := filepath.Join(t.TempDir(), "mark")
	done := make(chan Outcome, 1)
	go func() {
		done <- s.Run(context.Background(), exec.Command("sh", "-c", `touch "$1"; sleep 300`, "sh", mark), 0, "running", "")
	}()
	proctest.WaitFor(t, "the program to start", 10*time.Second, func() bool {
		_, err := os.Stat(mark)
		return err == nil
	})
	pidfile := filepath.Join(t.TempDir(), "pid")
	lost, lostStart := startLeader(t, `sleep 300 & echo $! > "$1"; wait`, pidfile)
	leftover := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	writeAttempt(t, filepath.Join(s.Dir, "lost.1-x-1"), pidRecord{PID: lost.Process.Pid, StartTime: lostStart, BootID: bootID(), Started: time.Now(), Daemon: 1, DaemonStart: 1}, nil)
	_ = lost.Process.Kill()
	_ = lost.Wait()
	alive, aliveStart := startLeader(t, "sleep 300")
	writeAttempt(t, filepath.Join(s.Dir, "orphan.1-x-2"), pidRecord{PID: alive.Process.Pid, StartTime: aliveStart, BootID: bootID(), Started: time.Now(), Daemon: 1, DaemonStart: 1}, nil)

	if n := s.Prune(map[string]bool{"b": true}); n != 2 {
		t.Errorf("Prune removed %d attempts, want 2 (c, lost)", n)
	}
	var left []string
	for _, name := range records(t, s.Dir) {
		left = append(left, strings.SplitN(name, ".", 2)[0]+strings.TrimPrefix(filepath.Ext(name), "."))
	}
	slices.Sort(left)
	if want := []string{"brec", "orphanrec", "runningrec"}; !slices.Equal(left, want) {
		t.Errorf("records after Prune: %v, want %v", left, want)
	}
	if proctest.Alive(leftover) {
		t.Errorf("what was left of the lost attempt's group (%d) still runs", leftover)
	}
	_ = syscall.Kill(-alive.Process.Pid, syscall.SIGKILL)
	_ = alive.Wait()
	for _, name := range records(t, s.Dir) {
		if strings.HasPrefix(name, "running.") {
			if a := readAttempt(baseOf(s.Dir, name)); a.havePid {
				_ = syscall.Kill(-a.pid.PID, syscall.SIGKILL)
			}
		}
	}
	proctest.Receive(t, "the running program to end", done, 10*time.Second)
	if n := s.Prune(nil); n != 3 {
		t.Errorf("Prune removed %d attempts, want 3 (b, orphan, running)", n)
	}
	if left := records(t, s.Dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
	}
	s.Release("running") // already pruned: nothing to do
}

// Reattach of ids without records answers from one listing of the
// directory: thousands of them find nothing, a record that an earlier
// process left is still found, and a record that appears after the
// listing (which no earlier process can make) is not looked for.
func TestReattachUnknownIDs(t *testing.T) {
	dir := t.TempDir()
	writeRec(t, filepath.Join(dir, "known.1-x-1.exit"), exitRecord{ExitCode: 3, Orphaned: true})
	s := Supervisor{Dir: dir}
	if !s.LeftBehind("known") || s.LeftBehind("unknown-1") {
		t.Errorf("LeftBehind(known), LeftBehind(unknown-1) = %v, %v, want true, false", s.LeftBehind("known"), s.LeftBehind("unknown-1"))
	}
	for i := range 10000 {
		if r := s.Reattach(context.Background(), "unknown-"+strconv.Itoa(i), 0); r.Found {
			t.Fatalf("Reattach of an unknown id = %+v", r)
		}
	}
	writeRec(t, filepath.Join(dir, "late.1-x-2.exit"), exitRecord{ExitCode: 4, Orphaned: true})
	if r := s.Reattach(context.Background(), "late", 0); r.Found {
		t.Errorf("Reattach looked past its listing: %+v", r)
	}
	if s.LeftBehind("late") {
		t.Error("LeftBehind looked past its listing")
	}
	if r := s.Reattach(context.Background(), "known", 0); !r.Found || !r.Known || r.Outcome.ExitCode != 3 {
		t.Errorf("Reattach of the known id = %+v, want found, known, exit 3", r)
	}
	if s.LeftBehind("known") {
		t.Error("LeftBehind(known) after Reattach dealt with it")
	}
}

// A record whose pid was reused since (a process with that pid and
// another start time leads its own group) is not ours: Reattach leaves
// that group alone.
func TestReattachPidReused(t *testing.T) {
	dir := t.TempDir()
	other := exec.Command("sleep", "30")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = other.Process.Kill()
		_ = other.Wait()
	}()
	st, err := readStat(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rec := pidRecord{PID: other.Process.Pid, StartTime: st.start - 1, BootID: bootID(), Started: time.Now()}
	writeRec(t, filepath.Join(dir, "inv.1-x.pid"), rec)
	r := Supervisor{Dir: dir}.Reattach(context.Background(), "inv", 0)
	if !r.Found || r.Known {
		t.Errorf("Reattach = %+v, want found, not known", r)
	}
	if !proctest.Alive(other.Process.Pid) {
		t.Errorf("Reattach killed a process group that reused the recorded pid")
	}
}

// The dedicated supervisor is found next to the executable, through a
// symbolic link to it, and only when it is an executable file.
func TestSupervisorNextTo(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	exe := filepath.Join(dir, "rulebook")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(other, "rulebook")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	if got := supervisorNextTo(exe); got != "" {
		t.Errorf("without a supervisor binary: %q, want none", got)
	}
	sup := filepath.Join(dir, SupervisorName)
	if err := os.WriteFile(sup, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := supervisorNextTo(exe); got != "" {
		t.Errorf("not executable: %q, want none", got)
	}
	if err := os.Chmod(sup, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := supervisorNextTo(exe); got != sup {
		t.Errorf("next to the executable: %q, want %q", got, sup)
	}
	if got := supervisorNextTo(link); got != sup {
		t.Errorf("through a link: %q, want %q", got, sup)
	}
}

// A released slot serves the next attempt: no file is created or removed
// per command, and nothing of the earlier attempt (a longer record, an
// exit record with output) reads as the new one's.
func TestSlotReuse(t *testing.T) {
	s := newSupervisor(t)
	files := func() []string {
		entries, err := os.ReadDir(s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if o := s.Run(context.Background(), exec.Command("true"), 0, "a", "a note that makes the record longer"); o.ExitCode != 0 {
		t.Fatalf("Run a: %+v", o)
	}
	first := files()
	s.Release("a")
	if o := s.Run(context.Background(), exec.Command("sh", "-c", "exit 3"), 0, "b", ""); o.ExitCode != 3 {
		t.Fatalf("Run b: %+v", o)
	}
	if got := files(); !slices.Equal(got, first) || len(got) != 1 {
		t.Fatalf("files after a second attempt: %v, want the first one's slot %v reused", got, first)
	}
	a := readAttempt(baseOf(s.Dir, first[0]))
	if !a.havePid || a.pid.ID != "b" || a.pid.Note != "" || !a.haveExit || a.exit.ExitCode != 3 {
		t.Fatalf("reused slot reads %+v, want b's attempt alone", a)
	}
	s.Release("b")
	if a := readAttempt(baseOf(s.Dir, first[0])); a.found {
		t.Fatalf("released slot reads %+v, want nothing", a)
	}

	base := filepath.Join(t.TempDir(), slotPrefix+"x-1")
	rf, err := openRecord(base+recSuffix, pidRecord{ID: "old", Note: strings.Repeat("n", 300)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rf.setExit(exitRecord{ExitCode: 9, Orphaned: true, Output: strings.Repeat("y", outputTail)}, false); err != nil {
		t.Fatal(err)
	}
	_ = rf.Close()
	rf, err = openRecord(base+recSuffix, pidRecord{ID: "new"})
	if err != nil {
		t.Fatal(err)
	}
	_ = rf.Close()
	if a := readAttempt(base); !a.havePid || a.pid.ID != "new" || a.haveExit {
		t.Fatalf("slot reused after a long record reads %+v, want new's pending record and no exit", a)
	}
	b, err := os.ReadFile(base + recSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if _, rest, _ := bytes.Cut(b, []byte{'\n'}); len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("the earlier attempt's bytes are left after the new record: %.60q...", bytes.TrimSpace(rest))
	}
}

// A supervisor binary that is not this build's daemon (the per-command
// supervisor of an earlier version, left next to an upgraded rulebook,
// rejects the daemon's flags; another build may speak another protocol) is
// not used: the engine supervises with its own binary instead, and the
// command runs.
func TestIncompatibleSupervisorFallsBack(t *testing.T) {
	other := filepath.Join(t.TempDir(), "other-protocol")
	script := "#!/bin/sh\nprintf 'H\\000\\000\\000\\000\\000\\000\\000\\002v9' >&3\nexec sleep 5\n"
	if err := os.WriteFile(other, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"/bin/false", other} {
		t.Run(filepath.Base(prog), func(t *testing.T) {
			s := Supervisor{Dir: t.TempDir(), Program: prog}
			t.Cleanup(func() { closeDaemon(s) })
			if _, err := startDaemon(s.Dir, prog); err == nil {
				t.Fatalf("%s taken as a daemon", prog)
			}
			var out bytes.Buffer
			cmd := exec.Command("sh", "-c", "echo ran; exit 4")
			cmd.Stdout, cmd.Stderr = &out, &out
			if o := s.Run(context.Background(), cmd, 0, "inv", ""); o.ExitCode != 4 || o.StartErr != nil || o.WaitErr != nil {
				t.Fatalf("outcome %+v, want exit 4 through the fallback supervisor", o)
			}
			if out.String() != "ran\n" {
				t.Errorf("output %q", out.String())
			}
			clientsMu.Lock()
			c := clients[clientKey{s.Dir, prog}]
			clientsMu.Unlock()
			if c == nil || c.proc.Path != selfExe {
				t.Errorf("daemon in use: %+v, want %s", c, selfExe)
			}
		})
	}
}

// Prune removes the free slots of earlier processes (they served their
// last attempt) but not this process's, which its next Run reuses.
func TestPruneFreeSlots(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, slotPrefix+"1-x-1")
	own := filepath.Join(dir, slotPrefix+procTag()+"-zz")
	for _, base := range []string{foreign, own} {
		writeAttempt(t, base, pidRecord{ID: "done", BootID: bootID()}, &exitRecord{})
		if err := freeRecord(base + recSuffix); err != nil {
			t.Fatal(err)
		}
	}
	if n := (Supervisor{Dir: dir}).Prune(nil); n != 0 {
		t.Errorf("Prune counted %d attempts, want 0 (free slots hold none)", n)
	}
	if _, err := os.Stat(foreign + recSuffix); !os.IsNotExist(err) {
		t.Errorf("an earlier process's free slot is left: %v", err)
	}
	if _, err := os.Stat(own + recSuffix); err != nil {
		t.Errorf("this process's free slot was removed: %v", err)
	}
}

// readStat finds the fields after the command name when the name holds
// spaces and parentheses (field 2 is "(name)", and the name is the
// program's file name, which anyone may choose).
func TestReadStatCommandNameWithParentheses(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(t.TempDir(), "a) 1 (b) Z 7")
	if err := os.WriteFile(prog, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, start := startLeader(t, `exec "$1" 300`, prog)
	var st stat
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err = readStat(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
		if strings.HasPrefix(string(comm), "a) 1 (b)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program never ran: comm %q", comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.pgrp != cmd.Process.Pid || st.start != start || !st.running() {
		t.Fatalf("stat %+v; want pgrp %d, start %d, running", st, cmd.Process.Pid, start)
	}
}
