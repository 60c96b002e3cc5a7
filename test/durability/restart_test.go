package durability

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// A throttle window survives a restart: the rule state is rebuilt from the
// journal on start, so a once_within rule does not fire again right after
// the process comes back.
func TestThrottleSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	out := dir + "/ran.txt"
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: restart
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook}
  rules:
    - name: once an hour
      condition: event.payload.kind == "disk"
      throttle: {once_within: 1h}
      action:
        run_command:
          argv: [sh, -c, 'echo "$1" >> "$2"', sh, "{{ event.payload.id }}", %q]
    - name: marker
      condition: event.payload.kind == "marker"
      action: {none: {}}
`, port, out))
	data := dir + "/data"
	send := sender(t, url)

	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	send("d-1", `{"kind": "disk", "id": "first"}`)
	rbtest.WaitFor(t, 30*time.Second, "the first action", func() bool { return countLines(out) == 1 })
	p.Stop(t)

	p = start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	send("d-2", `{"kind": "disk", "id": "after restart"}`)
	send("m-1", `{"kind": "marker", "id": "1"}`)
	waitMarker(t, p)
	p.Stop(t) // drains the action queue
	if b, _ := os.ReadFile(out); countLines(out) != 1 {
		t.Fatalf("the throttled rule ran again after the restart:\n%s\nlog:\n%s", b, p.Log())
	}
	if lines := p.LogLines("rule state rebuilt from the journal"); len(lines) != 1 || lines[0]["records"] != float64(1) {
		t.Errorf("log of the rebuild: %v, want one line with records 1", lines)
	}
	fired := 0
	for _, l := range rbtest.Audit(t, binary, data) {
		if l.Firing.Rule == "once an hour" {
			fired++
		}
	}
	if fired != 1 {
		t.Errorf("audit holds %d firings of the throttled rule, want 1", fired)
	}
}

// A fact survives a restart of the real binary even when the history
// replayed on start (--state-lookback) no longer holds the event that set
// it: facts are stored in the journal.
func TestFactSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	out := dir + "/ran.txt"
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: facts
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook}
  rules:
    - name: maintenance on
      condition: event.payload.kind == "maintenance"
      action: {set_fact: {fact: {maintenance: "{{ event.payload.host }}"}}}
    - name: alert in maintenance
      condition:
        all:
          - events.alert << event.payload.kind == "alert"
          - fact.maintenance == events.alert.payload.host
      action:
        run_command:
          argv: [sh, -c, 'echo "$1" >> "$2"', sh, "{{ events.alert.payload.host }}", %q]
    - name: marker
      condition: event.payload.kind == "marker"
      action: {none: {}}
`, port, out))
	data := dir + "/data"
	send := sender(t, url)
	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	send("m-on", `{"kind": "maintenance", "host": "h1"}`)
	send("mark-1", `{"kind": "marker"}`)
	waitMarker(t, p)
	p.Stop(t)

	// Nothing of the history is replayed: the fact can only come from the
	// store.
	p = start(t, rb, data, "--state-lookback", "1ns")
	rbtest.WaitHTTP(t, url)
	send("a-1", `{"kind": "alert", "host": "h1"}`)
	send("a-2", `{"kind": "alert", "host": "h2"}`)
	send("mark-2", `{"kind": "marker"}`)
	waitMarker(t, p)
	p.Stop(t) // drains the action queue
	if b, _ := os.ReadFile(out); string(b) != "h1\n" {
		t.Fatalf("actions after the restart: %q, want h1 only (the host in maintenance)\nlog:\n%s", b, p.Log())
	}
	if lines := p.LogLines("facts restored"); len(lines) != 1 || lines[0]["facts"] != float64(1) {
		t.Errorf("log of the restore: %v, want one line with facts 1", lines)
	}
	if lines := p.LogLines("rule state rebuilt from the journal"); len(lines) != 1 || lines[0]["records"] != float64(0) {
		t.Errorf("log of the rebuild: %v, want one line with records 0 (--state-lookback 1ns)", lines)
	}
}

// countMarkers counts the firings of the marker rule in p's log.
func countMarkers(p *rbtest.Process) int {
	n := 0
	for _, l := range p.LogLines("rule fired") {
		if l["rule"] == "marker" {
			n++
		}
	}
	return n
}

// sender posts JSON bodies to url and fails the test on anything but 200.
func sender(t *testing.T, url string) func(delivery, body string) {
	return func(delivery, body string) {
		t.Helper()
		code, _, err := post(context.Background(), url, delivery, body)
		if err != nil || code != 200 {
			t.Fatalf("post %s: %d %v", delivery, code, err)
		}
	}
}

// waitMarker waits until p evaluated the marker event, and so everything
// sent before it (records are processed in order).
func waitMarker(t *testing.T, p *rbtest.Process) {
	t.Helper()
	rbtest.WaitFor(t, 30*time.Second, "the marker event", func() bool { return countMarkers(p) >= 1 })
}
