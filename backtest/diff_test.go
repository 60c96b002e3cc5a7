package backtest

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
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

// TestWriteLastRunAsEncodingJSON: the record is written byte for byte as
// encoding/json (without HTML escaping) writes a LastRun, whatever bytes
// the text holds.
func TestWriteLastRunAsEncodingJSON(t *testing.T) {
	texts := [][]byte{nil, []byte("- name: a\n  condition: event.x == \"<&>\" && event.y != 'q\\\\'\n"),
		[]byte("é 😀 \u2028 \u2029 \xff \xe2\x80 tab\there\r\n\x00\x1f\x7f")}
	for c := 0; c < 256; c++ {
		texts = append(texts, []byte{'a', byte(c), 'b'})
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, rnd.IntN(64))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		texts = append(texts, b)
	}
	saved := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, text := range texts {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(LastRun{Path: "/rules/rb.yml", SHA256: "ab12", Saved: saved, Text: string(text)}); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeLastRun(&got, "/rules/rb.yml", "ab12", saved, text); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("text %q:\ngot  %s\nwant %s", text, got.String(), want.String())
		}
	}
}
