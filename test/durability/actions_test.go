package durability

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestKillWhileActionsRun accepts events whose actions are slow, kills
// rulebook with SIGKILL while some invocations run and others wait in the
// queue, restarts it, and checks that every accepted invocation reached a
// final state (succeeded, after an "interrupted by restart" attempt or a
// reattached one where the kill hit it), none lost.
func TestKillWhileActionsRun(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	out := dir + "/ran.txt"
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: slow
  execution_strategy: parallel
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook}
  rules:
    - name: work
      condition: event.payload.n >= 0
      action:
        run_command:
          argv: [sh, -c, 'sleep 0.3; echo "$1" >> "$2"', sh, "{{ event.payload.id }}", %q]
          retries: 3
          delay: 100ms
`, port, out))
	data := dir + "/data"
	p := start(t, rb, data, "--max-concurrency", "2")
	rbtest.WaitHTTP(t, url)
	const total = 12
	for i := 0; i < total; i++ {
		code, _, err := post(context.Background(), url, fmt.Sprintf("w-%d", i), fmt.Sprintf(`{"n": %d, "id": "job-%d"}`, i, i))
		if err != nil || code != 200 {
			t.Fatalf("post %d: %d %v", i, code, err)
		}
	}
	// Kill once a few ran: the rest are queued or running.
	deadline := time.Now().Add(30 * time.Second)
	for countLines(out) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("actions did not start\n%s", p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Kill()
	before := countLines(out)
	if before >= total {
		t.Fatalf("all %d actions finished before the kill; the test proves nothing", total)
	}

	p = start(t, rb, data, "--max-concurrency", "2")
	deadline = time.Now().Add(60 * time.Second)
	for len(distinct(out)) < total {
		if time.Now().After(deadline) {
			t.Fatalf("after restart only %d of %d jobs ran\n%s", len(distinct(out)), total, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop(t)

	lines := rbtest.Audit(t, binary, data)
	invocations, interrupted := 0, 0
	for _, l := range lines {
		for _, inv := range l.Invocations {
			invocations++
			if inv.Status != "succeeded" {
				t.Errorf("invocation %s ended %s", inv.Invocation.ID, inv.Status)
			}
			for _, a := range inv.Attempts {
				if a.Error == "interrupted by restart" {
					interrupted++
				}
			}
		}
	}
	if invocations != total {
		t.Errorf("audit holds %d invocations, want %d", invocations, total)
	}
	// A command the kill hit either finished as an orphan, and the
	// restarted engine reattached to it, or never started (the kill came
	// before its supervisor's record) and was interrupted.
	reattached := len(p.LogLines("reattached to a command left by an earlier process"))
	if interrupted+reattached == 0 {
		t.Errorf("no attempt was recorded as interrupted or reattached, though the kill hit running actions")
	}
	t.Logf("%d ran before the kill, %d attempts interrupted, %d reattached, all %d succeeded", before, interrupted, reattached, total)
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

func distinct(path string) map[string]bool {
	b, _ := os.ReadFile(path)
	m := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			m[l] = true
		}
	}
	return m
}
