package rbtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) { os.Exit(Main(m, "rulebook-rbtest", &binary)) }

func TestFreeAddrIsLoopbackAndFree(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q, want 127.0.0.1:port", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr %q: %v", addr, err)
	}
	l.Close()
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}

func TestParseAudit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		rules   []string
		status  string
		wantErr bool
	}{
		{name: "empty", in: ""},
		{name: "blank lines", in: "\n\n"},
		{
			name:   "two firings",
			in:     `{"firing":{"id":"f2","rule":"b","event_ids":["e2"]},"invocations":[{"status":"succeeded","invocation":{"id":"i2","action":"none"}}]}` + "\n" + `{"firing":{"id":"f1","rule":"a"}}` + "\n",
			rules:  []string{"b", "a"},
			status: "succeeded",
		},
		{name: "not json", in: "audit: nothing\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := ParseAudit([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			var rules []string
			for _, l := range lines {
				rules = append(rules, l.Firing.Rule)
			}
			if fmt.Sprint(rules) != fmt.Sprint(tc.rules) {
				t.Fatalf("rules = %v, want %v", rules, tc.rules)
			}
			if tc.status != "" && lines[0].Invocations[0].Status != tc.status {
				t.Fatalf("status = %q, want %q", lines[0].Invocations[0].Status, tc.status)
			}
		})
	}
}

// TestRunStopAudit drives the whole harness against the real binary: an
// event posted to its webhook fires a rule, SIGTERM stops it cleanly, the
// audit shows the firing and the log has the JSON lines.
func TestRunStopAudit(t *testing.T) {
	dir := t.TempDir()
	addr := FreeAddr(t)
	rb := filepath.Join(dir, "rb.yml")
	if err := os.WriteFile(rb, []byte(fmt.Sprintf(`- name: harness
  sources:
    - name: hook
      webhook: {address: %q, path: /hook}
  rules:
    - name: echo
      condition: event.payload.n == 1
      action:
        none: {}
`, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	p := Start(t, binary, "run", rb, "--data-dir", data, "--log-format", "json", "--log-level", "info")
	p.WaitHTTP(t, "http://"+addr+"/hook")
	resp, err := http.Post("http://"+addr+"/hook", "application/json", strings.NewReader(`{"n": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	p.Stop(t)
	if !p.Exited() || p.Err() != nil {
		t.Fatalf("after Stop: exited %v err %v", p.Exited(), p.Err())
	}
	if !strings.Contains(p.Log(), `"level":"info"`) {
		t.Fatalf("log has no JSON info line:\n%s", p.Log())
	}
	lines := Audit(t, binary, data)
	if len(lines) != 1 || lines[0].Firing.Rule != "echo" || len(lines[0].Firing.EventIDs) != 1 {
		t.Fatalf("audit = %+v, want one firing of rule echo with one event", lines)
	}
}

func TestKillEndsProcess(t *testing.T) {
	p := StartWith(t, Options{Name: "sleeper", Combined: true}, "sleep", "60")
	if p.Exited() {
		t.Fatal("sleep exited at once")
	}
	p.Kill()
	if !p.Exited() || p.Err() == nil {
		t.Fatalf("after Kill: exited %v err %v, want a signal error", p.Exited(), p.Err())
	}
	p.Kill() // idempotent
}

func TestWaitForPollsUntilTrue(t *testing.T) {
	n := 0
	WaitFor(t, 5*time.Second, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

func TestRepeatedKeys(t *testing.T) {
	for line, want := range map[string][]string{
		`{"a":1,"b":{"a":2},"c":[1]}`:     nil,
		`{"a":1,"b":2,"a":3,"b":4,"a":5}`: {"a", "b", "a"},
	} {
		got, err := RepeatedKeys(line)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("RepeatedKeys(%s) = %q, %v; want %q", line, got, err, want)
		}
	}
	for _, line := range []string{``, `[1]`, `{"a":`} {
		if _, err := RepeatedKeys(line); err == nil {
			t.Errorf("RepeatedKeys(%q): no error", line)
		}
	}
}
