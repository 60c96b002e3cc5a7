package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// shellRulebook inserts event data into a shell command line twice (lines
// 7 and 10), once safely through args (line 12).
const shellRulebook = `- name: ops
  sources: [{range: {limit: 1, delay: 1h}}]
  rules:
    - name: log it
      condition: event.i == 0
      actions:
        - run_command: {shell: true, argv: "echo {{ event.i }} >> /tmp/x"}
        - run_command:
            shell: true
            argv: 'logger "{{ vars.tag }}" {{ event.meta.source.name }}'
        - run_command:
            {shell: true, argv: 'echo "$1"', args: ["{{ event.i }}"]}
`

// TestValidateWarnsAboutEventDataInAShell: validate names file:line:col of
// every template that puts event data into a shell command line, and still
// passes the rulebook.
func TestValidateWarnsAboutEventDataInAShell(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shell.yml")
	if err := os.WriteFile(path, []byte(shellRulebook), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "validate", path)
	if code != 0 || !strings.Contains(out, path+": ok") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		path + `:7:50: warning: ruleset "ops": rule "log it": actions[0]: run_command: argv: shell: true runs event data as shell code: "{{ event.i }}" inserts it`,
		path + `:10:44: warning: ruleset "ops": rule "log it": actions[1]: run_command: argv: shell: true runs event data as shell code: "{{ event.meta.source.name }}"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "warning:"); n != 2 {
		t.Errorf("%d warnings, want 2 (args and vars are safe):\n%s", n, out)
	}

	code, out, _ = runCLI(t, "validate", "--format", "json", path)
	var rep struct {
		Valid    bool               `json:"valid"`
		Warnings []*rulebooks.Error `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Valid || len(rep.Warnings) != 2 {
		t.Fatalf("json: exit %d, %+v, %v\n%s", code, rep, err, out)
	}
	if w := rep.Warnings[0]; w.Line != 7 || w.Column != 50 || w.Severity != "warning" || w.Rule != "log it" {
		t.Errorf("first warning = %+v", w)
	}
}

// TestRunLogsShellWarningsAtStart: run logs the same warnings when it
// loads the rulebook.
func TestRunLogsShellWarningsAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shell.yml")
	if err := os.WriteFile(path, []byte(shellRulebook), 0o644); err != nil {
		t.Fatal(err)
	}
	_, logs, _, stop := startApp(t, path, "--data-dir", filepath.Join(dir, "data"))
	defer stop()
	var warned []string
	running := false
	for deadline := time.Now().Add(10 * time.Second); !running && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		warned = warned[:0]
		for line := range strings.Lines(logs.String()) {
			var l struct {
				Level, Message, File string
				Line, Column         int
			}
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			if l.Level == "warn" && strings.Contains(l.Message, "shell: true runs event data as shell code") {
				warned = append(warned, l.File+":"+itoa(l.Line)+":"+itoa(l.Column))
			}
			running = running || l.Message == "running"
		}
	}
	if len(warned) != 2 || warned[0] != path+":7:50" || warned[1] != path+":10:44" {
		t.Fatalf("warnings logged at %v, want %s:7:50 and :10:44\n%s", warned, path, logs.String())
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestValidateRefusesAnOpenListener: a webhook source without any
// authentication on a non-loopback address is an error at its key.
func TestValidateRefusesAnOpenListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "open.yml")
	rb := "- name: hooks\n  sources:\n    - webhook:\n        port: 5000\n  rules: [{name: r, condition: event.i == 0, action: {none: {}}}]\n"
	if err := os.WriteFile(path, []byte(rb), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "validate", path)
	want := path + `:4:9: ruleset "hooks": sources[0]: webhook: port: listening on "0.0.0.0:5000", not a loopback address, without authentication`
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "insecure: true") {
		t.Fatalf("exit %d, want 1 and %q:\n%s", code, want, out)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(rb, "port: 5000", "port: 5000\n        insecure: true", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI(t, "validate", path); code != 0 {
		t.Fatalf("with insecure: true: exit %d:\n%s", code, out)
	}
}

// TestHTTPActionEncodesInsertedURLValues runs a rulebook whose http action
// builds its URL from event data holding a space, "/", "?", "&", "#", "%"
// and "+": the request reaches the path and query the rulebook wrote, each
// value decoding back to itself.
func TestHTTPActionEncodesInsertedURLValues(t *testing.T) {
	type call struct {
		path, rawPath string
		query         map[string][]string
	}
	var mu sync.Mutex
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, call{r.URL.Path, r.URL.EscapedPath(), r.URL.Query()})
		mu.Unlock()
	}))
	defer srv.Close()
	hostile := "a b/c?d&e=f#g%h+i"
	dir := t.TempDir()
	path := filepath.Join(dir, "http.yml")
	rb := fmt.Sprintf(`- name: calls
  sources:
    - generic: {payload: [{name: %q}]}
  rules:
    - name: call
      condition: event.name != ""
      action:
        http:
          method: GET
          url: "%s/items/{{ event.name }}/x?q={{ event.name }}&n=1"
`, hostile, srv.URL)
	if err := os.WriteFile(path, []byte(rb), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	rf := addRunFlags(fs)
	if err := fs.Parse([]string{"--data-dir", filepath.Join(dir, "data")}); err != nil {
		t.Fatal(err)
	}
	var logs rbtest.Buffer
	a, err := newApp(path, rf, io.Discard, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	var got []call
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got = append([]call(nil), calls...)
		mu.Unlock()
	}
	if len(got) != 1 {
		t.Fatalf("%d requests\n%s", len(got), logs.String())
	}
	c := got[0]
	if c.path != "/items/"+hostile+"/x" || c.rawPath != "/items/a%20b%2Fc%3Fd&e=f%23g%25h+i/x" {
		t.Errorf("path %q (raw %q)", c.path, c.rawPath)
	}
	if len(c.query) != 2 || len(c.query["q"]) != 1 || c.query["q"][0] != hostile || c.query["n"][0] != "1" {
		t.Errorf("query %v", c.query)
	}
}
