package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// modesApp runs the app on path with an admin listener and returns the
// listener's URL and a stop function that waits for the run to end.
func modesApp(t *testing.T, path, data string) (string, func()) {
	t.Helper()
	_, logs, _, stopRun := startApp(t, path, "--data-dir", data, "--admin", "127.0.0.1:0")
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stopRun()
	}
	t.Cleanup(stop)
	var url string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		s := logs.String()
		for line := range strings.Lines(s) {
			var l struct{ Message, URL string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "admin listening" {
				url = l.URL
			}
		}
		if url != "" && strings.Contains(s, `"message":"running"`) {
			return url, stop
		}
	}
	t.Fatalf("the engine did not start:\n%s", logs.String())
	return "", nil
}

func pendingApprovals(t *testing.T, url string) []engine.InvocationState {
	t.Helper()
	resp, err := http.Get(url + "/api/approvals")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Approvals []engine.InvocationState }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/approvals: %s %v", resp.Status, err)
	}
	return out.Approvals
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestModesEndToEnd runs a rulebook with an auto, a shadow and an approve
// rule on real run_command actions that create files: the auto one runs,
// the shadow one is recorded and never runs (and its throttle works as in
// auto), the approve one waits until approved through the CLI, is
// rejected through the API, and survives a restart while pending.
func TestModesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	port := rbtest.FreePort(t)
	touch := func(prefix string) string {
		return fmt.Sprintf(`{run_command: {argv: [touch, "%s/%s-{{ event.payload.n }}"]}}`, out, prefix)
	}
	rb := fmt.Sprintf(`- name: ops
  match_multiple_rules: true
  sources:
    - name: hook
      webhook: {host: 127.0.0.1, port: %d}
  rules:
    - name: ticket
      condition: event.payload.n > 0
      action: %s
    - name: shadowed
      mode: shadow
      condition: event.payload.n > 0
      throttle: {once_within: 1h, group_by: [event.payload.host]}
      action: %s
    - name: restart
      mode: approve
      approval:
        timeout: 30m
        notify:
          run_command:
            # Fails with a retryable code the first time for each event.
            argv:
              - sh
              - -c
              - 'if [ -e "$2.tried" ]; then printf %%s "$1" > "$2"; else touch "$2.tried"; exit 75; fi'
              - sh
              - "{{ vars.approval.approve_command }}"
              - "%s/notify-{{ event.payload.n }}"
            retry_exit_codes: [75]
            retries: 2
            delay: 10ms
      condition: event.payload.n > 0
      action: %s
`, port, touch("ticket"), touch("shadow"), out, touch("restart"))
	path := filepath.Join(dir, "rb.yml")
	if err := os.WriteFile(path, []byte(rb), 0o644); err != nil {
		t.Fatal(err)
	}
	url, stop := modesApp(t, path, data)
	post := func(n int) {
		t.Helper()
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/", port), "application/json", strings.NewReader(fmt.Sprintf(`{"n": %d, "host": "web1"}`, n)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("post: %s", resp.Status)
		}
	}
	post(1)
	post(2)
	waitUntil(t, "the auto rule's tickets", func() bool { return exists(out+"/ticket-1") && exists(out+"/ticket-2") })
	waitUntil(t, "two pending approvals", func() bool { return len(pendingApprovals(t, url)) == 2 })
	if exists(out+"/restart-1") || exists(out+"/restart-2") {
		t.Fatal("an approve-mode action ran before approval")
	}

	// Shadow: recorded with the rendered command, never run; throttled
	// once per host per hour as in auto (one firing for two events).
	code, stdout, stderr := runCLI(t, "audit", "--admin", url, "--status", "shadowed", "--format", "json")
	if code != 0 {
		t.Fatalf("audit: %d %s", code, stderr)
	}
	if n := strings.Count(stdout, `"status":"shadowed"`); n != 1 || !strings.Contains(stdout, out+"/shadow-1") {
		t.Errorf("shadowed invocations %d, want 1 with the rendered argv:\n%s", n, stdout)
	}
	if exists(out + "/shadow-1") {
		t.Error("a shadow-mode command ran")
	}

	pend := pendingApprovals(t, url)
	// The notify action ran for each, with the command that approves it,
	// on its second attempt (retries of the notify action's policy).
	for _, p := range pend {
		n := p.Invocation.Event["payload"].(map[string]any)["n"]
		f := fmt.Sprintf("%s/notify-%v", out, n)
		waitUntil(t, f, func() bool { return exists(f) })
		b, _ := os.ReadFile(f)
		if want := "rulebook approve " + p.Invocation.ID + " --admin " + url; string(b) != want {
			t.Errorf("notify got %q, want %q", b, want)
		}
	}
	ids := map[string]string{}
	for _, p := range pend {
		ids[fmt.Sprint(p.Invocation.Event["payload"].(map[string]any)["n"])] = p.Invocation.ID
		if argv := fmt.Sprint(p.Invocation.Args["argv"]); !strings.Contains(argv, "restart-") {
			t.Errorf("pending invocation without its rendered args: %v", p.Invocation.Args)
		}
	}
	// Approve n=1 through the CLI.
	code, stdout, stderr = runCLI(t, "approve", ids["1"], "--admin", url, "--reason", "disk is full")
	if code != 0 || !strings.Contains(stdout, "approved "+ids["1"]) {
		t.Fatalf("approve: exit %d\n%s%s", code, stdout, stderr)
	}
	waitUntil(t, "the approved restart", func() bool { return exists(out + "/restart-1") })
	// Reject n=2 through the API.
	resp, err := http.Post(url+"/api/approvals/"+ids["2"], "application/json", strings.NewReader(`{"decision": "rejected", "reason": "not now"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reject: %s", resp.Status)
	}
	// Deciding again: 404.
	code, _, stderr = runCLI(t, "reject", ids["1"], "--admin", url)
	if code == 0 || !strings.Contains(stderr, "404") {
		t.Errorf("rejecting a decided invocation: exit %d, %s", code, stderr)
	}
	code, stdout, _ = runCLI(t, "audit", "--admin", url, "--rule", "restart", "--format", "json")
	if code != 0 || !strings.Contains(stdout, `"decision":"rejected"`) || !strings.Contains(stdout, `"reason":"disk is full"`) ||
		!strings.Contains(stdout, `"status":"rejected"`) || !strings.Contains(stdout, `admin (loopback, no token)`) || !strings.Contains(stdout, `"mode":"approve"`) {
		t.Errorf("audit of the approve rule lacks decisions, who or mode:\n%s", stdout)
	}
	if exists(out + "/restart-2") {
		t.Error("a rejected action ran")
	}

	// Restart while pending: still pending afterwards, notified again
	// (with the admin address of the new process), runs once when
	// approved.
	post(3)
	waitUntil(t, "n=3 pending", func() bool { return len(pendingApprovals(t, url)) == 1 })
	waitUntil(t, "n=3 notified", func() bool { return exists(out + "/notify-3") })
	stop()
	if err := os.Remove(out + "/notify-3"); err != nil {
		t.Fatal(err)
	}
	url, _ = modesApp(t, path, data)
	waitUntil(t, "n=3 pending after the restart", func() bool { return len(pendingApprovals(t, url)) == 1 })
	id3 := pendingApprovals(t, url)[0].Invocation.ID
	waitUntil(t, "n=3 notified again after the restart", func() bool { return exists(out + "/notify-3") })
	if b, _ := os.ReadFile(out + "/notify-3"); string(b) != "rulebook approve "+id3+" --admin "+url {
		t.Errorf("notify after the restart got %q, want the approve command with the new admin address %s", b, url)
	}
	resp, err = http.Post(url+"/api/approvals/"+id3, "application/json", strings.NewReader(`{"decision": "approve"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("approve after restart: %s", resp.Status)
	}
	waitUntil(t, "restart-3", func() bool { return exists(out + "/restart-3") })
	// The file exists once the command ran; its success is recorded
	// right after.
	waitUntil(t, "two succeeded restarts recorded", func() bool {
		code, stdout, _ = runCLI(t, "audit", "--admin", url, "--rule", "restart", "--status", "succeeded", "--format", "json")
		return code == 0 && strings.Count(stdout, `"decision":"approved"`) >= 2
	})
	if n := strings.Count(stdout, `"decision":"approved"`); code != 0 || n != 2 || strings.Count(stdout, `"attempts":[{"n":1,`) != 2 {
		t.Errorf("succeeded restarts %d, want 2 (n=1 and n=3, each once):\n%s", n, stdout)
	}

	// The evidence: report through the admin listener.
	code, stdout, stderr = runCLI(t, "report", "--admin", url, "--since", "1h", "--format", "json")
	if code != 0 {
		t.Fatalf("report: %d %s", code, stderr)
	}
	var rep struct {
		Rules []struct {
			Rule         string
			Firings      int
			Actions      map[string]int
			ApprovalRate *float64 `json:"approval_rate"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	got := map[string]string{}
	for _, r := range rep.Rules {
		rate := "-"
		if r.ApprovalRate != nil {
			rate = fmt.Sprintf("%.2f", *r.ApprovalRate)
		}
		got[r.Rule] = fmt.Sprintf("firings %d run %d shadowed %d approved %d rejected %d rate %s", r.Firings, r.Actions["run"],
			r.Actions["shadowed"], r.Actions["approved"], r.Actions["rejected"], rate)
	}
	want := map[string]string{
		"ticket":   "firings 3 run 3 shadowed 0 approved 0 rejected 0 rate -",
		"shadowed": "firings 1 run 0 shadowed 1 approved 0 rejected 0 rate -",
		"restart":  "firings 3 run 2 shadowed 0 approved 2 rejected 1 rate 0.67",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("report %s: %s, want %s", k, got[k], v)
		}
	}
}
