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
	send := func(delivery, body string) {
		t.Helper()
		code, _, err := post(context.Background(), url, delivery, body)
		if err != nil || code != 200 {
			t.Fatalf("post %s: %d %v", delivery, code, err)
		}
	}
	// processed waits until the engine has evaluated the marker event,
	// and so everything sent before it (records are processed in order).
	processed := func(p *rbtest.Process) {
		t.Helper()
		rbtest.WaitFor(t, 30*time.Second, "the marker event", func() bool {
			for _, l := range p.LogLines("rule fired") {
				if l["rule"] == "marker" {
					return true
				}
			}
			return false
		})
	}

	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	send("d-1", `{"kind": "disk", "id": "first"}`)
	rbtest.WaitFor(t, 30*time.Second, "the first action", func() bool { return countLines(out) == 1 })
	p.Stop(t)

	p = start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	send("d-2", `{"kind": "disk", "id": "after restart"}`)
	send("m-1", `{"kind": "marker", "id": "1"}`)
	processed(p)
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
