package rulebooks

import (
	"bytes"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConvertFile is Convert on the file at path.
func ConvertFile(path string, opts Options) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Convert(path, data, opts)
}

// Convert loads a rulebook (which must be valid) and returns it in the
// native form: every condition read in EDA's language written as expr,
// EDA's source prefixes (eda.builtin., ansible.eda.) and action prefix
// (ansible.eda.) dropped, group_by_attributes renamed group_by. Everything
// else, comments included, stays as written. The result loads as a native
// rulebook and fires the same.
func Convert(name string, data []byte, opts Options) ([]byte, error) {
	if opts.Registry == nil {
		return nil, errNoRegistry
	}
	l := &loader{file: name, opts: opts}
	var doc yaml.Node
	l.parse(&doc, yaml.Unmarshal(data, &doc)) // a tree of its own: it is edited below
	if len(l.errs) > 0 {
		sortByPosition(l.errs)
		return nil, l.errs
	}
	for n, native := range l.native {
		if n.Value == native {
			continue
		}
		n.Value = native
		if n.Style == yaml.LiteralStyle || n.Style == yaml.FoldedStyle || n.Style == yaml.TaggedStyle {
			n.Style = 0
		}
	}
	walkRules(l.doc.Content[0], func(rs, rule *yaml.Node) {
		if rule == nil {
			if src := mapValue(rs, "sources"); src != nil && src.Kind == yaml.SequenceNode {
				for _, s := range src.Content {
					if s.Kind != yaml.MappingNode {
						continue
					}
					for i := 0; i+1 < len(s.Content); i += 2 {
						k := s.Content[i]
						k.Value = strings.TrimPrefix(strings.TrimPrefix(k.Value, "eda.builtin."), "ansible.eda.")
					}
				}
			}
			return
		}
		if th := mapValue(rule, "throttle"); th != nil && th.Kind == yaml.MappingNode {
			for i := 0; i < len(th.Content); i += 2 {
				if th.Content[i].Value == "group_by_attributes" {
					th.Content[i].Value = "group_by"
				}
			}
		}
		var actions []*yaml.Node
		if a := mapValue(rule, "action"); a != nil {
			actions = append(actions, a)
		}
		if as := mapValue(rule, "actions"); as != nil && as.Kind == yaml.SequenceNode {
			actions = append(actions, as.Content...)
		}
		for _, a := range actions {
			if a.Kind == yaml.MappingNode && len(a.Content) == 2 {
				a.Content[0].Value = strings.TrimPrefix(a.Content[0].Value, "ansible.eda.")
				if a.Content[0].Value == "debug" && a.Content[1].Kind == yaml.MappingNode {
					// EDA's debug ignores arguments other than msg and
					// var; a native rulebook rejects them.
					args := a.Content[1]
					var kept []*yaml.Node
					for i := 0; i+1 < len(args.Content); i += 2 {
						if builtinArgs["debug"][args.Content[i].Value] {
							kept = append(kept, args.Content[i], args.Content[i+1])
						}
					}
					args.Content = kept
				}
			}
		}
	})
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(l.doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	out := b.Bytes()
	if bytes.HasPrefix(data, []byte("---")) && !bytes.HasPrefix(out, []byte("---")) {
		out = append([]byte("---\n"), out...)
	}
	return out, nil
}
