package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer the run's goroutines may share, as they
// share the process's stdout and stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEventsOut: debug and print_event output goes to stdout by default and
// to the --events-out file when given, never into the logs on stderr; the
// file is appended to across runs.
func TestEventsOut(t *testing.T) {
	quickstart, err := filepath.Abs("../../rulebooks/examples/quickstart.yml")
	if err != nil {
		t.Fatal(err)
	}
	runQuickstart := func(extra ...string) (stdout, stderr string) {
		t.Helper()
		var out, errb lockedBuffer
		args := append([]string{"run", quickstart, "--data-dir", t.TempDir(), "--log-format", "json"}, extra...)
		if code := run(args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		return out.String(), errb.String()
	}
	const greeting = "hello from tick 1\n"

	stdout, stderr := runQuickstart()
	if !strings.HasPrefix(stdout, greeting) || !strings.Contains(stdout, `"i":4`) {
		t.Errorf("default: stdout %q lacks the debug and print_event output", stdout)
	}
	if strings.Contains(stderr, "hello from tick") {
		t.Errorf("default: debug output in the logs: %s", stderr)
	}

	file := filepath.Join(t.TempDir(), "events.out")
	for i := 0; i < 2; i++ {
		stdout, stderr = runQuickstart("--events-out", file)
		if stdout != "" {
			t.Errorf("--events-out FILE: stdout %q, want nothing", stdout)
		}
		if strings.Contains(stderr, "hello from tick") {
			t.Errorf("--events-out FILE: debug output in the logs: %s", stderr)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), greeting); n != 2 {
		t.Errorf("events file holds %d greetings after two runs, want 2 (appended): %q", n, b)
	}
	if n := strings.Count(string(b), `"i":4`); n != 2 {
		t.Errorf("events file holds %d print_event lines after two runs, want 2: %q", n, b)
	}

	stdout, _ = runQuickstart("--events-out", "-")
	if !strings.HasPrefix(stdout, greeting) {
		t.Errorf("--events-out -: stdout %q lacks the debug output", stdout)
	}

	var errb lockedBuffer
	bad := filepath.Join(t.TempDir(), "no", "such", "dir", "out")
	if code := run([]string{"run", quickstart, "--data-dir", t.TempDir(), "--events-out", bad}, strings.NewReader(""), &lockedBuffer{}, &errb); code == 0 || !strings.Contains(errb.String(), "--events-out") {
		t.Errorf("unwritable --events-out: exit %d, stderr %q; want a failure naming the flag", code, errb.String())
	}
}
