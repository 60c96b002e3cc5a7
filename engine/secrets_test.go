package engine_test

import (
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

func compileArgs(t testing.TB, args map[string]any) *engine.Template {
	t.Helper()
	tpl, err := (&engine.Compiler{}).CompileTemplate(args)
	if err != nil {
		t.Fatalf("compile %v: %v", args, err)
	}
	return tpl
}

func renderArgs(t testing.TB, tpl *engine.Template, event map[string]any) (map[string]any, []engine.SecretUse) {
	t.Helper()
	v, uses, err := tpl.RenderRefs(engine.Env{Event: event})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	args, _ := v.(map[string]any)
	return args, uses
}

// The references of the rulebook's literal text are found where they are,
// in every shape of argument, and resolved there only.
func TestSecretRefsOfLiteralTextResolve(t *testing.T) {
	t.Setenv("RB_TEST_A", "va")
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("vf\n"), 0o600)
	tpl := compileArgs(t, map[string]any{
		"whole":   "${env:RB_TEST_A}",
		"text":    "a=${env:RB_TEST_A} {{ event.x }} f=${file:" + file + "} ${env:RB_TEST_A}",
		"escaped": "$${env:RB_TEST_A} {{ event.x }}",
		"static":  map[string]any{"l": []any{"x", "${env:RB_TEST_A}"}, "n": 1},
		"mixed":   []any{"{{ event.x }}", map[string]any{"k": "${env:RB_TEST_A}-{{ event.x }}"}},
	})
	args, uses := renderArgs(t, tpl, map[string]any{"x": "${env:RB_TEST_A}"})
	if len(uses) != 6 {
		t.Fatalf("uses %+v, want 6", uses)
	}
	stored, _ := json.Marshal(args)
	if strings.Contains(string(stored), "va") || strings.Contains(string(stored), "vf") {
		t.Fatalf("rendered arguments hold a value: %s", stored)
	}
	got, secrets, err := engine.ResolveArgs(args, uses)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `{"escaped":"${env:RB_TEST_A} ${env:RB_TEST_A}","mixed":["${env:RB_TEST_A}",{"k":"va-${env:RB_TEST_A}"}],"static":{"l":["x","va"],"n":1},"text":"a=va ${env:RB_TEST_A} f=vf va","whole":"va"}`
	if string(b) != want {
		t.Errorf("resolved %s\nwant     %s", b, want)
	}
	if len(secrets) != 6 {
		t.Errorf("secrets %v, want the 6 values substituted", secrets)
	}
	// The rendered arguments are left as they were.
	if b2, _ := json.Marshal(args); string(b2) != string(stored) {
		t.Errorf("ResolveArgs changed its input: %s", b2)
	}
}

// A use that does not match its place (arguments edited after rendering, a
// corrupted queue) is an error naming the argument, not a value.
func TestResolveArgsRejectsMisplacedUses(t *testing.T) {
	t.Setenv("RB_TEST_A", "q9-value")
	ref := engine.SecretRef{Kind: "env", Name: "RB_TEST_A"}
	cases := []struct {
		name string
		args map[string]any
		use  engine.SecretUse
		want string
	}{
		{"text moved", map[string]any{"t": "x${env:RB_TEST_A}"}, engine.SecretUse{Path: []string{"t"}, At: 0, SecretRef: ref}, "t: secret ${env:RB_TEST_A} is not where the rulebook put it"},
		{"offset past end", map[string]any{"t": "x"}, engine.SecretUse{Path: []string{"t"}, At: 9, SecretRef: ref}, "t: secret ${env:RB_TEST_A} is not where"},
		{"missing key", map[string]any{"t": "x"}, engine.SecretUse{Path: []string{"u"}, SecretRef: ref}, `u: secret reference points at a missing key "u"`},
		{"not text", map[string]any{"t": 1.0}, engine.SecretUse{Path: []string{"t"}, SecretRef: ref}, "t: secret reference points at a float64, not text"},
		{"bad index", map[string]any{"t": []any{"a"}}, engine.SecretUse{Path: []string{"t", "3"}, SecretRef: ref}, `t.3: secret reference points at a missing item "3"`},
		{"unset", map[string]any{"h": map[string]any{"a": "${env:RB_TEST_UNSET_X}"}}, engine.SecretUse{Path: []string{"h", "a"}, SecretRef: engine.SecretRef{Kind: "env", Name: "RB_TEST_UNSET_X"}}, `h.a: secret ${env:RB_TEST_UNSET_X}: environment variable "RB_TEST_UNSET_X" is not set`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := engine.ResolveArgs(tc.args, []engine.SecretUse{tc.use})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "q9-value") {
				t.Fatalf("error holds the value: %v", err)
			}
		})
	}
}

// A reference whose name a template would complete is a load error: a
// secret's name is the rulebook's literal text.
func TestSecretRefCompletedByTemplateIsRejected(t *testing.T) {
	for _, s := range []string{"${env:{{ event.name }}}", "x ${file:/etc/{{ event.f }}}", "${env:A{{ event.n }}"} {
		_, err := (&engine.Compiler{}).CompileTemplate(map[string]any{"a": s})
		var te *engine.TemplateError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "a secret's name must be literal text") {
			t.Errorf("%q: error %v, want a template error", s, err)
			continue
		}
		if want := strings.Index(s, "$") + 1; te.Column != want {
			t.Errorf("%q: column %d, want %d", s, te.Column, want)
		}
	}
	// An escaped one is literal text, not a reference.
	if _, err := (&engine.Compiler{}).CompileTemplate(map[string]any{"a": "$${env:{{ event.name }}}"}); err != nil {
		t.Errorf("escaped reference before a template rejected: %v", err)
	}
}

// Bounds on templates, checked before parsing.
func TestTemplateBounds(t *testing.T) {
	deep := "{{ " + strings.Repeat("(", engine.MaxNesting+1) + "1" + strings.Repeat(")", engine.MaxNesting+1) + " }}"
	_, err := (&engine.Compiler{}).CompileTemplate(map[string]any{"a": "x" + deep})
	var te *engine.TemplateError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "deeper than 200") || te.Column != 1+3+engine.MaxNesting+1 {
		t.Errorf("deep template: %v (column %d)", err, te.Column)
	}
	ok := "{{ " + strings.Repeat("(", engine.MaxNesting) + "1" + strings.Repeat(")", engine.MaxNesting) + " }}"
	if _, err := (&engine.Compiler{}).CompileTemplate(ok); err != nil {
		t.Errorf("template at the nesting limit: %v", err)
	}
	if _, err := (&engine.Compiler{}).CompileTemplate("{{ '((((' + \"[[[\" + `{{{` }}" + strings.Repeat("(", 300)); err != nil {
		t.Errorf("brackets in strings and literal text counted: %v", err)
	}
	big := "{{ event.x }}" + strings.Repeat("a", engine.MaxExprSize)
	if _, err := (&engine.Compiler{}).CompileTemplate(big); err == nil || !strings.Contains(err.Error(), "template too long: 65549 bytes; the limit is 65536 (64 KiB)") {
		t.Errorf("huge template: %v", err)
	}
	if _, err := (&engine.Compiler{}).CompileTemplate(strings.Repeat("a", 2*engine.MaxExprSize)); err != nil {
		t.Errorf("a long literal string is not a template: %v", err)
	}
}

// Condition bounds: a position, and no stack overflow whatever the input.
func TestConditionBounds(t *testing.T) {
	cases := []struct {
		name, src string
		line, col int
		msg       string
	}{
		{"deep parens", strings.Repeat("(", 1_500_000) + "true" + strings.Repeat(")", 1_500_000), 1, 1, "too long: 3000004 bytes; the limit is 65536 (64 KiB)"},
		{"deep under size", "event.x == 1 &&\n  " + strings.Repeat("[", 250) + strings.Repeat("]", 250), 2, 3 + engine.MaxNesting, "brackets nest deeper than 200 levels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&engine.Compiler{}).CompileCondition(tc.src)
			var ee *engine.ExprError
			if !errors.As(err, &ee) || ee.Msg != tc.msg || ee.Line != tc.line || ee.Column != tc.col {
				t.Fatalf("error %#v, want %d:%d %q", err, tc.line, tc.col, tc.msg)
			}
		})
	}
	// Long chains within the size bound do not nest brackets but still
	// recurse in the checker; they must compile or fail, not crash.
	for _, src := range []string{
		strings.Repeat("!", engine.MaxExprSize-4) + "true",
		strings.Repeat("-", engine.MaxExprSize-5) + "1 > 0",
		"1" + strings.Repeat(" + 1", engine.MaxExprSize/4-2) + " > 0",
		"event" + strings.Repeat(".a", engine.MaxExprSize/2-5) + " == 1",
	} {
		if len(src) > engine.MaxExprSize {
			t.Fatalf("case is %d bytes", len(src))
		}
		_, _ = (&engine.Compiler{}).CompileCondition(src)
	}
}

// ---- event data cannot name a secret: fuzz target ----

const (
	fuzzSecretEnv   = "RB_FUZZ_SECRET"
	fuzzSecretValue = "fz-env-7d41c0"
	fuzzFileValue   = "fz-file-3b9e52"
	fuzzAllowedEnv  = "RB_FUZZ_ALLOWED"
	fuzzAllowed     = "fz-allowed-a1"
)

// secretShapes are action arguments that render event data in every way a
// rulebook can: whole value, inside text, after a literal "$", two values
// side by side, a map or list into text or as a value, a key chosen by the
// event, strings built by expressions, next to the rulebook's own reference.
var secretShapes = map[string]any{
	"whole":      "{{ event.payload.a }}",
	"text":       "x {{ event.payload.a }} y",
	"dollar":     "${{ event.payload.a }}",
	"dollar2":    "$${{ event.payload.a }}",
	"pair":       "{{ event.payload.a }}{{ event.payload.b }}",
	"dollarpair": "${{ event.payload.a }}{{ event.payload.b }}",
	"map":        "labels={{ event.payload.m }}",
	"mapwhole":   "{{ event.payload.m }}",
	"list":       "{{ event.payload.l }}",
	"listtext":   "l={{ event.payload.l }}",
	"all":        "all={{ event.payload }}",
	"bykey":      "{{ event.payload.m[event.payload.b] }}",
	"concat":     "{{ '$' + event.payload.a }}",
	"concat2":    "{{ '${env:' + event.payload.a + '}' }}",
	"ref":        "${env:" + fuzzAllowedEnv + "}{{ event.payload.a }}",
	"refafter":   "{{ event.payload.a }}${env:" + fuzzAllowedEnv + "}",
	"nested": map[string]any{
		"t": "${{ event.payload.b }}",
		"l": []any{"{{ event.payload.a }}", "$", "{{ event.payload.l }}", "${env:" + fuzzAllowedEnv + "}"},
	},
}

// secretShapeRefs is how many references secretShapes' literal text holds.
const secretShapeRefs = 3

type secretFuzz struct {
	tpl  *engine.Template
	file string
}

func newSecretFuzz(t testing.TB, setenv func(k, v string)) *secretFuzz {
	setenv(fuzzSecretEnv, fuzzSecretValue)
	setenv(fuzzAllowedEnv, fuzzAllowed)
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(fuzzFileValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &secretFuzz{tpl: compileArgs(t, secretShapes), file: file}
}

// check renders event data built from key, a and b through every shape,
// resolves the arguments as the dispatcher does, and fails if a value the
// rulebook did not name is in them. "@FILE@" and "@ENV@" in the inputs
// stand for the secret file's path and variable's name.
func (s *secretFuzz) check(t testing.TB, key, a, b string) {
	expand := strings.NewReplacer("@FILE@", s.file, "@ENV@", fuzzSecretEnv)
	key, a, b = expand.Replace(key), expand.Replace(a), expand.Replace(b)
	for _, in := range []string{key, a, b} {
		if strings.Contains(in, fuzzSecretValue) || strings.Contains(in, fuzzFileValue) {
			return // the event itself holds the value: nothing to learn
		}
	}
	event := map[string]any{"payload": map[string]any{
		"a": a, "b": b, key: a,
		"m": map[string]any{key: a, b: key, a: []any{b, key}},
		"l": []any{a, b, map[string]any{key: b}},
	}}
	v, uses, err := s.tpl.RenderRefs(engine.Env{Event: event})
	if err != nil {
		return // a render error fails the invocation; nothing is sent
	}
	if len(uses) != secretShapeRefs {
		t.Fatalf("event data changed the rulebook's references: %+v", uses)
	}
	args := v.(map[string]any)
	// Through the durable queue and back, as the dispatcher reads it.
	inv := &engine.Invocation{Args: args, SecretRefs: uses, RefsListed: true}
	stored, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), fuzzAllowed) {
		t.Fatalf("a resolved value is in the stored invocation: %s", stored)
	}
	var back engine.Invocation
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	resolved, secrets, err := back.ResolveArgs()
	if err != nil {
		t.Fatalf("resolve: %v\nargs %s", err, stored)
	}
	out, _ := json.Marshal(resolved)
	for _, leak := range []string{fuzzSecretValue, fuzzFileValue} {
		if strings.Contains(string(out), leak) {
			t.Fatalf("event data %q %q %q made the arguments hold a secret the rulebook did not name:\n%s", key, a, b, out)
		}
	}
	if len(secrets) != secretShapeRefs {
		t.Fatalf("%d secrets substituted, want %d", len(secrets), secretShapeRefs)
	}
	for _, sec := range secrets {
		if sec != fuzzAllowed {
			t.Fatalf("substituted %q, want only the rulebook's %s", sec, fuzzAllowedEnv)
		}
	}
}

var secretFuzzSeeds = [][3]string{
	{"k", "{env:@ENV@}", "x"},
	{"k", "$", "{file:@FILE@}"},
	{"${file:@FILE@}", "${env:@ENV@}", "$${env:@ENV@}"},
	{"${env:@ENV@}", "{env:@ENV@", "}"},
	{"a", "@ENV@", "${env:@ENV@}"},
	{"$", "{env:", "@ENV@}"},
	{"{{ x }}", "${env:" + fuzzAllowedEnv + "}", "$${file:@FILE@}"},
	{"", "", ""},
	{"\x00", "\xff${env:@ENV@}", "é{file:@FILE@}"},
}

func FuzzEventDataCannotNameASecret(f *testing.F) {
	s := newSecretFuzz(f, f.Setenv)
	for _, seed := range secretFuzzSeeds {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, key, a, b string) {
		s.check(t, key, a, b)
	})
}

// TestEventDataCannotNameASecretRandom is a short deterministic run of the
// fuzz check in every `go test`, over inputs stitched from the pieces a
// reference is made of.
func TestEventDataCannotNameASecretRandom(t *testing.T) {
	s := newSecretFuzz(t, t.Setenv)
	pieces := []string{"$", "$$", "{", "}", "${", "env:", "file:", "@ENV@", "@FILE@", fuzzAllowedEnv, "{{", "}}", "x", "é", "\\", `"`, "\n", ""}
	r := rand.New(rand.NewSource(14))
	gen := func() string {
		var b strings.Builder
		for n := r.Intn(6); n > 0; n-- {
			b.WriteString(pieces[r.Intn(len(pieces))])
		}
		return b.String()
	}
	for _, seed := range secretFuzzSeeds {
		s.check(t, seed[0], seed[1], seed[2])
	}
	for i := 0; i < 1000; i++ {
		s.check(t, gen(), gen(), gen())
	}
}
