package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Template is a compiled action argument: any YAML value whose strings may
// hold "{{ expr }}" parts. A string that is exactly one template keeps the
// expression's type (a number stays a number, a map stays a map); otherwise
// the parts are joined as text. Templates read event, events, fact, facts and
// vars with expr's own semantics: a missing field is null, rendered as "" in
// text, so `{{ event.x ?? "none" }}` gives defaults.
//
// Secret references (${env:NAME}, ${file:PATH}) are found in the template's
// literal text when it is compiled; rendering keeps their text and reports
// where each one landed (RenderRefs). What expressions insert is never read
// as a reference, so event data cannot name a secret (see ResolveArgs).
type Template struct {
	node tplNode
	// refs: the literal text holds a secret reference (else rendering
	// need not track places).
	refs bool
}

type tplNode interface {
	render(st *evalState, at refSink) (any, error)
}

// refSink collects the places where literal secret references land while
// rendering: path is where the node being rendered sits in the result.
type refSink struct {
	path []string
	uses *[]SecretUse
}

func (s refSink) child(key string) refSink {
	if s.uses == nil {
		return s
	}
	return refSink{path: append(s.path[:len(s.path):len(s.path)], key), uses: s.uses}
}

// add records refs of a literal rendered at s, offset by base bytes.
func (s refSink) add(refs []litRef, base int) {
	if s.uses == nil {
		return
	}
	for _, r := range refs {
		p := make([]string, 0, len(s.path)+len(r.path))
		p = append(append(p, s.path...), r.path...)
		*s.uses = append(*s.uses, SecretUse{Path: p, At: base + r.at, SecretRef: r.ref})
	}
}

// tplLiteral is rulebook text with no expression: refs are the secret
// references in it (in v's strings, after unescaping "$${").
type tplLiteral struct {
	v    any
	refs []litRef
}
type tplExpr struct {
	src  string
	prog *vm.Program
}
type tplText struct {
	parts []tplNode
	// refs: a literal part holds a secret reference. The text is then kept
	// valid UTF-8, so that the references' byte offsets survive the JSON of
	// the durable queue, which would replace invalid bytes.
	refs bool
}
type tplMap struct {
	keys []string
	vals []tplNode
}
type tplList struct{ items []tplNode }

// TemplateError is a template compile error at a path inside the value, with
// the 1-based column of the expression inside its string.
type TemplateError struct {
	Path   []string
	Column int
	Err    error
}

func (e *TemplateError) Error() string {
	if len(e.Path) == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", strings.Join(e.Path, "."), e.Err)
}

func (e *TemplateError) Unwrap() error { return e.Err }

// CompileTemplate compiles every template in v.
func (c *Compiler) CompileTemplate(v any) (*Template, error) {
	cfg := c.config()
	n, err := c.compileValue(v, nil, cfg)
	if err != nil {
		return nil, err
	}
	return &Template{node: n, refs: hasRefs(n)}, nil
}

func hasRefs(n tplNode) bool {
	switch x := n.(type) {
	case tplLiteral:
		return len(x.refs) > 0
	case tplText:
		return x.refs
	case tplMap:
		for _, v := range x.vals {
			if hasRefs(v) {
				return true
			}
		}
	case tplList:
		for _, v := range x.items {
			if hasRefs(v) {
				return true
			}
		}
	}
	return false
}

// IsStatic reports whether the template holds no expression.
func (t *Template) IsStatic() bool {
	_, ok := t.node.(tplLiteral)
	return ok
}

func (c *Compiler) compileValue(v any, path []string, cfg *conf.Config) (tplNode, error) {
	switch x := v.(type) {
	case string:
		return c.compileString(x, path, cfg)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := tplMap{keys: keys, vals: make([]tplNode, len(keys))}
		static := true
		for i, k := range keys {
			n, err := c.compileValue(x[k], append(path[:len(path):len(path)], k), cfg)
			if err != nil {
				return nil, err
			}
			if _, ok := n.(tplLiteral); !ok {
				static = false
			}
			m.vals[i] = n
		}
		if static {
			lit := tplLiteral{}
			val := make(map[string]any, len(keys))
			for i, k := range keys {
				l := m.vals[i].(tplLiteral)
				val[k] = l.v
				lit.refs = append(lit.refs, prefixRefs(k, l.refs)...)
			}
			lit.v = val
			return lit, nil
		}
		return m, nil
	case []any:
		l := tplList{items: make([]tplNode, len(x))}
		static := true
		for i, item := range x {
			n, err := c.compileValue(item, append(path[:len(path):len(path)], strconv.Itoa(i)), cfg)
			if err != nil {
				return nil, err
			}
			if _, ok := n.(tplLiteral); !ok {
				static = false
			}
			l.items[i] = n
		}
		if static {
			lit := tplLiteral{}
			val := make([]any, len(x))
			for i, n := range l.items {
				il := n.(tplLiteral)
				val[i] = il.v
				lit.refs = append(lit.refs, prefixRefs(strconv.Itoa(i), il.refs)...)
			}
			lit.v = val
			return lit, nil
		}
		return l, nil
	}
	return tplLiteral{v: v}, nil
}

func prefixRefs(key string, refs []litRef) []litRef {
	out := make([]litRef, len(refs))
	for i, r := range refs {
		out[i] = litRef{path: append([]string{key}, r.path...), at: r.at, ref: r.ref}
	}
	return out
}

// textLiteral is a literal piece of rulebook text, with its references.
func textLiteral(s string) tplLiteral {
	v, refs := parseLiteral(s)
	return tplLiteral{v: v, refs: refs}
}

func (c *Compiler) compileString(s string, path []string, cfg *conf.Config) (tplNode, error) {
	if !strings.Contains(s, "{{") {
		return textLiteral(s), nil
	}
	if err := templateStringBounds(s, path); err != nil {
		return nil, err
	}
	var parts []tplNode
	rest, offset := s, 0
	for {
		lit, src, after, open, closed := cutTemplate(rest)
		if !open {
			if rest != "" {
				parts = append(parts, textLiteral(rest))
			}
			break
		}
		i := len(lit)
		if !closed {
			return nil, &TemplateError{Path: path, Column: offset + i + 1, Err: fmt.Errorf("template %q has no closing }}", s)}
		}
		if i > 0 {
			if at := openRefAt(lit); at >= 0 {
				return nil, &TemplateError{Path: path, Column: offset + at + 1, Err: fmt.Errorf("secret reference %q is completed by a template: a secret's name must be literal text", lit[at:]+"{{")}
			}
			parts = append(parts, textLiteral(lit))
		}
		prog, err := compileTemplateExpr(src, cfg)
		if err != nil {
			col := offset + i + 3
			if ee, ok := err.(*ExprError); ok {
				col += ee.Column - 1
			}
			return nil, &TemplateError{Path: path, Column: col, Err: fmt.Errorf("template %q: %w", strings.TrimSpace(src), err)}
		}
		parts = append(parts, tplExpr{src: strings.TrimSpace(src), prog: prog})
		offset += len(rest) - len(after)
		rest = after
	}
	if len(parts) == 1 {
		if e, ok := parts[0].(tplExpr); ok {
			return e, nil
		}
	}
	t := tplText{parts: parts}
	for _, p := range parts {
		if l, ok := p.(tplLiteral); ok && len(l.refs) > 0 {
			t.refs = true
		}
	}
	return t, nil
}

// cutTemplate splits s at its first "{{ expr }}": lit is the text before
// the "{{", src the expression between the braces and rest the text after
// the "}}". open is false when s has no "{{" (lit is s); closed is false
// when the "{{" has no "}}" (src is all the text after the "{{"). It is the
// one place template text is split, so CompileTemplate, TemplateParts and
// EscapeURLTemplate see the same expressions.
func cutTemplate(s string) (lit, src, rest string, open, closed bool) {
	i := strings.Index(s, "{{")
	if i < 0 {
		return s, "", "", false, false
	}
	j := strings.Index(s[i+2:], "}}")
	if j < 0 {
		return s[:i], s[i+2:], "", true, false
	}
	return s[:i], s[i+2 : i+2+j], s[i+2+j+2:], true, true
}

func compileTemplateExpr(src string, cfg *conf.Config) (*vm.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("empty template")
	}
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, exprError(err, file.NewSource(src))
	}
	rewrite(&tree.Node, true)
	return compileNode(tree.Node, tree.Source, cfg, false)
}

// render evaluates the template against a bound evaluation state.
func (t *Template) render(st *evalState) (any, error) { return t.node.render(st, refSink{}) }

// renderRefs is render that also says where the literal secret references
// landed in the result.
func (t *Template) renderRefs(st *evalState) (any, []SecretUse, error) {
	if !t.refs {
		v, err := t.render(st)
		return v, nil, err
	}
	var uses []SecretUse
	v, err := t.node.render(st, refSink{uses: &uses})
	return v, uses, err
}

// Render evaluates the template with env (for callers outside the engine,
// such as a partition key). It is safe for concurrent use.
func (t *Template) Render(env Env) (any, error) {
	st := newEvalState(nil)
	st.env = &env
	return t.render(st)
}

// RenderRefs is Render that also returns where the secret references of the
// template's literal text are in the result, for ResolveArgs.
func (t *Template) RenderRefs(env Env) (any, []SecretUse, error) {
	st := newEvalState(nil)
	st.env = &env
	return t.renderRefs(st)
}

func (n tplLiteral) render(_ *evalState, at refSink) (any, error) {
	at.add(n.refs, 0)
	return deepCopy(n.v), nil
}

func (n tplExpr) render(st *evalState, _ refSink) (any, error) {
	out, err := st.vm.Run(n.prog, st.env)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", n.src, err)
	}
	return normalize(out), nil
}

func (n tplText) render(st *evalState, at refSink) (any, error) {
	var b strings.Builder
	for _, p := range n.parts {
		if l, ok := p.(tplLiteral); ok {
			at.add(l.refs, b.Len())
			b.WriteString(Text(l.v))
			continue
		}
		v, err := p.render(st, refSink{})
		if err != nil {
			return nil, err
		}
		if n.refs {
			b.WriteString(strings.ToValidUTF8(Text(v), "\uFFFD"))
		} else {
			b.WriteString(Text(v))
		}
	}
	return b.String(), nil
}

func (n tplMap) render(st *evalState, at refSink) (any, error) {
	m := make(map[string]any, len(n.keys))
	for i, k := range n.keys {
		v, err := n.vals[i].render(st, at.child(k))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m[k] = v
	}
	return m, nil
}

func (n tplList) render(st *evalState, at refSink) (any, error) {
	l := make([]any, len(n.items))
	for i, item := range n.items {
		v, err := item.render(st, at.child(strconv.Itoa(i)))
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		l[i] = v
	}
	return l, nil
}

// Text renders a value as a template inserts it into text: null is empty,
// whole numbers have no decimal point, containers are JSON.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case fmt.Stringer:
		return x.String()
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}

// normalize turns typed Go values that expr may return into JSON-ish ones.
func normalize(v any) any {
	switch x := v.(type) {
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return l
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return m
	}
	return v
}

// deepCopy copies maps and lists so rendered values never share memory with
// the rulebook or an event.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[k] = deepCopy(vv)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, vv := range x {
			l[i] = deepCopy(vv)
		}
		return l
	}
	return v
}
