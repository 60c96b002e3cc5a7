package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// parseRulesets compiles a rulebook's text with the built-in registry,
// closed when the test ends.
func parseRulesets(t *testing.T, src string) []*engine.Ruleset {
	t.Helper()
	reg, closeReg, err := newRegistry(registryOptions{log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeReg)
	rb, err := rulebooks.Parse("rb.yml", []byte(src), rulebooks.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return rb.Rulesets
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestSchemaIsCurrent(t *testing.T) {
	code, out, errs := runCLI(t, "schema")
	if code != 0 {
		t.Fatalf("schema exit %d: %s", code, errs)
	}
	want, err := os.ReadFile(filepath.Join(repoRoot(t), schemaPath))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatalf("%s is out of date: run `go run ./cmd/rulebook schema > %s`", schemaPath, schemaPath)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), schemaPath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(rulebooks.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(rulebooks.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSONValue decodes YAML into the shapes the validator expects.
func yamlToJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func exampleRulebooks(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(repoRoot(t), "rulebooks/examples/*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".test.yml") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatal("no example rulebooks found")
	}
	return out
}

func TestExamplesMatchTheSchema(t *testing.T) {
	s := compileSchema(t)
	for _, f := range exampleRulebooks(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(yamlToJSONValue(t, data)); err != nil {
				t.Fatalf("schema rejects %s: %v", f, err)
			}
		})
	}
	bad := []byte("- name: x\n  sources: [{range: {limit: 1}}]\n  rules: [{name: r, condition: event.i == 1, action: {debug: {msg: hi, typo: 1}}}]\n")
	if err := s.Validate(yamlToJSONValue(t, bad)); err == nil {
		t.Fatal("schema accepts an unknown debug argument")
	}
}

func TestEveryExampleHasAPassingTestFile(t *testing.T) {
	for _, f := range exampleRulebooks(t) {
		testFile := strings.TrimSuffix(f, ".yml") + ".test.yml"
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := os.Stat(testFile); err != nil {
				t.Fatalf("%s has no test file %s", f, testFile)
			}
			code, out, errs := runCLI(t, "test", testFile)
			if code != 0 {
				t.Fatalf("rulebook test %s: exit %d\n%s%s", testFile, code, out, errs)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(good, []byte("- name: g\n  sources: [{range: {limit: 1}}]\n  rules: [{name: r, condition: event.i == 0, action: {none: {}}}]\n"), 0o644)
	os.WriteFile(bad, []byte("- name: b\n  sources: [{range: {limit: 1}}]\n  rules:\n    - name: r\n      condition: evnt.i == 0\n      action: {none: {}}\n      thrtle: {}\n"), 0o644)

	if code, out, _ := runCLI(t, "validate", good); code != 0 || !strings.Contains(out, "good.yml: ok") {
		t.Fatalf("valid rulebook: exit %d, %q", code, out)
	}
	code, out, _ := runCLI(t, "validate", good, bad)
	if code != 1 {
		t.Fatalf("invalid rulebook: exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + `:5:18: ruleset "b": rule "r": condition: unknown name evnt`,
		bad + `:7:7: ruleset "b": rule "r": unknown key "thrtle"; did you mean "throttle"?`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "validate", "--format", "json", bad)
	var rep struct {
		Valid  bool               `json:"valid"`
		Errors []*rulebooks.Error `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Valid || len(rep.Errors) != 2 {
		t.Fatalf("json: exit %d, %+v, %v\n%s", code, rep, err, out)
	}
	if rep.Errors[0].Line != 5 || rep.Errors[0].Column != 18 || rep.Errors[0].Rule != "r" {
		t.Errorf("first error = %+v", rep.Errors[0])
	}
}

func TestTestCommandFailsOnAWrongExpectation(t *testing.T) {
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yml")
	os.WriteFile(rb, []byte("- name: g\n  sources: [{range: {limit: 1}}]\n  rules: [{name: r, condition: event.i == 0, action: {debug: {msg: \"i={{ event.i }}\"}}}]\n"), 0o644)
	tf := filepath.Join(dir, "rb.test.yml")
	os.WriteFile(tf, []byte("rulebook: rb.yml\ncases:\n  - name: wrong\n    events: [{event: {i: 0}}]\n    firings: [{rule: r, args: {msg: \"i=1\"}}]\n"), 0o644)
	code, out, _ := runCLI(t, "test", tf)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"FAIL wrong", `want rule "r", args {"msg":"i=1"}`, `debug {"msg":"i=0"}`, "0 passed, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, cmd := range []string{"run", "validate", "test", "audit", "plugins", "schema"} {
		t.Run(cmd, func(t *testing.T) {
			code, _, errs := runCLI(t, cmd, "--help")
			if code != 0 || !strings.Contains(errs, "Usage: rulebook "+cmd) {
				t.Fatalf("%s --help: exit %d, %q", cmd, code, errs)
			}
		})
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command exit %d, want 2", code)
	}
}

// Help text never shows a sentinel value as a default: a flag whose default
// is another flag's value says so in words.
func TestHelpShowsNoSentinelDefaults(t *testing.T) {
	_, _, errs := runCLI(t, "run", "--help")
	// (flag prints no zero default, so "-1" is the sentinel to look for.)
	if strings.Contains(errs, "(default -1") {
		t.Errorf("run --help shows a default of -1:\n%s", errs)
	}
	if !strings.Contains(errs, "-bus-dedupe-lookback duration") {
		t.Errorf("run --help does not show --bus-dedupe-lookback as a duration:\n%s", errs)
	}
}

func TestOptionalDuration(t *testing.T) {
	var o optionalDuration
	if got := o.or(time.Minute); got != time.Minute {
		t.Fatalf("unset: or(1m) = %v", got)
	}
	if err := o.Set("0s"); err != nil {
		t.Fatal(err)
	}
	if got := o.or(time.Minute); got != 0 {
		t.Fatalf("set to 0s: or(1m) = %v, want 0 (an explicit zero is kept)", got)
	}
	if err := o.Set("90m"); err != nil || o.or(time.Minute) != 90*time.Minute || o.String() != "1h30m0s" {
		t.Fatalf("set to 90m: err %v, value %v, string %q", err, o.or(time.Minute), o.String())
	}
	for _, bad := range []string{"-1s", "soon"} {
		if err := (&optionalDuration{}).Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	if code, _, errs := runCLI(t, "run", "--bus-dedupe-lookback=-5m", "x.yml"); code != 2 || !strings.Contains(errs, "negative") {
		t.Errorf("run --bus-dedupe-lookback=-5m: exit %d, %q", code, errs)
	}
}

func TestConvert(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "eda.yml")
	os.WriteFile(src, []byte("# from EDA\n- name: g\n  sources: [{ansible.eda.range: {limit: 1}}]\n  rules:\n    - name: r\n      condition: event.i is defined and event.i > limit  # vars\n      action: {debug: {msg: hi}}\n"), 0o644)
	vars := filepath.Join(dir, "vars.yml")
	os.WriteFile(vars, []byte("limit: 0\n"), 0o644)
	code, out, errs := runCLI(t, "convert", src, "--vars", vars)
	if code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "# from EDA") || !strings.Contains(out, "condition: defined(event.i) and event.i > vars.limit # vars") || !strings.Contains(out, "sources: [{range: {limit: 1}}]") {
		t.Fatalf("convert output:\n%s", out)
	}
	native := filepath.Join(dir, "native.yml")
	os.WriteFile(native, []byte(out), 0o644)
	if code, out, _ := runCLI(t, "validate", native, "--vars", vars); code != 0 {
		t.Fatalf("converted rulebook does not validate: %s", out)
	}
	// Without the variable, the condition is an error with its position.
	code, _, errs = runCLI(t, "convert", src)
	if code != 1 || !strings.Contains(errs, src+`:6:51: ruleset "g": rule "r": condition: unknown name "limit"`) {
		t.Fatalf("convert without vars: exit %d: %s", code, errs)
	}
}

// TestConvertedExamplePassesTheSameTests: the native form of the EDA
// example passes the example's own test file.
func TestConvertedExamplePassesTheSameTests(t *testing.T) {
	src := filepath.Join(repoRoot(t), "rulebooks", "examples", "from-eda.yml")
	code, out, errs := runCLI(t, "convert", src)
	if code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errs)
	}
	if strings.Contains(out, " is ") || strings.Contains(out, "eda.builtin") || strings.Contains(out, "| lower") {
		t.Fatalf("converted rulebook still has EDA syntax:\n%s", out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "native.yml"), []byte(out), 0o644)
	tests, err := os.ReadFile(strings.TrimSuffix(src, ".yml") + ".test.yml")
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(dir, "native.test.yml")
	os.WriteFile(tf, []byte(strings.Replace(string(tests), "rulebook: from-eda.yml", "rulebook: native.yml", 1)), 0o644)
	if code, out, errs := runCLI(t, "test", tf); code != 0 {
		t.Fatalf("converted rulebook fails the example's tests: exit %d\n%s%s", code, out, errs)
	}
}

// TestBadFormat: every command with --format names the formats it writes.
func TestBadFormat(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--format", "yaml"}, `--format: want table or json, got "yaml"`},
		{[]string{"report", "--format", "yaml"}, `--format: want table or json, got "yaml"`},
		{[]string{"validate", "--format", "yaml", "rb.yml"}, `--format: want text or json, got "yaml"`},
		{[]string{"explain", "--format", "yaml", "rb.yml", "ev.json"}, `--format: want text or json, got "yaml"`},
		{[]string{"backtest", "--format", "yaml", "rb.yml"}, `--format: want text or json, got "yaml"`},
	} {
		if code, _, errOut := runCLI(t, tc.args...); code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d %q, want 1 with %q", tc.args[0], code, errOut, tc.want)
		}
	}
}
