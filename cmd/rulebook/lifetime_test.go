package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestRunWaitsForPendingTimers: when every source has ended, an open
// not_all window and an open once_after window still fire before the run
// ends, as in Event-Driven Ansible (the run uses the wall clock, so the
// windows are short; the process ends by itself).
func TestRunWaitsForPendingTimers(t *testing.T) {
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yml")
	os.WriteFile(rb, []byte(`- name: rs
  match_multiple_rules: true
  sources:
    - range: {limit: 1}
  rules:
    - name: not all
      condition:
        not_all:
          - event.i == 0
          - event.i == 99
        timeout: 300 milliseconds
      action: {debug: {msg: "not_all fired"}}
    - name: after
      condition: event.i == 0
      throttle: {once_after: 200 milliseconds, group_by: [event.i]}
      action: {debug: {msg: "once_after fired"}}
`), 0o644)
	var stdout, stderr rbtest.Buffer
	code := run([]string{"run", rb, "--data-dir", filepath.Join(dir, "data"), "--log-format", "json"}, strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr.String())
	}
	after, notAll := strings.Index(out, "once_after fired"), strings.Index(out, "not_all fired")
	if after < 0 || notAll < 0 || after > notAll {
		t.Fatalf("want once_after then not_all before the run ends, got:\n%s", out)
	}
}

// TestRunTakesAnsibleRulebookFlags: a command line written for
// ansible-rulebook (--rulebook/-r, --inventory/-i, --vars, --print-events,
// -vv) runs.
func TestRunTakesAnsibleRulebookFlags(t *testing.T) {
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yml")
	os.WriteFile(rb, []byte("- name: rs\n  hosts: all\n  sources:\n    - ansible.eda.range: {limit: 2}\n  rules:\n    - name: r\n      condition: event.i == vars.want\n      action: {debug: {msg: matched}}\n"), 0o644)
	vars := filepath.Join(dir, "vars.yml")
	os.WriteFile(vars, []byte("want: 1\n"), 0o644)
	inv := filepath.Join(dir, "inventory.yml")
	os.WriteFile(inv, []byte("all:\n  hosts:\n    localhost:\n"), 0o644)
	var stdout, stderr rbtest.Buffer
	code := run([]string{"run", "-r", rb, "-i", inv, "--vars", vars, "--print-events", "-vv", "--data-dir", filepath.Join(dir, "data"), "--log-format", "json"},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, `"i":0`) || !strings.Contains(out, `"i":1`) || !strings.Contains(out, "matched") {
		t.Fatalf("--print-events output lacks the events or the firing:\n%s", out)
	}
	if !strings.Contains(stderr.String(), `"level":"debug"`) {
		t.Errorf("-vv did not log at debug level")
	}
	code = run([]string{"run", "-r", rb, filepath.Join(dir, "other.yml")}, strings.NewReader(""), &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "give the rulebook once") {
		t.Errorf("two rulebooks accepted: exit %d", code)
	}
}
