package durability

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestKillDuringLongCommand kills rulebook with SIGKILL while a long
// run_command runs (its program carries on, an orphan), restarts it at
// once and checks that the runs of the lock key never overlapped: the
// restarted engine reattached to the orphan, waited for it and took its
// result instead of running the invocation again, and the next
// invocation of the same lock key started only after the orphan ended.
func TestKillDuringLongCommand(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	out := dir + "/marks.txt"
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: orphans
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook}
  rules:
    - name: restart host
      condition: event.payload.id != ""
      action:
        run_command:
          argv: [sh, -c, 'echo "start $1" >> "$2"; sleep 3; echo "end $1" >> "$2"', sh, "{{ event.payload.id }}", %q]
          lock: host-1
`, port, out))
	data := dir + "/data"
	send := sender(t, url)
	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	send("a", `{"id": "a"}`)
	send("b", `{"id": "b"}`)
	rbtest.WaitFor(t, 30*time.Second, "the first run to start", func() bool { return strings.Contains(readFile(out), "start a") })
	p.Kill()
	if m := readFile(out); strings.Contains(m, "end a") || strings.Contains(m, "start b") {
		t.Fatalf("marks at the kill: %q; the kill did not hit a running command", m)
	}

	p = start(t, rb, data)
	rbtest.WaitFor(t, 30*time.Second, "both runs to end", func() bool {
		m := readFile(out)
		return strings.Contains(m, "end a") && strings.Contains(m, "end b")
	})
	p.Stop(t)
	marks := strings.Split(strings.TrimSpace(readFile(out)), "\n")
	want := []string{"start a", "end a", "start b", "end b"}
	if strings.Join(marks, "|") != strings.Join(want, "|") {
		t.Fatalf("marks %q, want %q: runs of one lock key overlapped or one ran twice", marks, want)
	}
	for _, l := range rbtest.Audit(t, binary, data) {
		for _, inv := range l.Invocations {
			if inv.Status != "succeeded" {
				t.Errorf("invocation %s ended %s", inv.Invocation.ID, inv.Status)
			}
		}
	}
	if lines := p.LogLines("reattached to a command left by an earlier process"); len(lines) != 1 {
		t.Errorf("%d reattach log lines, want 1", len(lines))
	}
}

// TestGroupTermDuringCommand sends SIGTERM to rulebook and, at the same
// moment, to the process group of a running run_command, as systemd's
// KillMode=control-group or a container runtime signalling everything
// does. The command dies of the signal, but it was interrupted by the
// shutdown, not failed: without retries it is no dead letter, and it
// runs again on the next start.
func TestGroupTermDuringCommand(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	out, pidfile, ranOnce := dir+"/marks.txt", dir+"/pid", dir+"/ran-once"
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: group kill
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook}
  rules:
    - name: remediate
      condition: event.payload.id != ""
      action:
        run_command:
          argv:
            - sh
            - -c
            - 'if [ -e "$3" ]; then echo resumed >> "$1"; exit 0; fi; touch "$3"; echo $$ > "$2"; exec sleep 60'
            - sh
            - %q
            - %q
            - %q
`, port, out, pidfile, ranOnce))
	data := dir + "/data"
	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	sender(t, url)("x", `{"id": "x"}`)
	var pid int
	rbtest.WaitFor(t, 30*time.Second, "the command's pid", func() bool {
		pid, _ = strconv.Atoi(strings.TrimSpace(readFile(pidfile)))
		return pid > 0
	})
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid == syscall.Getpgrp() {
		t.Fatalf("the command runs in the test's process group")
	}
	// The action's group first: the worst case is the action dying before
	// the engine has seen its own signal.
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Wait(60 * time.Second); !exited || err != nil {
		t.Fatalf("rulebook after SIGTERM: exited %v, %v", exited, err)
	}
	for _, l := range rbtest.Audit(t, binary, data) {
		for _, inv := range l.Invocations {
			if inv.Status == "failed" {
				t.Fatalf("the command killed with the engine became a dead letter: %+v", inv.Attempts)
			}
			if n := len(inv.Attempts); n != 1 || !strings.HasPrefix(inv.Attempts[0].Error, "cancelled by shutdown") {
				t.Errorf("attempts %+v, want one cancelled by shutdown", inv.Attempts)
			}
		}
	}

	p = start(t, rb, data)
	rbtest.WaitFor(t, 30*time.Second, "the command to run again", func() bool { return strings.Contains(readFile(out), "resumed") })
	p.Stop(t)
	lines := rbtest.Audit(t, binary, data)
	if len(lines) != 1 || len(lines[0].Invocations) != 1 || lines[0].Invocations[0].Status != "succeeded" {
		t.Fatalf("audit %+v, want one invocation, succeeded", lines)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestKillDuringPlaybook is TestKillDuringLongCommand for run_playbook
// with the real ansible-playbook: the playbook outlives the engine (its
// output pipe broken, it must not die of it), the restarted engine
// reattaches to it and records its result, recap and all, without
// running it again.
func TestKillDuringPlaybook(t *testing.T) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook is not installed (test/setup.sh installs it)")
	}
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	out := dir + "/marks.txt"
	writeFile(t, dir+"/play.yml", `- hosts: localhost
  gather_facts: false
  tasks:
    - shell: echo start >> {{ marks }}
    - shell: sleep 4
    - debug: {msg: "{{ range(0, 200) | list }}"}
    - shell: echo end >> {{ marks }}
`)
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: orphans
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook}
  rules:
    - name: remediate
      condition: event.payload.id != ""
      action:
        run_playbook:
          name: %s/play.yml
          inventory: "localhost,"
          limit: localhost
          connection: local
          extra_vars: {marks: %q}
          lock: host-1
`, port, dir, out))
	data := dir + "/data"
	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	sender(t, url)("a", `{"id": "a"}`)
	rbtest.WaitFor(t, 60*time.Second, "the playbook to start", func() bool { return strings.Contains(readFile(out), "start") })
	p.Kill()
	if strings.Contains(readFile(out), "end") {
		t.Fatal("the playbook ended before the kill; the test proves nothing")
	}
	p = start(t, rb, data)
	rbtest.WaitFor(t, 60*time.Second, "an attempt to finish", func() bool {
		return len(p.LogLines("attempt finished")) > 0
	})
	p.Stop(t)
	if m := readFile(out); m != "start\nend\n" {
		t.Fatalf("marks %q, want one run from start to end", m)
	}
	lines := rbtest.Audit(t, binary, data)
	if len(lines) != 1 || len(lines[0].Invocations) != 1 {
		t.Fatalf("audit %+v, want one invocation", lines)
	}
	inv := lines[0].Invocations[0]
	if inv.Status != "succeeded" || len(inv.Attempts) != 1 {
		t.Fatalf("invocation %s with attempts %+v, want succeeded in one (reattached) attempt", inv.Status, inv.Attempts)
	}
	if n := len(p.LogLines("reattached to an ansible run left by an earlier process")); n != 1 {
		t.Errorf("%d reattach log lines, want 1", n)
	}
	// What the orphan printed once the engine was gone is kept.
	if !strings.Contains(inv.Attempts[0].Output, "PLAY RECAP") {
		t.Errorf("reattached attempt's output %q lacks the recap", inv.Attempts[0].Output)
	}
}
