package plugins

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

const ticketLikeSchema = `{
	"type": "object",
	"properties": {
		"system": {"enum": ["servicenow", "jira", "github"]},
		"url": {"type": "string", "format": "uri", "pattern": "^https?://"},
		"priority": {"type": "integer", "minimum": 1, "maximum": 5},
		"labels": {"type": "array", "items": {"type": "string"}},
		"auth": {
			"oneOf": [
				{"type": "object", "properties": {"token": {"type": "string"}}, "required": ["token"], "additionalProperties": false},
				{"type": "object", "properties": {"username": {"type": "string"}, "password": {"type": "string"}}, "required": ["username", "password"], "additionalProperties": false}
			]
		},
		"fields": {"type": "object"}
	},
	"required": ["system", "url"],
	"additionalProperties": false
}`

func TestCheckValidatesAgainstTheSchema(t *testing.T) {
	s, err := compileSchema("t.open", ticketLikeSchema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     string
		wantPath string // "" means valid
		wantMsg  string
	}{
		{name: "valid", args: `{"system":"jira","url":"https://x.example","priority":2,"auth":{"token":"t"}}`},
		{name: "missing required", args: `{"system":"jira"}`, wantPath: "", wantMsg: `missing required key "url"`},
		{name: "unknown key", args: `{"system":"jira","url":"https://x","sytem":"x"}`, wantPath: "sytem", wantMsg: "unknown key"},
		{name: "literal outside enum", args: `{"system":"remedy","url":"https://x"}`, wantPath: "system", wantMsg: "value must be one of"},
		{name: "literal of wrong type", args: `{"system":"jira","url":"https://x","priority":"high"}`, wantPath: "priority", wantMsg: "want integer"},
		{name: "number out of range", args: `{"system":"jira","url":"https://x","priority":9}`, wantPath: "priority", wantMsg: "maximum"},
		{name: "nested array item", args: `{"system":"jira","url":"https://x","labels":["a",3]}`, wantPath: "labels.1", wantMsg: "want string"},
		{name: "oneOf no branch", args: `{"system":"jira","url":"https://x","auth":{"user":"u"}}`, wantPath: "auth"},

		// Templates are accepted wherever a rendered value could be valid.
		{name: "template in enum", args: `{"system":"{{ vars.system }}","url":"https://x"}`},
		{name: "template for integer", args: `{"system":"jira","url":"https://x","priority":"{{ event.prio }}"}`},
		{name: "template for pattern", args: `{"system":"jira","url":"{{ vars.url }}"}`},
		{name: "template for object", args: `{"system":"jira","url":"https://x","fields":"{{ event.fields }}"}`},
		{name: "template for array", args: `{"system":"jira","url":"https://x","labels":"{{ event.labels }}"}`},
		{name: "template array item", args: `{"system":"jira","url":"https://x","labels":["a","{{ x }}"]}`},
		{name: "template for oneOf object", args: `{"system":"jira","url":"https://x","auth":"{{ vars.auth }}"}`},
		{name: "template inside oneOf branch", args: `{"system":"jira","url":"https://x","auth":{"token":"{{ t }}"}}`},
		{name: "secret reference for pattern", args: `{"system":"jira","url":"${env:JIRA_URL}"}`},
		{name: "escaped secret reference is literal", args: `{"system":"jira","url":"$${env:JIRA_URL}"}`, wantPath: "url", wantMsg: "does not match pattern"},
		// ...but not where no rendering can help.
		{name: "template does not excuse a missing key", args: `{"system":"{{ s }}"}`, wantMsg: `missing required key "url"`},
		{name: "template does not excuse an unknown key", args: `{"system":"jira","url":"{{ u }}","bogus":"{{ b }}"}`, wantPath: "bogus", wantMsg: "unknown key"},
		{name: "literal error beside a template", args: `{"system":"{{ s }}","url":"https://x","priority":0}`, wantPath: "priority", wantMsg: "minimum"},
		{name: "plain string with braces is literal", args: `{"system":"{ jira }","url":"https://x"}`, wantPath: "system"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var args map[string]any
			if err := json.Unmarshal([]byte(tc.args), &args); err != nil {
				t.Fatal(err)
			}
			err := s.check(args)
			valid := tc.wantPath == "" && tc.wantMsg == ""
			if valid {
				if err != nil {
					t.Fatalf("check = %v, want valid", err)
				}
				return
			}
			var ae *engine.ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("check = %v (%T), want *engine.ArgError", err, err)
			}
			if got := strings.Join(ae.Path, "."); got != tc.wantPath {
				t.Errorf("path = %q, want %q (error %v)", got, tc.wantPath, err)
			}
			if !strings.Contains(ae.Err.Error(), tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", ae.Err, tc.wantMsg)
			}
		})
	}
}

func TestCheckAcceptsYAMLNumbers(t *testing.T) {
	s, err := compileSchema("t.open", ticketLikeSchema)
	if err != nil {
		t.Fatal(err)
	}
	// yaml.v3 decodes integers as int.
	if err := s.check(map[string]any{"system": "jira", "url": "https://x", "priority": 3}); err != nil {
		t.Fatal(err)
	}
}

func TestCompileSchemaRejectsBadSchemas(t *testing.T) {
	for _, text := range []string{`{`, `{"type": 3}`, `{"$ref": "#/nope"}`} {
		if _, err := compileSchema("x.y", text); err == nil || !strings.Contains(err.Error(), `action "x.y"`) {
			t.Errorf("compileSchema(%s) = %v", text, err)
		}
	}
	s, err := compileSchema("x.y", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.check(map[string]any{"anything": 1}); err != nil {
		t.Errorf("empty schema rejected an object: %v", err)
	}
}

func FuzzCheck(f *testing.F) {
	s, err := compileSchema("t.open", ticketLikeSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(`{"system":"jira","url":"https://x"}`)
	f.Add(`{"system":"{{ s }}","auth":{"token":"{{ t }}"},"labels":["{{"]}`)
	f.Add(`{"auth":"{{","priority":1e400}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var args map[string]any
		if json.Unmarshal([]byte(doc), &args) != nil {
			return
		}
		err := s.check(args)
		if err == nil {
			return
		}
		var ae *engine.ArgError
		if !errors.As(err, &ae) {
			t.Fatalf("check returned %T, want *engine.ArgError", err)
		}
	})
}

// TestCheckReportsEveryError: every problem, each at its key, in path
// order, not only the first one the validator met.
func TestCheckReportsEveryError(t *testing.T) {
	s, err := compileSchema("t.open", ticketLikeSchema)
	if err != nil {
		t.Fatal(err)
	}
	var args map[string]any
	json.Unmarshal([]byte(`{"system":"remedy","priority":"high","labels":["a",3],"sytem":"x","auth":{"user":"u"}}`), &args)
	err = s.check(args)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("check = %v (%T), want several errors", err, err)
	}
	var got []string
	for _, e := range joined.Unwrap() {
		ae, ok := e.(*engine.ArgError)
		if !ok {
			t.Fatalf("%v is %T, want *engine.ArgError", e, e)
		}
		got = append(got, strings.Join(ae.Path, ".")+": "+ae.Err.Error())
	}
	want := []string{
		`: missing required key "url"`,
		"auth: ",
		"labels.1: got number, want string",
		"priority: got string, want integer",
		"system: value must be one of 'servicenow', 'jira', 'github'",
		"sytem: unknown key",
	}
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want %q", i, got[i], want[i])
		}
	}
}
