// Package scaleout tests `rulebook run --bus` against the real binary: two
// processes share a Kafka bus (an in-process kfake cluster the binaries
// reach over 127.0.0.1), one is killed with SIGKILL, the other takes its
// partitions; the audit trails of both show every acknowledged event
// processed once and a per-host throttle that held across the handover.
package scaleout

import (
	"bufio"
	"bytes"
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

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rulebook-scaleout")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "rulebook")
	build := exec.Command("go", "build", "-o", binary, "github.com/rulebook-dev/rulebook/cmd/rulebook")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build rulebook:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireBusFlag skips (outside CI) or fails (under CI) when the binary has
// no --bus flag.
func requireBusFlag(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(binary, "run", "--help").CombinedOutput()
	if strings.Contains(string(out), "-bus") {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("rulebook run has no --bus flag:\n%s", out)
	}
	t.Skip("rulebook run has no --bus flag yet")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one running rulebook process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncWriter
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: name, cmd: cmd, log: &syncWriter{}, done: make(chan struct{})}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", p.name, p.log.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s exited with %v", p.name, p.err)
		}
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("%s did not stop within 60s of SIGTERM", p.name)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// logLines returns the process's JSON log lines whose message is msg.
func (p *proc) logLines(msg string) []map[string]any {
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

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitHTTP(t *testing.T, p *proc, url string) {
	t.Helper()
	waitFor(t, 30*time.Second, url+" to answer", func() bool {
		if p.exited() {
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.log.String())
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

// auditLine is one firing of `rulebook audit --format json`.
type auditLine struct {
	Firing struct {
		ID       string   `json:"id"`
		Rule     string   `json:"rule"`
		EventIDs []string `json:"event_ids"`
	} `json:"firing"`
	Invocations []struct {
		Status     string `json:"status"`
		Invocation struct {
			ID string `json:"id"`
		} `json:"invocation"`
	} `json:"invocations"`
}

func audit(t *testing.T, dataDir string) []auditLine {
	t.Helper()
	cmd := exec.Command(binary, "audit", "--data-dir", dataDir, "--format", "json", "--limit", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("audit %s: %v\n%s", dataDir, err, stderr.String())
	}
	var lines []auditLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}
