package playbook

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
	"github.com/rulebook-dev/rulebook/actions/internal/proctest"
	"github.com/rulebook-dev/rulebook/engine"
)

// requireAnsible skips (or, under CI, fails) when bin is not installed.
func requireAnsible(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true: %v (bash test/setup.sh installs ansible-core)", bin, err)
		}
		t.Skipf("%s is not installed (bash test/setup.sh installs ansible-core): %v", bin, err)
	}
}

func newAction(t *testing.T, mode Mode) *Ansible {
	t.Helper()
	a := New(mode, engine.ActionEnv{DataDir: t.TempDir(), Log: zerolog.Nop()})
	tmp := t.TempDir()
	a.environ = func() []string {
		return append(os.Environ(),
			"ANSIBLE_HOST_KEY_CHECKING=False",
			"ANSIBLE_LOCAL_TEMP="+filepath.Join(tmp, "local"),
			"ANSIBLE_REMOTE_TEMP="+filepath.Join(tmp, "remote"),
		)
	}
	return a
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newInv(args map[string]any) *engine.Invocation {
	return &engine.Invocation{
		ID: "inv-1", Ruleset: "web", Rule: "restart widget", Args: args,
		Event: engine.Event{
			"payload": map[string]any{"widget": "w1"},
			"meta":    map[string]any{"uuid": "e-1"},
		},
		Events: map[string]engine.Event{"m_0": {"payload": map[string]any{"widget": "w1"}}},
	}
}

func run(t *testing.T, a *Ansible, ctx context.Context, inv *engine.Invocation) engine.Result {
	t.Helper()
	check := CheckPlaybook
	if a.mode == ModeModule {
		check = CheckModule
	}
	if err := check(inv.Args); err != nil {
		t.Fatalf("Check: %v", err)
	}
	res := a.Run(ctx, inv)
	t.Logf("status %s, error %q, exit %v\n%s", res.Status, res.Error, res.ExitCode, res.Output)
	return res
}

func TestCheck(t *testing.T) {
	play := testdata(t, "event.yml")
	inventory := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(inventory, []byte("localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mode    Mode
		args    map[string]any
		errPath string
		errHas  string
	}{
		{"playbook path", ModePlaybook, map[string]any{"name": play}, "", ""},
		{"collection playbook", ModePlaybook, map[string]any{"name": "my_ns.my_coll.restart"}, "", ""},
		{"templated name", ModePlaybook, map[string]any{"name": "{{ vars.play }}"}, "", ""},
		{"all options", ModePlaybook, map[string]any{
			"name": play, "inventory": inventory, "extra_vars": map[string]any{"a": 1}, "limit": []any{"web1", "web2"},
			"verbosity": 2, "check": true, "connection": "local", "set_facts": true, "post_events": false,
			"output_limit": 4096, "kill_grace": "2s", "timeout": "1m", "retries": 2, "delay": "1s",
		}, "", ""},
		{"templated options", ModePlaybook, map[string]any{
			"name": play, "inventory": "{{ vars.inv }}", "extra_vars": "{{ vars.ev }}", "limit": "{{ event.host }}",
			"verbosity": "{{ vars.v }}", "check": "{{ vars.c }}", "set_facts": "{{ vars.f }}", "connection": "{{ vars.conn }}",
		}, "", ""},
		{"inline inventory", ModePlaybook, map[string]any{"name": play, "inventory": "web1,web2,"}, "", ""},
		{"missing playbook", ModePlaybook, map[string]any{"name": "/nonexistent/site.yml"}, "name", `playbook "/nonexistent/site.yml" does not exist`},
		{"relative missing playbook", ModePlaybook, map[string]any{"name": "playbooks/site.yml"}, "name", "does not exist"},
		{"playbook is a directory", ModePlaybook, map[string]any{"name": t.TempDir()}, "name", "directory"},
		{"no name", ModePlaybook, map[string]any{"limit": "x"}, "name", "required"},
		{"name not string", ModePlaybook, map[string]any{"name": 3}, "name", "string"},
		{"unknown key", ModePlaybook, map[string]any{"name": play, "extravars": map[string]any{}}, "extravars", "unknown key"},
		{"module_args on playbook", ModePlaybook, map[string]any{"name": play, "module_args": "x"}, "module_args", "unknown key"},
		{"missing inventory", ModePlaybook, map[string]any{"name": play, "inventory": "/nonexistent/inv"}, "inventory", "does not exist"},
		{"extra_vars not map", ModePlaybook, map[string]any{"name": play, "extra_vars": []any{"a"}}, "extra_vars", "map"},
		{"ansible_eda reserved", ModePlaybook, map[string]any{"name": play, "extra_vars": map[string]any{"ansible_eda": 1}}, "extra_vars.ansible_eda", "set by rulebook"},
		{"verbosity range", ModePlaybook, map[string]any{"name": play, "verbosity": 5}, "verbosity", "0 to 4"},
		{"check not bool", ModePlaybook, map[string]any{"name": play, "check": "maybe"}, "check", "true or false"},
		{"bad connection", ModePlaybook, map[string]any{"name": play, "connection": "local; rm"}, "connection", "not a connection"},
		{"limit list element", ModePlaybook, map[string]any{"name": play, "limit": []any{"a", 1}}, "limit.1", "string"},
		{"empty limit", ModePlaybook, map[string]any{"name": play, "limit": []any{}}, "limit", "empty"},
		{"module", ModeModule, map[string]any{"name": "ansible.builtin.copy", "module_args": map[string]any{"dest": "/tmp/x"}}, "", ""},
		{"module free-form", ModeModule, map[string]any{"name": "ansible.builtin.command", "module_args": "uptime"}, "", ""},
		{"module templated args", ModeModule, map[string]any{"name": "ansible.builtin.copy", "module_args": "{{ vars.args }}"}, "", ""},
		{"module key=value string", ModeModule, map[string]any{"name": "ansible.builtin.copy", "module_args": "dest=/tmp/x"}, "module_args", "give \"ansible.builtin.copy\" a map"},
		{"module bad name", ModeModule, map[string]any{"name": "copy -a x"}, "name", "not a module name"},
		{"module missing name", ModeModule, map[string]any{}, "name", "the module to run"},
		{"module set_facts", ModeModule, map[string]any{"name": "ping", "set_facts": true}, "set_facts", "unknown key"},
		{"module args list", ModeModule, map[string]any{"name": "ping", "module_args": []any{}}, "module_args", "map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := CheckPlaybook
			if tc.mode == ModeModule {
				check = CheckModule
			}
			checktest.ArgError(t, check(tc.args), tc.errPath, tc.errHas)
		})
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		name  string
		mode  Mode
		args  map[string]any
		hosts []string
		pat   string
		want  string
	}{
		{"hosts from events", ModePlaybook, map[string]any{"name": "a.b.c"}, []string{"web1", "web2"}, "all",
			"-i web1,web2, --limit web1,web2 -e @V a.b.c"},
		{"host pattern", ModePlaybook, map[string]any{"name": "a.b.c"}, nil, "webservers",
			"--limit webservers -e @V a.b.c"},
		{"explicit limit and inventory", ModePlaybook, map[string]any{"name": "a.b.c", "limit": "db*", "inventory": "h1,h2,", "verbosity": 3, "check": true, "connection": "local"}, []string{"web1"}, "",
			"-i h1,h2, --limit db* -c local -vvv --check -e @V a.b.c"},
		{"limit list inlines", ModePlaybook, map[string]any{"name": "a.b.c", "limit": []any{"h1", "h2"}}, nil, "",
			"-i h1,h2, --limit h1,h2 -e @V a.b.c"},
		{"module", ModeModule, map[string]any{"name": "ping"}, []string{"localhost"}, "",
			"all -m ping -i localhost, --limit localhost -e @V"},
		{"module with args", ModeModule, map[string]any{"name": "copy", "module_args": map[string]any{"dest": "/x"}}, nil, "",
			"all -m copy -a {{ rulebook_module_args }} -e @V"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.mode, engine.ActionEnv{Log: zerolog.Nop()})
			cfg, err := parse(tc.mode, tc.args, false)
			if err != nil {
				t.Fatal(err)
			}
			inv := newInv(tc.args)
			inv.Hosts, inv.HostPattern = tc.hosts, tc.pat
			limit, inline, err := cfg.target(inv)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(a.argv(cfg, limit, inline, "V"), " "); got != tc.want {
				t.Errorf("argv = %q\n      want %q", got, tc.want)
			}
		})
	}
}

func TestEventHostsMustBeHostNames(t *testing.T) {
	for _, h := range []string{"web1", "10.0.0.1", "::1", "host-1.example.com"} {
		if _, err := eventHosts([]string{h}); err != nil {
			t.Errorf("%q rejected: %v", h, err)
		}
	}
	for _, h := range []string{"all", "*", "@/etc/passwd", "!prod", "a,b", "web[1:3]", "a b", "", "-x", "web&db", "~re"} {
		if _, err := eventHosts([]string{h}); err == nil {
			t.Errorf("%q accepted as an event host", h)
		}
	}
	inv := newInv(map[string]any{"name": testdata(t, "event.yml")})
	inv.Hosts = []string{"@/etc/passwd"}
	res := New(ModePlaybook, engine.ActionEnv{Log: zerolog.Nop()}).Run(context.Background(), inv)
	if res.Status != engine.Failed || !strings.Contains(res.Error, "meta.hosts") {
		t.Errorf("result = %s %q, want failed naming meta.hosts", res.Status, res.Error)
	}
}

func TestMissingBinaryFails(t *testing.T) {
	a := New(ModePlaybook, engine.ActionEnv{Log: zerolog.Nop()})
	a.Bin = "/nonexistent/ansible-playbook"
	res := a.Run(context.Background(), newInv(map[string]any{"name": testdata(t, "event.yml")}))
	if res.Status != engine.Failed || !strings.Contains(res.Error, "not installed") {
		t.Errorf("result = %s %q", res.Status, res.Error)
	}
}

// The matched events, ruleset, rule and extra_vars reach the playbook as
// data: strings that look like Jinja are not evaluated.
func TestEventReachesPlaybook(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	out := filepath.Join(t.TempDir(), "out.json")
	payload := map[string]any{
		"widget":  "w1",
		"jinja":   "{{ 7 * 6 }}",
		"lookup":  "{{ lookup('pipe', 'touch /tmp/rulebook-pwned') }}",
		"shell":   "$(touch pwned); `id`",
		"unicode": "héllo ☃ 😀 \u2028 \u0085 \x7f \x01",
		"nested":  map[string]any{"list": []any{1.0, 2.5, true, nil, "x"}},
		"number":  12345678901.0,
		"big":     1e21,
	}
	args := map[string]any{
		"name":       testdata(t, "event.yml"),
		"extra_vars": map[string]any{"out_file": out, "extra": "{% raw %}x"},
		"connection": "local",
	}
	inv := newInv(args)
	inv.Event = engine.Event{"payload": payload, "meta": map[string]any{"uuid": "e-1", "hosts": []any{"localhost"}}}
	inv.Hosts = []string{"localhost"}
	a := newAction(t, ModePlaybook)
	res := run(t, a, context.Background(), inv)
	if res.Status != engine.Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Error)
	}
	// The scratch directory stays until the result is durable (a crash
	// before that reattaches the run and reads its stats there).
	if left, err := os.ReadDir(a.tempDir); err != nil || len(left) != 1 {
		t.Errorf("scratch directories before Settle in %s: %v %v, want the run's", a.tempDir, left, err)
	}
	a.Settle(inv)
	if left, err := os.ReadDir(a.tempDir); err != nil || len(left) != 0 {
		t.Errorf("scratch files left behind in %s: %v %v", a.tempDir, left, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		EDA   map[string]any `json:"eda"`
		Extra any            `json:"extra"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := map[string]any{
		"event":         jsonRoundTrip(t, inv.Event),
		"events":        jsonRoundTrip(t, inv.Events),
		"ruleset":       "web",
		"rule":          "restart widget",
		"invocation_id": "inv-1",
	}
	if !reflect.DeepEqual(got.EDA, want) {
		t.Errorf("ansible_eda =\n%v\nwant\n%v", got.EDA, want)
	}
	if got.Extra != "{% raw %}x" {
		t.Errorf("extra = %v", got.Extra)
	}
	if _, err := os.Stat("/tmp/rulebook-pwned"); err == nil {
		t.Error("a lookup in event data was evaluated")
	}
	recap, _ := res.Details["recap"].(map[string]any)
	if h, _ := recap["localhost"].(map[string]any); h["changed"] != 1 || h["failed"] != 0 {
		t.Errorf("recap = %v", res.Details["recap"])
	}
	if res.ExitCode == nil || *res.ExitCode != 0 {
		t.Errorf("exit code = %v", res.ExitCode)
	}
}

func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Only the limited hosts of a two-host inventory run.
func TestLimit(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	inventory := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(inventory, []byte("alpha ansible_connection=local\nbeta ansible_connection=local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		limit any
		hosts []string
		want  []string
	}{
		{"limit argument", "beta", nil, []string{"beta"}},
		{"hosts of the events", nil, []string{"alpha"}, []string{"alpha"}},
		{"no limit", nil, nil, []string{"alpha", "beta"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := map[string]any{"name": testdata(t, "hosts.yml"), "inventory": inventory, "extra_vars": map[string]any{"out_dir": dir}}
			if tc.limit != nil {
				args["limit"] = tc.limit
			}
			inv := newInv(args)
			inv.Hosts = tc.hosts
			res := run(t, newAction(t, ModePlaybook), context.Background(), inv)
			if res.Status != engine.Succeeded {
				t.Fatalf("status %s: %s", res.Status, res.Error)
			}
			var ran []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				ran = append(ran, e.Name())
			}
			sort.Strings(ran)
			if !reflect.DeepEqual(ran, tc.want) {
				t.Errorf("hosts that ran = %v, want %v", ran, tc.want)
			}
			recap, _ := res.Details["recap"].(map[string]any)
			if len(recap) != len(tc.want) {
				t.Errorf("recap = %v, want hosts %v", recap, tc.want)
			}
		})
	}
}

func TestFailingTask(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	inv := newInv(map[string]any{"name": testdata(t, "fail.yml"), "inventory": "localhost,", "connection": "local"})
	// The widget's name stands in for a secret that reached the output.
	inv.Event = engine.Event{"payload": map[string]any{"widget": "w1-hunter2"}}
	inv.Secrets = []string{"hunter2"}
	res := run(t, newAction(t, ModePlaybook), context.Background(), inv)
	if res.Status != engine.Failed {
		t.Fatalf("status = %s, want failed", res.Status)
	}
	if b, _ := json.Marshal(res); strings.Contains(string(b), "hunter2") {
		t.Errorf("secret in result: %s", b)
	}
	if res.ExitCode == nil || *res.ExitCode != exitHostFailed {
		t.Errorf("exit code = %v, want 2", res.ExitCode)
	}
	wantErr := `task "restart the widget" on localhost: widget w1-****** refused to restart`
	if !strings.Contains(res.Error, wantErr) {
		t.Errorf("error %q does not contain %q", res.Error, wantErr)
	}
	for _, s := range []string{"before the failure", "FAILED!", "PLAY RECAP"} {
		if !strings.Contains(res.Output, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	recap, _ := res.Details["recap"].(map[string]any)
	if h, _ := recap["localhost"].(map[string]any); h["failed"] != 1 || h["ok"] != 1 {
		t.Errorf("recap = %v", res.Details["recap"])
	}
}

func TestParseErrorFails(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	inv := newInv(map[string]any{"name": testdata(t, "syntax.yml"), "inventory": "localhost,", "connection": "local"})
	res := run(t, newAction(t, ModePlaybook), context.Background(), inv)
	if res.Status != engine.Failed || !strings.Contains(res.Error, "ERROR!") {
		t.Errorf("result = %s %q, want failed with Ansible's ERROR! line", res.Status, res.Error)
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	// Port 1 on loopback refuses connections at once.
	inventory := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(inventory, []byte("gone ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh ansible_ssh_common_args='-o ConnectTimeout=2'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := newInv(map[string]any{"name": testdata(t, "hosts.yml"), "inventory": inventory, "extra_vars": map[string]any{"out_dir": t.TempDir()}})
	res := run(t, newAction(t, ModePlaybook), context.Background(), inv)
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "unreachable") {
		t.Errorf("result = %s %q, want retryable unreachable", res.Status, res.Error)
	}
}

// expiring is a context whose deadline passes when expire is called, so a
// test can let the deadline hit at a known point however slow the machine.
type expiring struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiring() *expiring {
	return &expiring{Context: context.Background(), done: make(chan struct{})}
}

func (c *expiring) expire()                     { c.once.Do(func() { close(c.done) }) }
func (c *expiring) Done() <-chan struct{}       { return c.done }
func (c *expiring) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiring) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// A ctx deadline kills ansible-playbook and the task's process, and the
// attempt is retryable.
func TestTimeoutKillsPlaybook(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	inv := newInv(map[string]any{
		"name": testdata(t, "sleep.yml"), "inventory": "localhost,", "connection": "local",
		"extra_vars": map[string]any{"pid_file": pidFile}, "kill_grace": "1s",
	})
	ctx := newExpiring()
	defer ctx.expire()
	a := newAction(t, ModePlaybook)
	done := make(chan engine.Result, 1)
	go func() { done <- a.Run(ctx, inv) }()
	pid := proctest.WaitForPID(t, "the task to start", pidFile, time.Minute)
	if !proctest.Alive(pid) {
		t.Fatalf("the task's sleep (pid %d) is not running", pid)
	}
	ctx.expire()
	res := proctest.Receive(t, "Run to return after its deadline", done, 30*time.Second)
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "timed out") {
		t.Errorf("result = %s %q, want retryable timed out", res.Status, res.Error)
	}
	proctest.WaitExited(t, "the task's sleep", pid, 10*time.Second)
	a.Settle(inv)
	if left, err := os.ReadDir(a.tempDir); err != nil || len(left) != 0 {
		t.Errorf("scratch files left behind in %s: %v %v", a.tempDir, left, err)
	}
}

func TestSetStatsBecomeFactsAndEvents(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	inv := newInv(map[string]any{
		"name": testdata(t, "stats.yml"), "inventory": "localhost,", "connection": "local",
		"set_facts": true,
	})
	res := run(t, newAction(t, ModePlaybook), context.Background(), inv)
	if res.Status != engine.Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Error)
	}
	want := []map[string]any{
		{"answer": int64(42), "widget": "w1"},
		{"checked": true, "host": "localhost"},
	}
	if !reflect.DeepEqual(res.Facts, want) {
		t.Errorf("facts = %#v\nwant %#v", res.Facts, want)
	}
	if res.Events != nil {
		t.Errorf("events = %#v, want none without post_events", res.Events)
	}
}

func TestRunModule(t *testing.T) {
	requireAnsible(t, "ansible")
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    map[string]any
		file    string
		content string
		status  engine.Status
		errHas  string
	}{
		{"copy", map[string]any{"name": "ansible.builtin.copy", "module_args": map[string]any{
			"dest": filepath.Join(dir, "copied"), "content": "widget {{ not templated }}\n"}},
			"copied", "widget {{ not templated }}\n", engine.Succeeded, ""},
		{"command free-form", map[string]any{"name": "ansible.builtin.command", "module_args": "touch " + filepath.Join(dir, "touched")},
			"touched", "", engine.Succeeded, ""},
		{"failing command", map[string]any{"name": "ansible.builtin.command", "module_args": "ls /nonexistent-dir"},
			"", "", engine.Failed, `task "ansible.builtin.command" on localhost: non-zero return code: ls: cannot access`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.args["connection"] = "local"
			inv := newInv(tc.args)
			inv.Hosts = []string{"localhost"}
			res := run(t, newAction(t, ModeModule), context.Background(), inv)
			if res.Status != tc.status {
				t.Fatalf("status = %s (%s), want %s", res.Status, res.Error, tc.status)
			}
			if !strings.Contains(res.Error, tc.errHas) {
				t.Errorf("error %q does not contain %q", res.Error, tc.errHas)
			}
			if tc.file != "" {
				b, err := os.ReadFile(filepath.Join(dir, tc.file))
				if err != nil {
					t.Fatalf("module did not write its file: %v", err)
				}
				if string(b) != tc.content {
					t.Errorf("content = %q, want %q", b, tc.content)
				}
			}
			if _, ok := res.Details["recap"].(map[string]any)["localhost"]; !ok {
				t.Errorf("no recap for localhost: %v", res.Details)
			}
		})
	}
}

// A play whose hosts match nothing in the inventory exits 0 without doing
// anything; that is reported as a failure.
func TestNoHostMatchedFails(t *testing.T) {
	requireAnsible(t, "ansible-playbook")
	t.Parallel()
	inventory := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(inventory, []byte("[web]\nalpha ansible_connection=local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	play := filepath.Join(t.TempDir(), "db.yml")
	if err := os.WriteFile(play, []byte("- hosts: db\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, newAction(t, ModePlaybook), context.Background(), newInv(map[string]any{"name": play, "inventory": inventory}))
	if res.Status != engine.Failed || !strings.Contains(res.Error, "ran on no host") {
		t.Errorf("result = %s %q, want failed: ran on no host", res.Status, res.Error)
	}
}

// TestArgvInventoryFlag: ansible-rulebook's --inventory (WithInventory) is
// used when the action names no inventory; the matched hosts still limit.
func TestArgvInventoryFlag(t *testing.T) {
	act, err := WithInventory(PlaybookSpec(), "inv.yml").New(engine.ActionEnv{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	a := act.(*Ansible)
	for _, tc := range []struct {
		args  map[string]any
		hosts []string
		want  string
	}{
		{map[string]any{"name": "a.b.c"}, []string{"web1"}, "-i inv.yml --limit web1 -e @V a.b.c"},
		{map[string]any{"name": "a.b.c", "inventory": "h1,"}, nil, "-i h1, -e @V a.b.c"},
	} {
		cfg, err := parse(ModePlaybook, tc.args, false)
		if err != nil {
			t.Fatal(err)
		}
		inv := newInv(tc.args)
		inv.Hosts = tc.hosts
		limit, inline, err := cfg.target(inv)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(a.argv(cfg, limit, inline, "V"), " "); got != tc.want {
			t.Errorf("argv = %q, want %q", got, tc.want)
		}
	}
}

// The scratch directory of an earlier process's run goes with Prune even
// when the records it was named in were pruned already (run_command's
// Prune works on the same records directory): its vars file may hold
// resolved secrets.
func TestPruneRemovesScratchOfPrunedRecords(t *testing.T) {
	a := newAction(t, ModePlaybook)
	if err := os.MkdirAll(a.tempDir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(a.tempDir, scratchPrefix+"999999999-inv-1-x")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if n := a.Prune(nil); n != 0 {
		t.Fatalf("Prune removed %d records, want none (another action pruned them)", n)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("scratch directory of a pruned run left behind: %v", err)
	}
}
