package rulebooks

import (
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPlainValue: where plainValue builds a value, it is what decoding
// and normalizeYAML give; it leaves aliases, merge keys, keys that are
// not strings and repeated keys to the decoder.
func TestPlainValue(t *testing.T) {
	tests := []struct {
		name, doc string
		decoded   bool // left to the decoder
	}{
		{name: "empty mapping", doc: `{}`},
		{name: "null", doc: `~`},
		{name: "strings", doc: `{name: site.yml, "q": 'x', lit: "a\tb", empty: ""}`},
		{name: "scalars", doc: `{a: 1, b: 1.5, c: 1e3, d: true, e: null, f: 2026-01-02, g: 2026-01-02T03:04:05Z, h: 0x1F, i: .inf, j: 12345678901234567890, k: !!str 5, l: !!binary aGk=}`},
		{name: "nested", doc: "extra_vars:\n  hosts: [a, b]\n  n: {x: [1, {y: z}], e: []}\n  m: {}\n"},
		{name: "sequence", doc: `[1, [], [a, {b: c}]]`},
		{name: "block text", doc: "msg: |\n  line\n  two\n"},
		{name: "anchor, no alias", doc: `{a: &x {b: 1}}`},
		{name: "alias", doc: `{a: &x {b: 1}, c: *x}`, decoded: true},
		{name: "merge key", doc: "a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n", decoded: true},
		{name: "int key", doc: `{1: one}`, decoded: true},
		{name: "repeated key", doc: `{a: 1, b: {c: 1, c: 2}}`, decoded: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.doc), &doc); err != nil {
				t.Fatal(err)
			}
			n := doc.Content[0]
			got, ok := plainValue(n)
			if ok == tc.decoded {
				t.Fatalf("built: %v, want %v", ok, !tc.decoded)
			}
			if !ok {
				return
			}
			var v any
			if err := n.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if want := normalizeYAML(v); !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %#v\nwant %#v", got, want)
			}
		})
	}
}
