package playbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/rulebook-dev/rulebook/actions/internal/procgroup"
	"github.com/rulebook-dev/rulebook/engine"
)

func TestYAMLNumber(t *testing.T) {
	tests := map[string]string{
		"42":     "42",
		"-7":     "-7",
		"2.5":    "2.5",
		"1e21":   "1.0e+21",
		"1E-7":   "1.0e-07",
		"1.5e10": "1.5e+10",
		"100.0":  "100.0",
	}
	for in, want := range tests {
		if got := yamlNumber(in); got != want {
			t.Errorf("yamlNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVarsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vars.yml")
	vars := map[string]any{"a": "{{ x }}", "n": 1, "l": []any{true, nil, 2.5}, "m": map[string]any{"k\"ey": "v\n"}}
	if err := writeVarsFile(path, vars); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	want := `{"a": !unsafe "{{ x }}", "l": [true, null, 2.5], "m": {"k\"ey": !unsafe "v\n"}, "n": 1}` + "\n"
	if string(b) != want {
		t.Errorf("vars file =\n%s\nwant\n%s", b, want)
	}
	if err := writeVarsFile(path, vars); err == nil {
		t.Error("an existing file was overwritten")
	}
	if err := writeVarsFile(filepath.Join(t.TempDir(), "x"), map[string]any{"c": make(chan int)}); err == nil {
		t.Error("a non-JSON value was accepted")
	}
}

// scalars collects the scalar values of a parsed YAML node with their tags.
func scalars(n *yaml.Node, out *[]*yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		*out = append(*out, n)
	}
	for _, c := range n.Content {
		scalars(c, out)
	}
}

// FuzzWriteQuoted: any string written by writeQuoted reads back unchanged
// and contains only characters PyYAML accepts raw.
func FuzzWriteQuoted(f *testing.F) {
	for _, s := range []string{"", "plain", "{{ 7*6 }}", "a\"b\\c", "tab\there\nnl", "\x00\x01\x7f\u0085\u2028\ufeff", "😀 ☃", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		writeUnsafeYAML(&b, map[string]any{"k": s})
		for _, r := range b.String() {
			if !yamlPrintable(r) {
				t.Fatalf("unprintable %U in %q", r, b.String())
			}
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatalf("%q does not parse: %v", b.String(), err)
		}
		var sc []*yaml.Node
		scalars(&doc, &sc)
		if len(sc) != 2 {
			t.Fatalf("%d scalars in %q", len(sc), b.String())
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if !utf8.ValidString(s) {
			// each invalid byte becomes one U+FFFD
			want = ""
			for i := 0; i < len(s); {
				r, n := utf8.DecodeRuneInString(s[i:])
				want += string(r)
				i += n
			}
		}
		if sc[1].Value != want || sc[1].Tag != "!unsafe" {
			t.Fatalf("read back %q tag %q, want %q", sc[1].Value, sc[1].Tag, want)
		}
	})
}

// FuzzVarsJSON: any JSON document written as vars parses as YAML.
func FuzzVarsJSON(f *testing.F) {
	f.Add(`{"a":[1,2.5,1e300,-0.0,"x"],"b":{"c":null,"d":true}}`)
	f.Add(`{"n":123456789012345678901234567890}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var v map[string]any
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return
		}
		norm, err := normalize(v)
		if err != nil {
			return
		}
		var b bytes.Buffer
		writeUnsafeYAML(&b, norm)
		var out yaml.Node
		if err := yaml.Unmarshal(b.Bytes(), &out); err != nil {
			t.Fatalf("%s -> %q does not parse: %v", doc, b.String(), err)
		}
	})
}

func TestClassify(t *testing.T) {
	failed := &runStats{
		Hosts:    map[string]hostStats{"h": {OK: 1, Failures: 1}},
		Failures: []taskFailure{{Kind: "failed", Host: "h", Task: "t", Msg: "boom"}, {Kind: "failed", Host: "h2", Task: "t", Msg: "x"}},
	}
	unreachable := &runStats{
		Hosts:    map[string]hostStats{"h": {Unreachable: 1}},
		Failures: []taskFailure{{Kind: "unreachable", Host: "h", Task: "t", Msg: "refused"}},
	}
	tests := []struct {
		name   string
		po     procgroup.Outcome
		st     *runStats
		status engine.Status
		errHas string
	}{
		{"ok", procgroup.Outcome{ExitCode: 0}, &runStats{Hosts: map[string]hostStats{"h": {OK: 1}}}, engine.Succeeded, ""},
		{"ok without recap", procgroup.Outcome{ExitCode: 0}, nil, engine.Succeeded, ""},
		{"no host matched", procgroup.Outcome{ExitCode: 0}, &runStats{}, engine.Failed, "ran on no host"},
		{"task failed", procgroup.Outcome{ExitCode: 2}, failed, engine.Failed, `task "t" on h: boom (and 1 more)`},
		{"unreachable 4", procgroup.Outcome{ExitCode: 4}, unreachable, engine.Retryable, `unreachable (exit status 4): task "t" on h: refused`},
		{"unreachable 3", procgroup.Outcome{ExitCode: 3}, nil, engine.Retryable, "unreachable"},
		{"parse error 4", procgroup.Outcome{ExitCode: 4}, nil, engine.Failed, "could not parse"},
		{"error 1", procgroup.Outcome{ExitCode: 1}, nil, engine.Failed, "exit status 1"},
		{"bad options 5", procgroup.Outcome{ExitCode: 5}, nil, engine.Failed, "exit status 5"},
		{"interrupted", procgroup.Outcome{ExitCode: 99}, nil, engine.Retryable, "interrupted"},
		{"signal", procgroup.Outcome{ExitCode: -1, Signaled: true, Signal: syscall.SIGKILL}, nil, engine.Retryable, "signal killed"},
		{"cancelled", procgroup.Outcome{ExitCode: -1, CtxErr: errCanceled{}}, nil, engine.Retryable, "cancelled"},
		{"start error", procgroup.Outcome{ExitCode: -1, StartErr: os.ErrPermission}, nil, engine.Failed, "cannot start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := classify("ansible-playbook", tc.po, tc.st)
			if r.Status != tc.status || !strings.Contains(r.Error, tc.errHas) {
				t.Errorf("classify = %s %q, want %s containing %q", r.Status, r.Error, tc.status, tc.errHas)
			}
		})
	}
}

type errCanceled struct{}

func (errCanceled) Error() string { return "context canceled" }

func TestFeedback(t *testing.T) {
	st := &runStats{Custom: map[string]map[string]any{
		"_run": {"n": json.Number("42"), "f": json.Number("1.5")},
		"web2": {"ok": true},
		"web1": {"host": "override"},
		"db":   {},
	}}
	want := []map[string]any{{"n": int64(42), "f": 1.5}, {"host": "override"}, {"ok": true, "host": "web2"}}
	tests := []struct {
		name                string
		setFacts, postEvent bool
	}{{"neither", false, false}, {"facts", true, false}, {"events", false, true}, {"both", true, true}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facts, events := feedback(config{setFacts: tc.setFacts, postEvents: tc.postEvent}, st)
			if got, exp := facts != nil, tc.setFacts; got != exp {
				t.Errorf("facts = %v", facts)
			} else if exp && !reflect.DeepEqual(facts, want) {
				t.Errorf("facts = %#v, want %#v", facts, want)
			}
			if got, exp := events != nil, tc.postEvent; got != exp {
				t.Errorf("events = %v", events)
			} else if exp && !reflect.DeepEqual(events, want) {
				t.Errorf("events = %#v, want %#v", events, want)
			}
			if tc.setFacts && tc.postEvent {
				facts[0]["n"] = "changed"
				if events[0]["n"] == "changed" {
					t.Error("facts and events share maps")
				}
			}
		})
	}
}

func TestNewRemovesStaleScratchDirs(t *testing.T) {
	data := t.TempDir()
	tmp := filepath.Join(data, "tmp")
	own := filepath.Join(tmp, "ansible-"+strconv.Itoa(os.Getpid())+"-inv-x")
	stale := filepath.Join(tmp, "ansible-999999999-inv-y")
	other := filepath.Join(tmp, "unrelated")
	for _, d := range []string{own, stale, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stale, "vars.yml"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	New(ModePlaybook, engine.ActionEnv{DataDir: data, Log: zerolog.Nop()})
	for d, want := range map[string]bool{own: true, stale: false, other: true} {
		_, err := os.Stat(d)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(d), got, want)
		}
	}
}

// FuzzCheck feeds arbitrary JSON argument maps to both Checks: no panics,
// and every rejection is an *engine.ArgError.
func FuzzCheck(f *testing.F) {
	f.Add(`{"name":"a.b.c","limit":["x","{{ y }}"],"verbosity":"{{ v }}","extra_vars":{"k":1}}`)
	f.Add(`{"name":"ping","module_args":"x=1","limit":3}`)
	f.Fuzz(func(t *testing.T, s string) {
		var args map[string]any
		if json.Unmarshal([]byte(s), &args) != nil {
			return
		}
		for _, check := range []func(map[string]any) error{CheckPlaybook, CheckModule} {
			err := check(args)
			var ae *engine.ArgError
			if err != nil && !errors.As(err, &ae) {
				t.Fatalf("Check(%s) = %T %v, want *engine.ArgError", s, err, err)
			}
		}
	})
}
