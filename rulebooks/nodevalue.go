package rulebooks

import "gopkg.in/yaml.v3"

// plainValue is what normalizeYAML makes of n decoded into an any, built
// from the node tree without yaml.v3's reflecting decoder (a decoder per
// action's arguments was a tenth of the rule-by-rule checks of a large
// rulebook). It reports false, having built nothing the caller keeps, for
// what it leaves to the decoder: aliases, merge keys, keys that are not
// strings, a key given twice (the decoder's error), and any scalar it
// cannot decode.
func plainValue(n *yaml.Node) (any, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return n.Value, true
		}
		var v any
		if n.Decode(&v) != nil {
			return nil, false
		}
		return normalizeYAML(v), true
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, ok := plainValue(c)
			if !ok {
				return nil, false
			}
			out[i] = v
		}
		return out, true
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				return nil, false
			}
			if _, dup := out[k.Value]; dup {
				return nil, false
			}
			v, ok := plainValue(n.Content[i+1])
			if !ok {
				return nil, false
			}
			out[k.Value] = v
		}
		return out, true
	}
	return nil, false
}
