package engine

import (
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// TemplatePart is one "{{ expr }}" of a string, as the template compiler
// splits it.
type TemplatePart struct {
	// Column is the 1-based byte offset of its "{{" in the string.
	Column int
	// Src is the expression, trimmed.
	Src string
	// Roots are the root names it reads (event, events, fact, facts, vars),
	// each once, in order of appearance; nil when it does not parse.
	Roots []string
	// Parsed is false when the expression does not parse (CompileTemplate
	// reports it).
	Parsed bool
}

// ReadsEventData reports whether the part may insert data that came from an
// event: it reads event, events, fact or facts (facts are set from events),
// or cannot be parsed, so nothing can be said.
func (p TemplatePart) ReadsEventData() bool {
	if !p.Parsed {
		return true
	}
	for _, r := range p.Roots {
		if r != "vars" {
			return true
		}
	}
	return false
}

// TemplateParts splits s into its template expressions the way
// CompileTemplate does, for checks that look at what a template reads
// (an ActionSpec's Warn). A string without "{{" has none.
func TemplateParts(s string) []TemplatePart {
	var out []TemplatePart
	rest, offset := s, 0
	for {
		lit, src, after, open, closed := cutTemplate(rest)
		if !open {
			return out
		}
		col := offset + len(lit) + 1
		if !closed {
			// Unclosed: CompileTemplate reports it.
			return append(out, TemplatePart{Column: col, Src: strings.TrimSpace(src)})
		}
		p := TemplatePart{Column: col, Src: strings.TrimSpace(src)}
		if tree, err := parser.Parse(src); err == nil {
			p.Parsed = true
			v := &rootCollector{}
			ast.Walk(&tree.Node, v)
			p.Roots = v.names
		}
		out = append(out, p)
		offset += len(rest) - len(after)
		rest = after
	}
}

// rootCollector collects the root names an expression reads.
type rootCollector struct{ names []string }

func (r *rootCollector) Visit(n *ast.Node) {
	id, ok := (*n).(*ast.IdentifierNode)
	if !ok {
		return
	}
	switch id.Value {
	case "event", "events", "fact", "facts", "vars":
		for _, have := range r.names {
			if have == id.Value {
				return
			}
		}
		r.names = append(r.names, id.Value)
	}
}
