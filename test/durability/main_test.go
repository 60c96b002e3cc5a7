// Package durability tests the promises of the ingest path and the
// dispatcher against the real rulebook binary: what got a 2xx is processed
// exactly once whatever crashes, and every accepted action invocation
// reaches a final state after a kill -9.
package durability

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

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rulebook-durability")
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type proc struct {
	cmd *exec.Cmd
	log *syncWriter
	out *syncWriter
}

func start(t *testing.T, rulebook, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"run", rulebook, "--data-dir", dataDir, "--log-format", "json", "--log-level", "info"}, extra...)
	cmd := exec.Command(binary, args...)
	p := &proc{cmd: cmd, log: &syncWriter{}, out: &syncWriter{}}
	cmd.Stdout = p.out
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// syncWriter is a buffer the process writes while the test reads it.
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

// waitHTTP polls until the listener answers (405 to a GET) or the deadline.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rulebook exited with %v\n%s", err, p.log.String())
		}
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("rulebook did not stop after SIGTERM\n%s", p.log.String())
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

type auditLine struct {
	Firing struct {
		ID       string   `json:"id"`
		Rule     string   `json:"rule"`
		EventIDs []string `json:"event_ids"`
	} `json:"firing"`
	Invocations []struct {
		Status   string `json:"status"`
		Attempts []struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"attempts"`
		Invocation struct {
			ID   string         `json:"id"`
			Args map[string]any `json:"args"`
		} `json:"invocation"`
	} `json:"invocations"`
}

func audit(t *testing.T, dataDir string) []auditLine {
	t.Helper()
	out, err := exec.Command(binary, "audit", "--data-dir", dataDir, "--format", "json", "--limit", "0").Output()
	if err != nil {
		t.Fatalf("audit: %v", err)
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

func post(ctx context.Context, url, delivery, body string) (int, []string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Delivery", delivery)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var ans struct {
		IDs []string `json:"ids"`
	}
	json.NewDecoder(resp.Body).Decode(&ans)
	return resp.StatusCode, ans.IDs, nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
