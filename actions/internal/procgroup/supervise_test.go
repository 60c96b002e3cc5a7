package procgroup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/actions/internal/proctest"
)

// A supervised program reports the same outcomes as one run directly,
// with its output, and leaves no record behind.
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Supervisor{Dir: t.TempDir()}
			ctx := context.Background()
			cmd := exec.CommandContext(ctx, tc.argv[0], tc.argv[1:]...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.Stdin = strings.NewReader(tc.stdin)
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
			if left, _ := os.ReadDir(s.Dir); len(left) != 0 {
				t.Errorf("records left behind: %v", left)
			}
		})
	}
}

// The end of ctx kills the supervised program's whole group,
// grandchildren included.
func TestSupervisedCancelKillsGroup(t *testing.T) {
	s := Supervisor{Dir: t.TempDir()}
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `sleep 300 & echo $! > "$1"; wait`, "sh", pidfile)
	done := make(chan Outcome, 1)
	go func() { done <- s.Run(ctx, cmd, 200*time.Millisecond, "inv", "") }()
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	cancel()
	o := proctest.Receive(t, "Run to return after cancellation", done, 15*time.Second)
	if !errors.Is(o.CtxErr, context.Canceled) {
		t.Errorf("outcome = %+v, want cancelled", o)
	}
	proctest.WaitExited(t, "the grandchild", pid, 5*time.Second)
	if left, _ := os.ReadDir(s.Dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
	}
}

// startOrphan starts a supervisor for argv the way Supervisor.Run does,
// but without waiting for it, as if the engine that started it had died:
// Reattach must deal with it. The test process stays its parent (the
// ppid check passes); a supervisor that exited is a zombie until reaped,
// which Reattach must take as gone.
func startOrphan(t *testing.T, dir, id string, argv ...string) *exec.Cmd {
	t.Helper()
	base := filepath.Join(dir, fileID(id)+".1-x")
	args := append([]string{supervisorArg0, "-record", base, "-ppid", strconv.Itoa(os.Getpid()), "-note", "scratch", "--"}, argv...)
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = args
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The engine's end of the output pipe is gone, as after a crash.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	proctest.WaitFor(t, "the pid record", 10*time.Second, func() bool {
		_, err := os.Stat(base + ".pid")
		return err == nil
	})
	return cmd
}

// Reattach waits for a program that outlived its engine and returns how
// it ended, with the tail of the output it printed (the engine's pipe was
// never read: the orphan did not die of SIGPIPE).
func TestReattachWaitsForOrphan(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(t.TempDir(), "mark")
	startOrphan(t, dir, "inv-1", "sh", "-c", `sleep 0.5; echo finished; touch "$1"; exit 7`, "sh", mark)
	s := Supervisor{Dir: dir}
	if notes := s.Notes(); len(notes) != 1 || notes[0] != "scratch" {
		t.Errorf("Notes() = %q, want [scratch]", notes)
	}
	r := s.Reattach(context.Background(), "inv-1", 0)
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("Reattach returned before the orphan finished: %v", err)
	}
	if !r.Found || !r.Known || r.Outcome.ExitCode != 7 || r.Outcome.CtxErr != nil || r.Note != "scratch" {
		t.Errorf("Reattach = %+v, want found, known, exit 7, note scratch", r)
	}
	if r.Output != "finished\n" {
		t.Errorf("output = %q, want %q", r.Output, "finished\n")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
	}
	if r := s.Reattach(context.Background(), "inv-1", 0); r.Found {
		t.Errorf("second Reattach = %+v, want nothing found", r)
	}
}

// When the attempt's time is up, Reattach kills the orphan's group.
func TestReattachDeadlineKills(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "pid")
	startOrphan(t, dir, "inv", "sh", "-c", `trap "" TERM; sleep 300 & echo $! > "$1"; wait`, "sh", pidfile)
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := Supervisor{Dir: dir}.Reattach(ctx, "inv", 100*time.Millisecond)
	if !r.Known || !errors.Is(r.Outcome.CtxErr, context.DeadlineExceeded) {
		t.Errorf("Reattach = %+v, want known, deadline exceeded", r)
	}
	if proctest.Alive(pid) {
		t.Errorf("grandchild %d still runs after Reattach returned", pid)
	}
}

// A supervisor killed with SIGKILL leaves its program running and no exit
// record: Reattach kills what is left and reports the result unknown.
func TestReattachSupervisorGone(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "pid")
	sup := startOrphan(t, dir, "inv", "sh", "-c", `echo $$ > "$1"; sleep 300`, "sh", pidfile)
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	_ = sup.Process.Kill()
	_ = sup.Wait()
	if !proctest.Alive(pid) {
		t.Fatalf("program %d died with its supervisor; the test proves nothing", pid)
	}
	r := Supervisor{Dir: dir}.Reattach(context.Background(), "inv", 0)
	if !r.Found || r.Known {
		t.Errorf("Reattach = %+v, want found, not known", r)
	}
	if proctest.Alive(pid) {
		t.Errorf("program %d still runs after Reattach returned", pid)
	}
}

// A supervisor whose engine died before its record was written does not
// start the program.
func TestSuperviseEngineGone(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(t.TempDir(), "mark")
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{supervisorArg0, "-record", filepath.Join(dir, "inv.1-x"), "-ppid", "1", "--", "touch", mark}
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("supervisor ended with %v, want exit status 3", err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the program ran although the engine was gone")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("records left behind: %v", left)
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
	if err := writeRecord(filepath.Join(dir, "inv.1-x.pid"), rec, true); err != nil {
		t.Fatal(err)
	}
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
