// Package rbtest is the harness the end-to-end tests share to run the real
// rulebook binary: build it once, pick free loopback ports, start
// `rulebook` with its output captured, wait for its listeners, stop or kill
// it, and read its audit trail back as JSON.
package rbtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Package is the import path of the rulebook command.
const Package = "github.com/rulebook-dev/rulebook/cmd/rulebook"

// SupervisePackage is the import path of the dedicated supervisor, which
// Build installs next to the rulebook binary.
const SupervisePackage = "github.com/rulebook-dev/rulebook/cmd/rulebook-supervise"

// StopTimeout is how long Stop waits for a clean exit after SIGTERM.
const StopTimeout = 60 * time.Second

// Build compiles the rulebook binary, and rulebook-supervise next to it,
// into dir and returns the rulebook binary's path. It is
// meant for TestMain; the go tool's output goes to os.Stderr.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "rulebook")
	build := exec.Command("go", "build", "-o", bin, Package)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build rulebook: %w", err)
	}
	// The dedicated supervisor next to it, as installed (the engine
	// executes itself as the supervisor without it; the unit tests of
	// actions/internal/procgroup cover that way).
	sup := exec.Command("go", "build", "-o", filepath.Join(dir, "rulebook-supervise"), SupervisePackage)
	sup.Stdout, sup.Stderr = os.Stderr, os.Stderr
	if err := sup.Run(); err != nil {
		return "", fmt.Errorf("build rulebook-supervise: %w", err)
	}
	return bin, nil
}

// Main builds the binary into a temporary directory named after prefix,
// stores its path in *bin, runs the tests and removes the directory. A
// TestMain is then `func TestMain(m *testing.M) { os.Exit(rbtest.Main(m, "x", &binary)) }`.
func Main(m *testing.M, prefix string, bin *string) int {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin, err = Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// BuildT compiles the binary into a test's temporary directory.
func BuildT(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rulebook")
	build := exec.Command("go", "build", "-o", bin, Package)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// FreeAddr returns a 127.0.0.1 address no one listened on a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	var p int
	fmt.Sscan(port, &p)
	return p
}

// Buffer is a bytes.Buffer a process writes while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Options tune Start.
type Options struct {
	Name     string   // in failure messages; "rulebook" when empty
	Env      []string // added to os.Environ()
	Combined bool     // stdout goes to Log() too
}

// Process is one running binary.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	log  *Buffer
	out  *Buffer
	done chan struct{}
	err  error
}

// Start runs bin with args, stderr in Log() and stdout in Stdout(). The
// process is killed when the test ends, and its log printed if it failed.
func Start(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	return StartWith(t, Options{}, bin, args...)
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options, bin string, args ...string) *Process {
	t.Helper()
	if o.Name == "" {
		o.Name = "rulebook"
	}
	cmd := exec.Command(bin, args...)
	if o.Env != nil {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	p := &Process{Name: o.Name, Cmd: cmd, log: &Buffer{}, out: &Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.log
	cmd.Stdout = p.out
	if o.Combined {
		cmd.Stdout = p.log
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", o.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("log of %s:\n%s", p.Name, p.log.String())
		}
	})
	return p
}

// Log is what the process wrote to stderr (and stdout with Combined).
func (p *Process) Log() string { return p.log.String() }

// Stdout is what the process wrote to stdout (empty with Combined).
func (p *Process) Stdout() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error once Exited.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Wait waits up to d for the process to exit and returns its error.
func (p *Process) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// Stop sends SIGTERM and fails the test unless the process exits cleanly
// within StopTimeout.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s exited with %v\n%s", p.Name, p.err, p.log.String())
		}
	case <-time.After(StopTimeout):
		_ = p.Cmd.Process.Kill()
		t.Fatalf("%s did not stop within %s of SIGTERM\n%s", p.Name, StopTimeout, p.log.String())
	}
}

// Kill sends SIGKILL (unless the process has ended) and waits for it.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// LogLines returns the JSON log lines whose message is msg.
func (p *Process) LogLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.log.String()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor polls cond every 50ms until it holds, failing the test when
// timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitHTTPTimeout bounds WaitHTTP and WaitOK.
const WaitHTTPTimeout = 30 * time.Second

// WaitHTTP polls url until it answers with any status.
func WaitHTTP(t testing.TB, url string) {
	t.Helper()
	waitHTTP(t, nil, url, false)
}

// WaitHTTP polls url until it answers with any status, failing early with
// the log when the process ends.
func (p *Process) WaitHTTP(t testing.TB, url string) {
	t.Helper()
	waitHTTP(t, p, url, false)
}

// WaitOK polls url until it answers 200, failing early with the log when
// the process ends.
func (p *Process) WaitOK(t testing.TB, url string) {
	t.Helper()
	waitHTTP(t, p, url, true)
}

func waitHTTP(t testing.TB, p *Process, url string, ok200 bool) {
	t.Helper()
	deadline := time.Now().Add(WaitHTTPTimeout)
	for {
		if p != nil && p.Exited() {
			t.Fatalf("%s exited: %v\n%s", p.Name, p.err, p.log.String())
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if !ok200 || resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			log := ""
			if p != nil {
				log = p.log.String()
			}
			t.Fatalf("%s never answered within %s\n%s", url, WaitHTTPTimeout, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AuditLine is one firing of `rulebook audit --format json`.
type AuditLine struct {
	Firing struct {
		ID       string    `json:"id"`
		Time     time.Time `json:"time"`
		Ruleset  string    `json:"ruleset"`
		Rule     string    `json:"rule"`
		EventIDs []string  `json:"event_ids"`
	} `json:"firing"`
	Invocations []struct {
		Status   string `json:"status"`
		Attempts []struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Output string `json:"output"`
		} `json:"attempts"`
		Invocation struct {
			ID     string         `json:"id"`
			Action string         `json:"action"`
			Args   map[string]any `json:"args"`
		} `json:"invocation"`
	} `json:"invocations"`
}

// AuditTimeout bounds one `rulebook audit`.
const AuditTimeout = 30 * time.Second

// Audit runs `rulebook audit --format json --limit 0` on dataDir and
// returns its lines in the order printed (newest first).
func Audit(t testing.TB, bin, dataDir string) []AuditLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), AuditTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "audit", "--data-dir", dataDir, "--format", "json", "--limit", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("audit %s: %v\n%s", dataDir, err, stderr.String())
	}
	lines, err := ParseAudit(out)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// ParseAudit decodes the JSON lines of `rulebook audit --format json`.
func ParseAudit(out []byte) ([]AuditLine, error) {
	var lines []AuditLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l AuditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("audit line %q: %w", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// RepeatedKeys returns the keys that appear more than once at the top of
// the JSON object in line (encoding/json keeps only the last of a repeat,
// so a log line's map cannot show them), or an error when line is not one
// object.
func RepeatedKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %q", line)
	}
	seen := map[string]bool{}
	var repeated []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if seen[k] {
			repeated = append(repeated, k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return repeated, nil
}
