package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	code, out, errs := runCLI(t, "run", rb, "--data-dir", filepath.Join(dir, "data"), "--log-format", "json")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	after, notAll := strings.Index(out, "once_after fired"), strings.Index(out, "not_all fired")
	if after < 0 || notAll < 0 || after > notAll {
		t.Fatalf("want once_after then not_all before the run ends, got:\n%s", out)
	}
}
