package backtest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestDiff(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := func(rule, ev string, at int, msg string) Firing {
		return Firing{Ruleset: "rs", Rule: rule, Time: t0.Add(time.Duration(at) * time.Minute), EventIDs: []string{ev},
			Events:  map[string]map[string]any{"m": {"id": ev}},
			Actions: []engine.RenderedAction{{Type: "debug", Args: map[string]any{"msg": msg}}}}
	}
	old := []Firing{f("a", "e1", 1, "x"), f("a", "e2", 2, "x"), f("b", "e3", 3, "x"), f("b", "e4", 4, "x")}
	new := []Firing{f("a", "e1", 1, "x"), f("a", "e2", 2, "y"), f("b", "e4", 4, "x"), f("c", "e5", 5, "x")}
	got := Diff(old, new)
	var kinds []string
	for _, c := range got {
		kinds = append(kinds, c.Kind+" "+c.Rule+" "+c.firing().EventIDs[0])
	}
	want := "changed a e2|removed b e3|added c e5"
	if strings.Join(kinds, "|") != want {
		t.Fatalf("changes %q, want %q", strings.Join(kinds, "|"), want)
	}
	var buf bytes.Buffer
	WriteDiff(&buf, got)
	for _, s := range []string{`rule "a" (ruleset "rs"): 0 added, 0 removed, 1 changed`, `was:`, `debug {"msg":"x"}`, `debug {"msg":"y"}`, `- 2026-01-01T00:03:00.000Z  events e3`, `event m: {"id":"e5"}`} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("diff text lacks %q:\n%s", s, buf.String())
		}
	}
	if d := Diff(old, old); len(d) != 0 {
		t.Errorf("a rulebook against itself: %v", d)
	}
}

func TestLastRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadLastRun(dir); err != ErrNoLastRun {
		t.Fatalf("empty dir: %v", err)
	}
	if err := SaveLastRun(dir, "rb.yml", []byte("- name: a\n"), time.Now()); err != nil {
		t.Fatal(err)
	}
	lr, err := ReadLastRun(dir)
	if err != nil || lr.Text != "- name: a\n" || !strings.HasSuffix(lr.Path, "/rb.yml") {
		t.Fatalf("%+v %v", lr, err)
	}
}
