package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReloadOfHugeConditionKeepsRunning: a rulebook whose condition
// nests 1.5 million parentheses overflowed the expression parser's stack,
// a fatal error that ended the running engine on SIGHUP. The reload must
// be rejected with the condition's position and leave the old rulebook
// running.
func TestSIGHUPReloadOfHugeConditionKeepsRunning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rb.yml")
	rb := func(rule, cond string) string {
		return "- name: rs\n  sources: [{range: {limit: 2, delay: 1h}}]\n  rules:\n    - name: " + rule + "\n      action: {none: {}}\n      condition: " + cond + "\n"
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(rb("v1", "event.i == 1"))
	a, logs, done, stop := startApp(t, path, "--data-dir", filepath.Join(dir, "data"))
	defer stop()
	waitLogs := func(want string, n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); strings.Count(logs.String(), want) < n; time.Sleep(10 * time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("the engine stopped (%v) before logging %q:\n%s", err, want, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("log never said %q:\n%s", want, logs.String())
			}
		}
	}
	// After "running" the SIGHUP handler is installed.
	waitLogs(`"message":"running"`, 1)

	write(rb("v2", strings.Repeat("(", 1_500_000)+"true"+strings.Repeat(")", 1_500_000)))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogs("reload rejected", 1)
	if want := `rb.yml:6:18: ruleset \"rs\": rule \"v2\": condition: too long: 3000004 bytes; the limit is 65536 (64 KiB)`; !strings.Contains(logs.String(), want) {
		t.Errorf("the rejection does not say where and why; want %s in:\n%.2000s", want, logs.String())
	}
	if rs := a.currentRulesets(); len(rs) != 1 || len(rs[0].Rules) != 1 || rs[0].Rules[0].Name != "v1" {
		t.Fatalf("the running rulebook changed: %+v", rs)
	}

	// Still running: a valid reload is taken.
	write(rb("v3", "event.i == 1"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogs("rulebook reloaded", 1)
	if rs := a.currentRulesets(); rs[0].Rules[0].Name != "v3" {
		t.Fatalf("after a valid reload the rule is %q, want v3", rs[0].Rules[0].Name)
	}
}
