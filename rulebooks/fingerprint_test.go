package rulebooks

import (
	"encoding/json"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestFingerprintJSON: the JSON a fingerprint hashes, written from the
// node tree, is byte for byte json.Marshal of the decoded rule, whatever
// the rule holds; trees the writer leaves to decoding are named.
func TestFingerprintJSON(t *testing.T) {
	tests := []struct {
		name, rule string
		decoded    bool // the writer leaves it to decoding
	}{
		{name: "plain", rule: `{name: r1, condition: 'event.host == "h1" && event.cpu > 90', action: {none: {}}}`},
		{name: "block with comments", rule: "name: r1 # the rule\ncondition: event.x == 1\n# before\nactions:\n  - debug:\n      msg: hi\n"},
		{name: "scalars", rule: `{a: 1, b: 1.0, c: 1e3, d: -0x1F, e: true, f: False, g: null, h: ~, i: "", k: 2026-01-02, l: 2026-01-02T03:04:05Z, m: 0o17, n: 12345678901234567890}`},
		{name: "quoted numbers stay strings", rule: `{a: "1", b: '1.0', c: !!str 5, d: "true", e: !!int "7"}`},
		{name: "escaping", rule: "{a: \"<b> & \\\"q\\\" \\\\ \\t \\n \\u2028 é 😀\", b: 'it''s'}"},
		{name: "invalid utf-8", rule: "{a: !!binary /w==}"},
		{name: "key order", rule: `{z: 1, a: {y: [3, 2, {c: d, b: e}], x: []}, m: {}, "": empty, "~": tilde}`},
		{name: "literal and folded", rule: "a: |\n  line one\n  line two\nb: >\n  folded\n  text\n"},
		{name: "nested lists", rule: `{a: [[1, [2, [null]]], [], [{}]]}`},
		{name: "durations and templates", rule: `{throttle: {once_within: 5m, group_by: [event.host]}, action: {run_command: {command: "echo {{ event.x }}"}}}`},
		{name: "anchor without alias", rule: `{a: &x {b: 1}, c: 2}`},
		{name: "alias", rule: `{a: &x {b: 1}, c: *x}`, decoded: true},
		{name: "merge key", rule: "a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n", decoded: true},
		{name: "key not a string", rule: `{1: one, true: yes}`, decoded: true},
		{name: "key given twice", rule: `{a: 1, b: {c: 1, c: 2}}`, decoded: true},
		{name: "nan", rule: `{a: .nan}`, decoded: true},
		{name: "infinity", rule: `{a: [1, -.inf]}`, decoded: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.rule), &doc); err != nil {
				t.Fatal(err)
			}
			n := doc.Content[0]
			var v any
			_ = n.Decode(&v)
			want, _ := json.Marshal(v)
			var f fingerprinter
			got, ok := f.appendJSON(nil, n)
			if ok == tc.decoded {
				t.Fatalf("written directly: %v, want %v", ok, !tc.decoded)
			}
			if ok && string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if string(ruleJSON(n)) != string(want) {
				t.Fatalf("ruleJSON %s, want %s", ruleJSON(n), want)
			}
			// Twice with one fingerprinter (its caches filled): the same.
			first := f.fingerprint(nil, n)
			if again := f.fingerprint(nil, n); again != first {
				t.Fatalf("fingerprint %s, then %s", first, again)
			}
		})
	}
}

// TestFingerprintSameRule: rules that decode alike share a fingerprint
// (the state a reload keeps); any change of value or settings changes it.
func TestFingerprintSameRule(t *testing.T) {
	fp := func(settings, rule string) string {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(rule), &doc); err != nil {
			t.Fatal(err)
		}
		var f fingerprinter
		return f.fingerprint([]byte(settings), doc.Content[0])
	}
	base := fp("s", "name: r\ncondition: event.x == 1\naction:\n  debug: {msg: \"1\"}\n")
	for _, same := range []string{
		"# comment\nname: r   # trailing\ncondition: 'event.x == 1'\naction: {debug: {msg: '1'}}\n",
		"action:\n  debug:\n    msg: \"1\"\ncondition: \"event.x == 1\"\nname: \"r\"\n",
	} {
		if got := fp("s", same); got != base {
			t.Errorf("%q: fingerprint %s, want %s", same, got, base)
		}
	}
	for _, other := range []struct{ settings, rule string }{
		{"t", "name: r\ncondition: event.x == 1\naction:\n  debug: {msg: \"1\"}\n"},
		{"s", "name: r\ncondition: event.x == 2\naction:\n  debug: {msg: \"1\"}\n"},
		{"s", "name: r\ncondition: event.x == 1\naction:\n  debug: {msg: 1}\n"},
		{"s", "name: r\ncondition: event.x == 1\naction:\n  debug: {msg: \"1\", x: null}\n"},
	} {
		if got := fp(other.settings, other.rule); got == base {
			t.Errorf("%q with settings %q: fingerprint unchanged", other.rule, other.settings)
		}
	}
}

// TestAppendJSONString: strings are written as json.Marshal writes them,
// each byte value alone and amid text, and strings of many escapes.
func TestAppendJSONString(t *testing.T) {
	strs := []string{"", `event.host == "h1" && event.cpu > 90`, `a\b"c<d>e&f`, `""\\&&<<>>`, "é 😀 \u2028", "\xff"}
	for c := 0; c < 256; c++ {
		strs = append(strs, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	for _, s := range strs {
		want, _ := json.Marshal(s)
		if got := appendJSONString([]byte("prefix"), s); string(got) != "prefix"+string(want) {
			t.Fatalf("%q: got %s, want prefix%s", s, got, want)
		}
	}
}
