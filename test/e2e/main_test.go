// Package e2e runs the remediation loops end to end: the real `rulebook`
// binary, built once in TestMain, against real Prometheus, Alertmanager,
// ansible-playbook and git, all on 127.0.0.1. Run test/setup.sh first; under
// CI=true a missing program fails the test, otherwise it is skipped.
//
//	go test ./test/e2e/ -v
//	RULEBOOK_E2E_BIN=/usr/local/bin/rulebook go test ./test/e2e/  # a given binary
package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// rulebookBin is the binary under test, built by TestMain (or given by
// RULEBOOK_E2E_BIN, to test a release binary).
var rulebookBin string

func TestMain(m *testing.M) {
	if os.Getenv(hookPostEnv) != "" {
		os.Exit(hookPost(os.Args[1:]))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if bin := os.Getenv("RULEBOOK_E2E_BIN"); bin != "" {
		rulebookBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "rulebook-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if rulebookBin, err = rbtest.Build(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	return m.Run()
}

// need returns the path of program, failing under CI and skipping
// otherwise when it is not installed.
func need(t *testing.T, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (run test/setup.sh)", program)
	}
	t.Skipf("%s is not installed (run test/setup.sh)", program)
	return ""
}

// waitFor polls cond every 50ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	rbtest.WaitFor(t, timeout, what, cond)
}

// lines is a concurrency-safe line collector for a child's output.
type lines struct {
	mu  sync.Mutex
	buf []string
}

func (l *lines) collect(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.buf = append(l.buf, sc.Text())
		l.mu.Unlock()
	}
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.buf...)
}

func (l *lines) String() string { return strings.Join(l.all(), "\n") }

// proc is a child process that the test kills in Cleanup.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *lines
	done   chan struct{}
	waited error
}

// startProc starts a program with its stdout and stderr collected (unless
// cmd.Stdout is already set) and kills it when the test ends.
func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, out: &lines{}, done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var pipes []io.Reader
	if cmd.Stdout == nil {
		r, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		pipes = append(pipes, r)
	}
	r, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	pipes = append(pipes, r)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	for _, r := range pipes {
		wg.Add(1)
		go func() { defer wg.Done(); p.out.collect(r) }()
	}
	go func() {
		wg.Wait()
		p.waited = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, tail(p.out.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process group at once and waits for it.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to timeout for a clean exit.
func (p *proc) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waited != nil {
			t.Errorf("%s exited with %v", p.name, p.waited)
		}
	case <-time.After(timeout):
		p.kill()
		t.Fatalf("%s did not stop within %s after SIGTERM", p.name, timeout)
	}
}

// waitListening waits until addr accepts TCP connections, failing early
// when the process ends.
func (p *proc) waitListening(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	waitFor(t, p.name+" listening on "+addr, timeout, func() bool {
		if p.exited() {
			t.Fatalf("%s exited early (%v):\n%s", p.name, p.waited, tail(p.out.String(), 6000))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// waitHTTP waits until url answers 200.
func (p *proc) waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	waitFor(t, p.name+" ready at "+url, timeout, func() bool {
		if p.exited() {
			t.Fatalf("%s exited early (%v):\n%s", p.name, p.waited, tail(p.out.String(), 6000))
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// engineProc is one `rulebook run`.
type engineProc struct {
	*proc
	dataDir string
}

type engineOptions struct {
	env    []string
	args   []string
	stdout *os.File
}

// startRulebook runs `rulebook run` on the rulebook text written to a file
// in dir, with a fresh data directory and JSON logs.
func startRulebook(t *testing.T, dir, rulebook string, o engineOptions) *engineProc {
	t.Helper()
	path := filepath.Join(dir, "rulebook.yml")
	writeFile(t, path, rulebook)
	data := filepath.Join(dir, "data")
	args := append([]string{"run", path, "--data-dir", data, "--log-format", "json", "--log-level", "debug"}, o.args...)
	cmd := exec.Command(rulebookBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), o.env...)
	if o.stdout != nil {
		cmd.Stdout = o.stdout
	}
	return &engineProc{proc: startProc(t, "rulebook", cmd), dataDir: data}
}

// auditEntry is one line of `rulebook audit --format json`.
type auditEntry = rbtest.AuditLine

// audit reads the audit trail of a stopped engine, oldest first.
func audit(t *testing.T, dataDir string) []auditEntry {
	t.Helper()
	entries := rbtest.Audit(t, rulebookBin, dataDir) // newest first
	slices.Reverse(entries)
	return entries
}

// firingsOf returns the audit entries of one rule, oldest first.
func firingsOf(entries []auditEntry, rule string) []auditEntry {
	var out []auditEntry
	for _, e := range entries {
		if e.Firing.Rule == rule {
			out = append(out, e)
		}
	}
	return out
}

// requireSucceeded fails unless every invocation of e succeeded.
func requireSucceeded(t *testing.T, e auditEntry) {
	t.Helper()
	if len(e.Invocations) == 0 {
		t.Errorf("firing of %q has no invocations", e.Firing.Rule)
	}
	for _, inv := range e.Invocations {
		if inv.Status != "succeeded" {
			b, _ := json.Marshal(inv)
			t.Errorf("firing of %q: %s is %s: %s", e.Firing.Rule, inv.Invocation.Action, inv.Status, tail(string(b), 3000))
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the content of path, "" when it does not exist yet.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// testdata returns the absolute path of a file in testdata.
func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
