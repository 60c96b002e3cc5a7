package main

import (
	"strings"
	"testing"
)

// TestDescribeBuiltinActions: `rulebook describe` lists every argument of
// every built-in action and source, as their schemas declare them.
func TestDescribeBuiltinActions(t *testing.T) {
	reg, closeReg, err := newRegistry(registryOptions{log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReg()
	check := func(kind, typ string, schema map[string]any) {
		t.Helper()
		code, out, errs := runCLI(t, "describe", typ)
		if code != 0 || !strings.Contains(out, kind+" "+typ) {
			t.Fatalf("describe %s: exit %d\n%s%s", typ, code, out, errs)
		}
		props, _ := schema["properties"].(map[string]any)
		for k := range props {
			if !strings.Contains(out, "\n"+k+" ") {
				t.Errorf("describe %s lacks argument %q:\n%s", typ, k, out)
			}
		}
	}
	for _, typ := range reg.ActionTypes() {
		spec, _ := reg.Action(typ)
		check("action", typ, spec.Schema)
	}
	for _, typ := range reg.SourceTypes() {
		spec, _ := reg.Source(typ)
		check("source", typ, spec.Schema)
	}
	code, out, _ := runCLI(t, "describe", "http")
	if code != 0 || !strings.Contains(out, "\nurl ") || !strings.Contains(out, `"POST"`) {
		t.Errorf("describe http:\n%s", out)
	}
	if code, _, errs := runCLI(t, "describe", "htp"); code != 1 || !strings.Contains(errs, `did you mean "http"?`) {
		t.Errorf("describe htp: exit %d, %s", code, errs)
	}
}
