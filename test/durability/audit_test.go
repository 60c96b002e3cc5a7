package durability

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// `rulebook audit` reads a running engine's audit trail through its admin
// listener (the data directory is held exclusively by the engine, and
// `audit --data-dir` says to use --admin), with the listener's token, and
// the answer has the same shape as the local one.
func TestAuditOfARunningEngine(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	adminAddr := rbtest.FreeAddr(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: audited
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook}
  rules:
    - name: say it
      condition: event.payload.kind == "disk"
      action:
        run_command: {argv: [echo, "{{ event.payload.host }}"]}
`, port))
	data := dir + "/data"
	const token = "audit-token-123"
	p := start(t, rb, data, "--admin", adminAddr, "--admin-token", token)
	defer p.Stop(t)
	rbtest.WaitHTTP(t, url)
	sender(t, url)("a-1", `{"kind": "disk", "host": "web7"}`)

	audit := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), rbtest.AuditTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append([]string{"audit"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return string(out), stderr.String(), err
	}

	var lines []rbtest.AuditLine
	rbtest.WaitFor(t, 30*time.Second, "the firing in the audit of the running engine", func() bool {
		out, stderr, err := audit("--admin", adminAddr, "--admin-token", token, "--format", "json", "--rule", "say it")
		if err != nil {
			t.Fatalf("audit --admin: %v\n%s", err, stderr)
		}
		lines, err = rbtest.ParseAudit([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		return len(lines) == 1 && len(lines[0].Invocations) == 1 && lines[0].Invocations[0].Status == "succeeded"
	})
	inv := lines[0].Invocations[0]
	if lines[0].Firing.Ruleset != "audited" || inv.Invocation.Action != "run_command" || !strings.Contains(inv.Attempts[0].Output, "web7") {
		t.Fatalf("audit entry %+v", lines[0])
	}

	// The table form, and a filter that selects nothing.
	if out, stderr, err := audit("--admin", "http://"+adminAddr, "--admin-token", token); err != nil || !strings.Contains(out, "say it") || !strings.Contains(out, "succeeded") {
		t.Fatalf("audit --admin table: %v\n%s%s", err, out, stderr)
	}
	if out, _, err := audit("--admin", adminAddr, "--admin-token", token, "--format", "json", "--rule", "other"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("audit --admin --rule other: %v %q", err, out)
	}
	// Without the token, and on the data directory the engine holds.
	if _, stderr, err := audit("--admin", adminAddr); err == nil || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--admin-token") {
		t.Fatalf("audit --admin without the token: %v\n%s", err, stderr)
	}
	if _, stderr, err := audit("--data-dir", data); err == nil || !strings.Contains(stderr, "--admin") {
		t.Fatalf("audit --data-dir of a running engine: %v\n%s", err, stderr)
	}
}
