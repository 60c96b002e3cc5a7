package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/rulebooks"
)

// TestValidateSecrets: plain validate warns about a secret reference that
// does not resolve here (and still exits 0), validate --strict refuses it
// as run does, and a resolvable one passes both.
func TestValidateSecrets(t *testing.T) {
	const env = "RULEBOOK_TEST_VALIDATE_SECRET"
	os.Unsetenv(env)
	dir := t.TempDir()
	rb := filepath.Join(dir, "secrets.yml")
	missingFile := filepath.Join(dir, "no-such-token")
	os.WriteFile(rb, []byte(`- name: s
  sources: [{range: {limit: 1}}]
  rules:
    - name: r
      condition: event.i == 0
      action:
        http:
          url: https://example.invalid/hook
          headers:
            Authorization: "Bearer ${env:`+env+`}"
            X-Other: "${file:`+missingFile+`}"
`), 0o644)

	code, out, _ := runCLI(t, "validate", rb)
	if code != 0 {
		t.Fatalf("plain validate: exit %d, want 0 (warnings only):\n%s", code, out)
	}
	for _, want := range []string{
		rb + `:10:28: warning: ruleset "s": rule "r": actions[0]: http: headers.Authorization: secret ${env:` + env + `}: environment variable "` + env + `" is not set (run and validate --strict refuse this)`,
		rb + `:11:22: warning: ruleset "s": rule "r": actions[0]: http: headers.X-Other: secret ${file:` + missingFile + `}: `,
		rb + ": ok\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plain validate output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, "validate", "--format", "json", rb)
	var rep struct {
		Valid    bool               `json:"valid"`
		Errors   []*rulebooks.Error `json:"errors"`
		Warnings []*rulebooks.Error `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Valid || len(rep.Errors) != 0 || len(rep.Warnings) != 2 || rep.Warnings[0].Severity != "warning" || rep.Warnings[0].Line != 10 {
		t.Errorf("json: exit %d, %+v, %v\n%s", code, rep, err, out)
	}

	for _, flag := range []string{"--strict", "--check-secrets"} {
		code, out, _ = runCLI(t, "validate", flag, rb)
		if code != 1 || strings.Contains(out, "warning:") || !strings.Contains(out, rb+`:10:28: ruleset "s": rule "r": actions[0]: http: headers.Authorization: secret ${env:`+env+`}`) {
			t.Errorf("validate %s: exit %d, want 1 with the reference as an error:\n%s", flag, code, out)
		}
	}

	// run refuses what validate --strict refuses, and says so.
	code, _, errs := runCLI(t, "run", rb, "--data-dir", t.TempDir(), "--log-format", "json")
	if code != 1 || !strings.Contains(errs, "validate --strict") || !strings.Contains(errs, "is not set") {
		t.Errorf("run: exit %d, want 1 naming the reference and validate --strict:\n%s", code, errs)
	}

	// Resolvable here: no warning, strict passes.
	t.Setenv(env, "s3cret")
	os.WriteFile(missingFile, []byte("tok\n"), 0o600)
	for _, args := range [][]string{{"validate", rb}, {"validate", "--strict", rb}} {
		code, out, _ = runCLI(t, args...)
		if code != 0 || !strings.Contains(out, rb+": ok\n") || strings.Contains(out, "warning") || strings.Contains(out, "s3cret") {
			t.Errorf("%v with the secrets set: exit %d:\n%s", args, code, out)
		}
	}
}

// TestValidateHTTPMethod: a misspelt http method is refused at its
// position, with the method it was probably meant to be.
func TestValidateHTTPMethod(t *testing.T) {
	rb := filepath.Join(t.TempDir(), "method.yml")
	os.WriteFile(rb, []byte(`- name: s
  sources: [{range: {limit: 1}}]
  rules:
    - name: r
      condition: event.i == 0
      action:
        http: {url: "https://example.invalid/hook", method: PSOT}
`), 0o644)
	code, out, _ := runCLI(t, "validate", rb)
	want := rb + `:7:53: ruleset "s": rule "r": actions[0]: http: method: "PSOT" is not an HTTP method (want one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE); did you mean "POST"?`
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("exit %d, want 1 with\n%s\ngot\n%s", code, want, out)
	}
}

// TestValidateStats: validate --stats names, per rule, the tests the rule
// index selects it by, and the rules evaluated for every event.
func TestValidateStats(t *testing.T) {
	rb := filepath.Join(t.TempDir(), "stats.yml")
	os.WriteFile(rb, []byte(`- name: web
  sources: [{range: {limit: 1}}]
  rules:
    - name: eq
      condition: event.alertname == "A1" && event.cpu > 90
      action: {none: {}}
    - name: either
      condition: event.i in [1, 2] || defined(event.x.y)
      action: {none: {}}
    - name: pair
      condition:
        all: [event.k == "down", event.k == "up" && event.h == events.m_0.h]
      action: {none: {}}
    - name: slow
      condition: not (event.i == 1)
      action: {none: {}}
`), 0o644)
	code, out, _ := runCLI(t, "validate", "--stats", rb)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		rb + `: ruleset "web": rule "eq": indexed by event.alertname == "A1"` + "\n",
		rb + `: ruleset "web": rule "either": indexed by event.i in [1, 2] || defined(event.x.y)` + "\n",
		rb + `: ruleset "web": rule "pair": indexed by [0] event.k == "down"; [1] event.k == "up"` + "\n",
		rb + `: ruleset "web": rule "slow": not indexed, evaluated for every event`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "validate", "--stats", "--format", "json", rb)
	var rep struct {
		Rules []struct {
			Rule    string     `json:"rule"`
			Indexed bool       `json:"indexed"`
			Tests   [][]string `json:"tests"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.Rules) != 4 ||
		!rep.Rules[2].Indexed || len(rep.Rules[2].Tests) != 2 || rep.Rules[3].Indexed || len(rep.Rules[3].Tests[0]) != 0 {
		t.Errorf("json: exit %d, %+v, %v\n%s", code, rep, err, out)
	}
}
