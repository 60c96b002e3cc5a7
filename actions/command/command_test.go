package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
	"github.com/rulebook-dev/rulebook/actions/internal/proctest"
	"github.com/rulebook-dev/rulebook/engine"
)

// The test binary doubles as the helper program: with RULEBOOK_TEST_HELPER
// set it prints its arguments and stdin as JSON and exits.
func TestMain(m *testing.M) {
	switch os.Getenv("RULEBOOK_TEST_HELPER") {
	case "argv":
		in, _ := io.ReadAll(os.Stdin)
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"args":  os.Args[1:],
			"stdin": string(in),
			"env":   os.Getenv("EXTRA"),
			"id":    os.Getenv("RULEBOOK_INVOCATION_ID"),
		})
		os.Exit(0)
	case "spew":
		n, _ := strconv.Atoi(os.Args[1])
		fmt.Print(strings.Repeat("a", n))
		fmt.Print("END")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type helperOut struct {
	Args  []string `json:"args"`
	Stdin string   `json:"stdin"`
	Env   string   `json:"env"`
	ID    string   `json:"id"`
}

func newInv(args map[string]any) *engine.Invocation {
	return &engine.Invocation{
		ID: "inv-1", Action: Type, Ruleset: "rs", Rule: "r", Args: args,
		Event: engine.Event{"payload": map[string]any{"x": "y"}},
	}
}

func toAny(ss ...string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func helperEnv(mode string) map[string]any {
	// atexit_sleep_ms: a -race helper would otherwise linger 1s at exit.
	return map[string]any{"RULEBOOK_TEST_HELPER": mode, "GORACE": "atexit_sleep_ms=0"}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		args    map[string]any
		errPath string // "" means valid
		errHas  string
	}{
		{"minimal", map[string]any{"argv": toAny("true")}, "", ""},
		{"templated element", map[string]any{"argv": toAny("echo", "{{ event.x }}")}, "", ""},
		{"whole argv template", map[string]any{"argv": "{{ vars.cmd }}"}, "", ""},
		{"all options", map[string]any{
			"argv": toAny("x"), "env": map[string]any{"A": "1", "B": 2, "C": true}, "inherit_env": false,
			"dir": "/tmp", "stdin": "none", "success_exit_codes": []any{0, 3}, "retry_exit_codes": []any{75},
			"output_limit": "1MiB", "kill_grace": "1s", "timeout": "5s", "retries": 3,
		}, "", ""},
		{"templates in typed keys", map[string]any{
			"argv": toAny("x"), "shell": "{{ vars.s }}", "stdin": "{{ vars.in }}", "success_exit_codes": "{{ vars.c }}",
			"retry_exit_codes": []any{"{{ vars.r }}"}, "output_limit": "{{ vars.n }}", "inherit_env": "{{ vars.i }}",
		}, "", ""},
		{"shell string", map[string]any{"argv": "echo hi | wc -c", "shell": true}, "", ""},
		{"shell one-element list", map[string]any{"argv": toAny("echo hi"), "shell": true}, "", ""},
		{"missing argv", map[string]any{}, "argv", "required"},
		{"empty argv", map[string]any{"argv": []any{}}, "argv", "empty"},
		{"empty program", map[string]any{"argv": toAny("", "x")}, "argv.0", "empty"},
		{"string argv without shell", map[string]any{"argv": "rm -rf /"}, "argv", "shell: true"},
		{"number element", map[string]any{"argv": []any{"sleep", 5}}, "argv.1", "must be a string"},
		{"map element", map[string]any{"argv": []any{"x", map[string]any{}}}, "argv.1", "must be a string"},
		{"shell with several elements", map[string]any{"argv": toAny("echo", "hi"), "shell": true}, "argv", "one string"},
		{"shell not bool", map[string]any{"argv": toAny("x"), "shell": "yes please"}, "shell", "true or false"},
		{"unknown key", map[string]any{"argv": toAny("x"), "argz": toAny("y")}, "argz", "unknown key"},
		{"shell args", map[string]any{"argv": `echo "$1"`, "shell": true, "args": toAny("{{ event.x }}", "b")}, "", ""},
		{"shell args whole template", map[string]any{"argv": `echo "$@"`, "shell": true, "args": "{{ event.list }}"}, "", ""},
		{"args with a templated shell", map[string]any{"argv": `echo "$1"`, "shell": "{{ vars.s }}", "args": toAny("a")}, "", ""},
		{"args without shell", map[string]any{"argv": toAny("echo"), "args": toAny("y")}, "args", "shell: true"},
		{"args with shell false", map[string]any{"argv": toAny("echo"), "shell": false, "args": toAny("y")}, "args", "put the arguments in argv"},
		{"args not a list", map[string]any{"argv": "echo", "shell": true, "args": "y"}, "args", "list of strings"},
		{"args number element", map[string]any{"argv": "echo", "shell": true, "args": []any{"a", 5}}, "args.1", "must be a string"},
		{"bad env name", map[string]any{"argv": toAny("x"), "env": map[string]any{"A-B": "1"}}, "env.A-B", "not a valid"},
		{"env list value", map[string]any{"argv": toAny("x"), "env": map[string]any{"A": []any{}}}, "env.A", "string, number or boolean"},
		{"bad stdin", map[string]any{"argv": toAny("x"), "stdin": "file"}, "stdin", `"file"`},
		{"exit code out of range", map[string]any{"argv": toAny("x"), "retry_exit_codes": []any{256}}, "retry_exit_codes.0", "outside"},
		{"exit code overlap", map[string]any{"argv": toAny("x"), "retry_exit_codes": []any{0}}, "retry_exit_codes", "also in success"},
		{"exit codes not list", map[string]any{"argv": toAny("x"), "success_exit_codes": 0}, "success_exit_codes", "list"},
		{"bad size", map[string]any{"argv": toAny("x"), "output_limit": "lots"}, "output_limit", "not a size"},
		{"zero size", map[string]any{"argv": toAny("x"), "output_limit": 0}, "output_limit", "positive"},
		{"huge size", map[string]any{"argv": toAny("x"), "output_limit": "1000MiB"}, "output_limit", "larger"},
		{"bad grace", map[string]any{"argv": toAny("x"), "kill_grace": "soon"}, "kill_grace", "not a duration"},
		{"empty dir", map[string]any{"argv": toAny("x"), "dir": ""}, "dir", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checktest.ArgError(t, Check(tc.args), tc.errPath, tc.errHas)
		})
	}
}

// Rendered event values that look like shell syntax reach the program as
// literal arguments and do nothing else.
func TestInjectionStaysLiteral(t *testing.T) {
	dir := t.TempDir()
	hostile := []string{
		"; rm -rf " + filepath.Join(dir, "victim"),
		"$(touch pwned1)",
		"`touch pwned2`",
		"line1\nline2; touch pwned3",
		"a && touch pwned4 || touch pwned5",
		"'\"; touch pwned6 #",
		"*",
		"--help",
		"${env:HOME} $HOME",
		"",
	}
	if err := os.Mkdir(filepath.Join(dir, "victim"), 0o755); err != nil {
		t.Fatal(err)
	}
	event := engine.Event{"payload": map[string]any{"cmd": hostile[1], "nl": hostile[3]}}
	inv := newInv(map[string]any{
		"argv": toAny(append([]string{os.Args[0]}, hostile...)...),
		"env":  helperEnv("argv"),
		"dir":  dir,
	})
	inv.Event = event
	res := New(zerolog.Nop()).Run(context.Background(), inv)
	if res.Status != engine.Succeeded {
		t.Fatalf("status %s: %s\n%s", res.Status, res.Error, res.Output)
	}
	var got helperOut
	if err := json.Unmarshal([]byte(res.Output), &got); err != nil {
		t.Fatalf("helper output %q: %v", res.Output, err)
	}
	if strings.Join(got.Args, "\x00") != strings.Join(hostile, "\x00") || len(got.Args) != len(hostile) {
		t.Errorf("argv changed:\n got %q\nwant %q", got.Args, hostile)
	}
	var stdinEvent engine.Event
	if err := json.Unmarshal([]byte(got.Stdin), &stdinEvent); err != nil {
		t.Fatalf("stdin %q is not the event: %v", got.Stdin, err)
	}
	if p, _ := stdinEvent["payload"].(map[string]any); p["nl"] != hostile[3] {
		t.Errorf("stdin event = %v", stdinEvent)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "pwned") {
			t.Errorf("injection ran: %s exists", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "victim")); err != nil {
		t.Errorf("victim directory removed: %v", err)
	}
}

// With shell: true, event data passed in args ($1, ...) or env ($NAME) is
// data to the shell, never code, whatever it holds.
func TestShellArgsAndEnvStayLiteral(t *testing.T) {
	dir := t.TempDir()
	hostile := []string{
		"$(touch pwned1)",
		"`touch pwned2`",
		"a; touch pwned3",
		"line1\nline2 && touch pwned4",
		"'\"; touch pwned5 #",
		"*",
		"",
	}
	inv := newInv(map[string]any{
		"argv":  `printf '[%s]' "$@"; printf '{%s}' "$MSG"; printf '<%s>' "$0"`,
		"shell": true,
		"args":  toAny(hostile...),
		"env":   map[string]any{"MSG": hostile[0] + hostile[2]},
		"dir":   dir,
	})
	if err := Check(inv.Args); err != nil {
		t.Fatal(err)
	}
	res := New(zerolog.Nop()).Run(context.Background(), inv)
	if res.Status != engine.Succeeded {
		t.Fatalf("status %s: %s\n%s", res.Status, res.Error, res.Output)
	}
	want := ""
	for _, h := range hostile {
		want += "[" + h + "]"
	}
	want += "{" + hostile[0] + hostile[2] + "}<sh>"
	if res.Output != want {
		t.Errorf("output\n got %q\nwant %q", res.Output, want)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("injection ran: %s exists", e.Name())
	}
}

// TestWarn: a template that inserts event data into a shell command line
// is reported, with the column of its "{{"; passing the data in args or env,
// vars in the command line, or no shell, is not.
func TestWarn(t *testing.T) {
	tests := []struct {
		name    string
		args    map[string]any
		path    string
		columns []int
	}{
		{"event in shell text", map[string]any{"shell": true, "argv": "echo {{ event.payload.msg }} >> /tmp/log"}, "argv", []int{6}},
		{"two parts, one vars", map[string]any{"shell": true, "argv": "{{ vars.bin }} --host {{ event.meta.hosts[0] }} {{ facts.f.x }}"}, "argv", []int{23, 49}},
		{"events and fact", map[string]any{"shell": true, "argv": `x "{{ events.m_0.a }}" {{ fact.b ?? "" }}`}, "argv", []int{4, 24}},
		{"one-element list", map[string]any{"shell": true, "argv": toAny("rm {{ event.path }}")}, "argv.0", []int{4}},
		{"templated shell", map[string]any{"shell": "{{ vars.sh }}", "argv": "echo {{ event.x }}"}, "argv", []int{6}},
		{"unparseable expression", map[string]any{"shell": true, "argv": "echo {{ event. }}"}, "argv", []int{6}},
		{"vars only", map[string]any{"shell": true, "argv": "systemctl restart {{ vars.unit }}"}, "", nil},
		{"event data in args", map[string]any{"shell": true, "argv": `echo "$1"`, "args": toAny("{{ event.x }}")}, "", nil},
		{"event data in env", map[string]any{"shell": true, "argv": `echo "$MSG"`, "env": map[string]any{"MSG": "{{ event.x }}"}}, "", nil},
		{"no shell", map[string]any{"argv": toAny("echo", "{{ event.x }}")}, "", nil},
		{"shell false", map[string]any{"shell": false, "argv": toAny("echo {{ event.x }}")}, "", nil},
		{"name that only looks like event", map[string]any{"shell": true, "argv": "echo {{ vars.event }}"}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := Warn(tc.args)
			if len(ws) != len(tc.columns) {
				t.Fatalf("warnings %+v, want %d", ws, len(tc.columns))
			}
			for i, w := range ws {
				if strings.Join(w.Path, ".") != tc.path || w.Column != tc.columns[i] {
					t.Errorf("warning %d at %v col %d, want %s col %d", i, w.Path, w.Column, tc.path, tc.columns[i])
				}
				if !strings.Contains(w.Message, "shell: true runs event data as shell code") || !strings.Contains(w.Message, "args: [") || !strings.Contains(w.Message, "env: {NAME:") {
					t.Errorf("message %q", w.Message)
				}
			}
		})
	}
}

func TestRun(t *testing.T) {
	helper := os.Args[0]
	tests := []struct {
		name    string
		args    map[string]any
		secrets []string
		status  engine.Status
		exit    int // -1: no exit code expected
		output  string
		errHas  string
	}{
		{"success", map[string]any{"argv": toAny("sh", "-c", "echo hello")}, nil, engine.Succeeded, 0, "hello\n", ""},
		{"shell", map[string]any{"argv": "echo $((40+2)) | tr 4 X", "shell": true}, nil, engine.Succeeded, 0, "X2\n", ""},
		{"failure", map[string]any{"argv": toAny("sh", "-c", "echo oops >&2; exit 3")}, nil, engine.Failed, 3, "oops\n", "status 3: oops"},
		{"extra success code", map[string]any{"argv": toAny("sh", "-c", "exit 3"), "success_exit_codes": []any{0, 3}}, nil, engine.Succeeded, 3, "", ""},
		{"retry code", map[string]any{"argv": toAny("sh", "-c", "exit 75"), "retry_exit_codes": []any{75}}, nil, engine.Retryable, 75, "", "status 75"},
		{"zero not success", map[string]any{"argv": toAny("true"), "success_exit_codes": []any{1}}, nil, engine.Failed, 0, "", "status 0"},
		{"killed by signal", map[string]any{"argv": toAny("sh", "-c", "kill -KILL $$")}, nil, engine.Retryable, -1, "", "signal killed"},
		{"missing program", map[string]any{"argv": toAny("/nonexistent/prog")}, nil, engine.Failed, -1, "", "argv.0: cannot start"},
		{"missing dir", map[string]any{"argv": toAny("true"), "dir": "/nonexistent/dir"}, nil, engine.Failed, -1, "", "dir: \"/nonexistent/dir\""},
		{"secret redacted", map[string]any{"argv": toAny("sh", "-c", "echo token=s3cr3t; exit 1")}, []string{"s3cr3t"}, engine.Failed, 1, "token=******\n", "token=******"},
		{"env and id", map[string]any{"argv": toAny(helper), "env": map[string]any{"RULEBOOK_TEST_HELPER": "argv", "GORACE": "atexit_sleep_ms=0", "EXTRA": 7}, "stdin": "none"}, nil, engine.Succeeded, 0,
			`{"args":[],"env":"7","id":"inv-1","stdin":""}` + "\n", ""},
		{"inherit_env false keeps PATH only", map[string]any{"argv": toAny("sh", "-c", `echo "${HOME:-nohome}"`), "inherit_env": false}, nil, engine.Succeeded, 0, "nohome\n", ""},
		{"events on stdin", map[string]any{"argv": toAny("cat"), "stdin": "events"}, nil, engine.Succeeded, 0, `{"m_0":{"a":1}}` + "\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check(tc.args); err != nil {
				t.Fatalf("Check: %v", err)
			}
			inv := newInv(tc.args)
			inv.Secrets = tc.secrets
			inv.Events = map[string]engine.Event{"m_0": {"a": 1}}
			res := New(zerolog.Nop()).Run(context.Background(), inv)
			if res.Status != tc.status {
				t.Fatalf("status = %s (%s), want %s; output %q", res.Status, res.Error, tc.status, res.Output)
			}
			if tc.exit < 0 {
				if res.ExitCode != nil {
					t.Errorf("exit code = %d, want none", *res.ExitCode)
				}
			} else if res.ExitCode == nil || *res.ExitCode != tc.exit {
				t.Errorf("exit code = %v, want %d", res.ExitCode, tc.exit)
			}
			if res.Output != tc.output {
				t.Errorf("output = %q, want %q", res.Output, tc.output)
			}
			if !strings.Contains(res.Error, tc.errHas) {
				t.Errorf("error %q does not contain %q", res.Error, tc.errHas)
			}
			for _, s := range tc.secrets {
				if strings.Contains(res.Error+res.Output, s) {
					t.Errorf("secret %q leaked", s)
				}
			}
		})
	}
}

func TestOutputLimit(t *testing.T) {
	args := map[string]any{"argv": toAny(os.Args[0], "100000"), "env": helperEnv("spew"), "output_limit": "1KiB"}
	if err := Check(args); err != nil {
		t.Fatal(err)
	}
	res := New(zerolog.Nop()).Run(context.Background(), newInv(args))
	if res.Status != engine.Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Error)
	}
	if !strings.HasPrefix(res.Output, strings.Repeat("a", 512)) || !strings.HasSuffix(res.Output, "END") {
		t.Errorf("output does not keep head and tail: %q...", res.Output[:40])
	}
	if !strings.Contains(res.Output, "output truncated: 98979 bytes omitted") {
		t.Errorf("no truncation marker in %q", res.Output)
	}
	if got := res.Details["output_bytes"]; got != int64(100003) {
		t.Errorf("output_bytes = %v", got)
	}
}

// Cancelling the invocation kills its process group: here a child and a
// grandchild that ignore SIGTERM, so SIGKILL follows after kill_grace. The
// other ways a group can end are tested in actions/internal/procgroup.
func TestCancelKillsProcessGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	script := `trap "" TERM; sleep 300 & echo $! > "$1"; wait; wait`
	args := map[string]any{"argv": toAny("sh", "-c", script, "sh", pidfile), "kill_grace": "300ms", "stdin": "none"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan engine.Result, 1)
	go func() { done <- New(zerolog.Nop()).Run(ctx, newInv(args)) }()
	pid := proctest.WaitForPID(t, "the pid file", pidfile, 10*time.Second)
	if !proctest.Alive(pid) {
		t.Fatalf("grandchild %d not running before the cancellation", pid)
	}
	start := time.Now()
	cancel()
	res := proctest.Receive(t, "Run to return after cancellation", done, 15*time.Second)
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "cancelled") {
		t.Errorf("result = %s %q, want retryable cancelled", res.Status, res.Error)
	}
	proctest.WaitExited(t, "the grandchild", pid, 5*time.Second)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v to stop", el)
	}
}

func TestDeadlineSaysTimedOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := New(zerolog.Nop()).Run(ctx, newInv(map[string]any{"argv": toAny("sleep", "30"), "stdin": "none"}))
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "timed out") {
		t.Fatalf("result = %s %q, want retryable timed out", res.Status, res.Error)
	}
}

// FuzzCheck feeds arbitrary JSON argument maps to Check: it must not panic
// and must return *engine.ArgError for what it rejects.
func FuzzCheck(f *testing.F) {
	checktest.FuzzArgs(f, Check,
		`{"argv":["echo","{{ x }}"],"env":{"A":1}}`,
		`{"argv":"ls | wc","shell":true}`,
		`{"argv":[1],"retry_exit_codes":[1.5]}`,
	)
}

// A whole-value template keeps its type when rendered ("{{ event.count }}"
// may give 42); at run time such values become text as templates render
// them inside text, while Check still refuses literal non-strings.
func TestRenderedValuesBecomeText(t *testing.T) {
	args := map[string]any{
		"argv": []any{os.Args[0], 42.0, 2.5, true, nil, map[string]any{"a": 1.0}, []any{"x"}},
		"env":  helperEnv("argv"),
	}
	res := New(zerolog.Nop()).Run(context.Background(), newInv(args))
	if res.Status != engine.Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Error)
	}
	var got helperOut
	if err := json.Unmarshal([]byte(res.Output), &got); err != nil {
		t.Fatalf("helper output %q: %v", res.Output, err)
	}
	want := []string{"42", "2.5", "true", "", `{"a":1}`, `["x"]`}
	if strings.Join(got.Args, "|") != strings.Join(want, "|") {
		t.Errorf("argv = %q, want %q", got.Args, want)
	}
}
