package rulebooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// A rule's fingerprint hashes its YAML as JSON (positions, comments,
// quoting, key order and flow or block style aside) with its ruleset's
// settings: a reload keeps the state of a rule whose fingerprint did not
// change. Decoding every rule's node tree into Go values and marshalling
// those was a quarter of the load of a 10,000-rule rulebook, so the JSON
// is written from the node tree directly, byte for byte what
// json.Marshal of the decoded value gives; a tree the direct writer does
// not know (aliases, merge keys, keys that are not strings, a key given
// twice) takes the decoding way.

// fingerprinter writes rule fingerprints; one per load, reusing its buffers.
type fingerprinter struct {
	buf  []byte
	h    hash.Hash
	keys []int
	// scalars caches the JSON of non-string scalars (null, true, 90,
	// 5m...) by what their decoding depends on: they repeat across rules.
	scalars map[scalarKey][]byte
}

type scalarKey struct {
	tag, value string
	style      yaml.Style
}

// fingerprint hashes a rule's YAML with its ruleset's settings.
func (f *fingerprinter) fingerprint(settings []byte, n *yaml.Node) string {
	b, ok := f.appendJSON(f.buf[:0], n)
	if !ok {
		b = ruleJSON(n)
	} else {
		f.buf = b
	}
	if f.h == nil {
		f.h = sha256.New()
	}
	f.h.Reset()
	f.h.Write(settings)
	f.h.Write([]byte{0})
	f.h.Write(b)
	var sum [sha256.Size]byte
	return hex.EncodeToString(f.h.Sum(sum[:0])[:12])
}

// ruleJSON is the JSON of the value n decodes to, as json.Marshal writes
// it (nil when it cannot: then every such rule hashes alike, as before).
func ruleJSON(n *yaml.Node) []byte {
	var v any
	_ = n.Decode(&v)
	b, _ := json.Marshal(v)
	return b
}

// appendJSON appends ruleJSON(n) to b, or reports false when n holds
// something it leaves to ruleJSON.
func (f *fingerprinter) appendJSON(b []byte, n *yaml.Node) ([]byte, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return appendJSONString(b, n.Value), true
		}
		key := scalarKey{n.Tag, n.Value, n.Style}
		js, ok := f.scalars[key]
		if !ok {
			var v any
			if n.Decode(&v) != nil {
				return b, false
			}
			var err error
			if js, err = json.Marshal(v); err != nil {
				return b, false
			}
			if f.scalars == nil {
				f.scalars = map[scalarKey][]byte{}
			}
			f.scalars[key] = js
		}
		return append(b, js...), true
	case yaml.SequenceNode:
		b = append(b, '[')
		for i, c := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = f.appendJSON(b, c); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case yaml.MappingNode:
		// json.Marshal sorts a map's keys bytewise; keys decode to
		// strings only when every one is tagged !!str.
		start := len(f.keys)
		defer func() { f.keys = f.keys[:start] }()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				return b, false
			}
			f.keys = append(f.keys, i)
		}
		keys := f.keys[start:]
		slices.SortFunc(keys, func(i, j int) int {
			return strings.Compare(n.Content[i].Value, n.Content[j].Value)
		})
		b = append(b, '{')
		for x, i := range keys {
			if x > 0 {
				if n.Content[keys[x-1]].Value == n.Content[i].Value {
					return b, false // given twice: decoding keeps the last
				}
				b = append(b, ',')
			}
			b = appendJSONString(b, n.Content[i].Value)
			b = append(b, ':')
			var ok bool
			if b, ok = f.appendJSON(b, n.Content[i+1]); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false // aliases
}

// appendJSONString appends s as json.Marshal writes a string. Printable
// ASCII is written here, with json.Marshal's escapes for the quote, the
// backslash and the HTML characters (conditions are full of `"` and
// `&&`: marshalling each was a tenth of the loader's time); anything
// else goes through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			js, _ := json.Marshal(s)
			return append(b, js...)
		}
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		case '<', '>', '&':
			const hex = "0123456789abcdef"
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
