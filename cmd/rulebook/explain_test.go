package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/engine"
)

// TestExplainCLI explains events against the Alertmanager example with a
// fresh engine: a complete alert fires (naming its throttle group), one
// without labels does not, and the missing field is named.
func TestExplainCLI(t *testing.T) {
	rb := filepath.Join(repoRoot(t), "rulebooks", "examples", "alertmanager-restart.yml")
	dir := t.TempDir()
	full := filepath.Join(dir, "full.json")
	os.WriteFile(full, []byte(`{"alert": {"status": "firing", "labels": {"alertname": "ServiceDown", "service": "nginx"}}, "meta": {"hosts": ["web1"]}}`), 0o644)
	bare := filepath.Join(dir, "bare.json")
	os.WriteFile(bare, []byte(`{"alert": {"status": "firing", "labels": {"service": "nginx"}}, "meta": {"hosts": ["web1"]}}`), 0o644)

	code, out, errOut := runCLI(t, "explain", rb, full)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{
		`ruleset "restart services"`,
		`rule "restart service" (condition): fires: fires and opens a once_within window for the group; group ["web1" "nginx"]; window ends `,
		`→ true`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runCLI(t, "explain", "--format", "json", rb, bare)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	var got struct {
		Explanations []struct {
			Rules []struct {
				Outcome    string
				Match      string
				Conditions []struct {
					Result  string
					Missing []string
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	r := got.Explanations[0].Rules[0]
	if r.Outcome != "no_match" || r.Match != "unknown" || len(r.Conditions) != 1 ||
		strings.Join(r.Conditions[0].Missing, ",") != "event.alert.labels.alertname" {
		t.Errorf("bare alert: %+v, want no match, unknown, missing event.alert.labels.alertname", r)
	}

	// Bad input: a clear error, usage errors exit 2.
	notJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(notJSON, []byte(`[1, 2]`), 0o644)
	if code, _, errOut := runCLI(t, "explain", rb, notJSON); code != 1 || !strings.Contains(errOut, "not a JSON object") {
		t.Errorf("array event: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "explain", "--ruleset", "nope", rb, full); code != 1 || !strings.Contains(errOut, `no ruleset named "nope"`) {
		t.Errorf("unknown ruleset: exit %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "explain", rb); code != 2 {
		t.Errorf("one argument: exit %d, want 2", code)
	}
}

// TestAdminExplainBackend: the admin API explains against the running
// engine's state, and declines (ErrExplainUnavailable, a 501) with --bus,
// where the event's partition may be owned by another process.
func TestAdminExplainBackend(t *testing.T) {
	rulesets := parseRulesets(t, `- name: rs
  sources: [{range: {limit: 1}}]
  rules:
    - {name: r, condition: event.i == 1, throttle: {once_within: 1h}, action: {none: {}}}
`)
	a := &app{log: discardLog(), eng: engine.New(rulesets, engine.Options{Log: discardLog()})}
	if err := a.eng.Inject(context.Background(), "rs", nil, []map[string]any{{"i": 1}}); err != nil {
		t.Fatal(err)
	}
	xs, err := adminBackend{a}.Explain("rs", map[string]any{"i": 1})
	if err != nil || len(xs) != 1 || xs[0].Rules[0].Outcome != engine.OutcomeSuppressed {
		t.Fatalf("explain: %+v %v, want suppressed by the live window", xs, err)
	}
	a.parts = newPartitions(a, "bus", rulesets)
	if _, err := (adminBackend{a}).Explain("rs", map[string]any{"i": 1}); !errors.Is(err, admin.ErrExplainUnavailable) {
		t.Errorf("with --bus: %v, want ErrExplainUnavailable", err)
	}
}
