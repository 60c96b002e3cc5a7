package rulebooks

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestDescribe(t *testing.T) {
	reg := testRegistry()
	reg.RegisterAction(engine.ActionSpec{Type: "notify", Description: "send a notice", New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil },
		Schema: map[string]any{"type": "object", "required": []any{"to"}, "properties": map[string]any{
			"to":     map[string]any{"type": "string", "description": "recipient"},
			"level":  map[string]any{"enum": []any{"info", "page"}, "default": "info"},
			"tags":   map[string]any{"anyOf": []any{map[string]any{"type": "array", "items": map[string]any{"type": "string"}}, map[string]any{"$ref": "#/$defs/template"}}},
			"detail": map[string]any{},
		}}})
	var b bytes.Buffer
	if err := Describe(&b, reg, "notify"); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	if !strings.HasPrefix(got, "action notify: send a notice\n\nARGUMENT") {
		t.Errorf("header:\n%s", got)
	}
	// Columns are separated by two spaces or more.
	rows := map[string][]string{}
	var order []string
	for _, line := range strings.Split(got, "\n")[3:] {
		if line == "" {
			continue
		}
		cols := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		rows[cols[0]] = cols[1:]
		order = append(order, cols[0])
	}
	for arg, want := range map[string]string{
		"to":     "string|yes|recipient",
		"level":  `one of "info", "page"|"info"`,
		"tags":   "array of string or a template",
		"detail": "any",
		// The dispatcher policy keys the schema adds to every dispatched
		// action are listed too.
		"retries": "integer",
	} {
		if g := strings.Join(rows[arg], "|"); g != want {
			t.Errorf("%s: %q, want %q\n%s", arg, g, want, got)
		}
	}
	// Required first, then by name.
	if len(order) < 2 || order[0] != "to" || order[1] != "delay" {
		t.Errorf("order %v", order)
	}

	b.Reset()
	if err := Describe(&b, reg, "shutdown"); err != nil || !strings.Contains(b.String(), "action shutdown: handled by the engine") || !strings.Contains(b.String(), "\ndelay ") {
		t.Errorf("engine action: %v\n%s", err, b.String())
	}
	b.Reset()
	if err := Describe(&b, reg, "range"); err != nil || !strings.HasPrefix(b.String(), "source range") {
		t.Errorf("source: %v\n%s", err, b.String())
	}
	if err := Describe(&b, reg, "notfy"); err == nil || !strings.Contains(err.Error(), `no action or source type "notfy"; did you mean "notify"?`) {
		t.Errorf("unknown name: %v", err)
	}
}
