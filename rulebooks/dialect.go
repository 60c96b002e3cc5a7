package rulebooks

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks/eda"
)

// A rulebook is read in Event-Driven Ansible's condition language when it
// is written in it: one of its conditions uses a word only EDA has (an
// `is` test, True, False, null) and parses as EDA, or a source is named
// with EDA's `eda.builtin.` prefix, or a throttle has group_by_attributes.
// Then every condition is EDA's (`a or b and c` groups left to right, `not
// a == b` negates the comparison), and a condition EDA cannot read but
// expr can (`&&`, expr functions) is read as expr. Otherwise conditions
// are expr, and one expr cannot read but EDA can (a bare variable name) is
// read as EDA. Either way the engine sees expr: eda.Translate turns an EDA
// condition into it.

// edaDialect reports whether the rulebook under root is written for EDA.
func edaDialect(root *yaml.Node) bool {
	found := false
	var conds []*yaml.Node
	walkRules(root, func(rs, rule *yaml.Node) {
		if found {
			return
		}
		if rule == nil {
			if src := mapValue(rs, "sources"); src != nil && src.Kind == yaml.SequenceNode {
				for _, s := range src.Content {
					if s.Kind != yaml.MappingNode {
						continue
					}
					for i := 0; i+1 < len(s.Content); i += 2 {
						if strings.HasPrefix(s.Content[i].Value, "eda.builtin.") {
							found = true
						}
					}
				}
			}
			return
		}
		if th := mapValue(rule, "throttle"); th != nil && mapValue(th, "group_by_attributes") != nil {
			found = true
		}
		conds = appendConditionNodes(conds[:0], mapValue(rule, "condition"))
		for _, c := range conds {
			// An oversized condition is an error whichever the dialect
			// (compileCond reports it); don't scan it here.
			if engine.CheckExprBounds(c.Value) == nil && eda.Looks(c.Value) && eda.Parses(c.Value) {
				found = true
			}
		}
	})
	return found
}

// walkRules calls f(ruleset, nil) for each ruleset mapping, then f(ruleset,
// rule) for each of its rule mappings.
func walkRules(root *yaml.Node, f func(rs, rule *yaml.Node)) {
	if root == nil || root.Kind != yaml.SequenceNode {
		return
	}
	for _, rs := range root.Content {
		if rs.Kind != yaml.MappingNode {
			continue
		}
		f(rs, nil)
		rules := mapValue(rs, "rules")
		if rules == nil || rules.Kind != yaml.SequenceNode {
			continue
		}
		for _, r := range rules.Content {
			if r.Kind == yaml.MappingNode {
				f(rs, r)
			}
		}
	}
}

// appendConditionNodes appends the condition strings of a rule's
// condition to out: the scalar itself, or the items of all/any/not_all.
// The walks over every rule reuse one slice.
func appendConditionNodes(out []*yaml.Node, n *yaml.Node) []*yaml.Node {
	if n == nil {
		return out
	}
	if n.Kind == yaml.ScalarNode {
		return append(out, n)
	}
	for _, k := range [...]string{"all", "any", "not_all"} {
		if l := mapValue(n, k); l != nil && l.Kind == yaml.SequenceNode {
			for _, c := range l.Content {
				if c.Kind == yaml.ScalarNode {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// compileCond compiles the condition at n, in the rulebook's dialect first
// and in the other when that fails, and maps errors to file positions.
// where is "condition" or the all/any/not_all item it is one of.
func (l *loader) compileCond(n *yaml.Node, where string, comp *engine.Compiler) (*engine.Condition, string) {
	src := n.Value
	multi := where != "condition"
	if engine.CheckExprBounds(src) != nil {
		// Bounded before either parser sees it (a huge or deeply nested
		// condition overflowed expr's parser, and scanning it for EDA's
		// forms took seconds): the native compiler refuses it first
		// thing, with the position of the problem.
		_, name, offset, err := l.compileNative(n, comp)
		line, col := exprPos(n, err, offset)
		l.errAt(line, col, where, err.Error())
		return nil, name
	}
	if !l.eda {
		c, name, offset, err := l.compileNative(n, comp)
		if err == nil {
			return c, name
		}
		if !eda.Looks(src) {
			// compileEDA parses src itself and fails when EDA cannot
			// read it, so no eda.Parses check before it.
			if ec, ename, eerr := l.compileEDA(n, src, comp, multi); eerr == nil {
				return ec, ename
			}
			line, col := exprPos(n, err, offset)
			l.errAt(line, col, where, err.Error())
			return nil, name
		}
	}
	c, name, err := l.compileEDA(n, src, comp, multi)
	if err == nil {
		return c, name
	}
	if !eda.Parses(src) {
		// Not EDA's grammar: maybe expr's (&&, functions).
		if nc, nname, _, nerr := l.compileNative(n, comp); nerr == nil {
			return nc, nname
		}
	}
	var pe *posError
	if errors.As(err, &pe) {
		l.errAt(pe.line, pe.col, where, pe.msg)
	} else {
		l.errf(n, where, "%v", err)
	}
	return nil, name
}

// compileNative compiles the condition at n as expr, or takes its compile
// by precompile, once (two rules never share a *engine.Condition).
func (l *loader) compileNative(n *yaml.Node, comp *engine.Compiler) (*engine.Condition, string, int, error) {
	name, cond, offset := engine.SplitAssignment(n.Value)
	if i, ok := l.pre[n]; ok {
		delete(l.pre, n)
		c, err := l.batch.Get(i)
		return c, name, offset, err
	}
	c, err := comp.CompileCondition(cond)
	return c, name, offset, err
}

// noPrecompile turns precompile off, for the test that compares.
var noPrecompile bool

// precompile starts compiling, as expr, every condition of a ruleset's
// rules (engine.StartConditions: on the other CPUs, while the rules are
// checked one by one); compileCond then takes each result instead of
// compiling it, so what is reported, and in which order, is unchanged.
// Only a rulebook read as expr: an EDA one translates first.
// stopPrecompile must be called once the rules are checked.
func (l *loader) precompile(rules *yaml.Node, comp *engine.Compiler) {
	if l.eda || noPrecompile {
		return
	}
	var nodes []*yaml.Node
	var srcs []string
	var conds []*yaml.Node
	for _, rn := range rules.Content {
		conds = appendConditionNodes(conds[:0], mapValue(rn, "condition"))
		for _, cn := range conds {
			if engine.CheckExprBounds(cn.Value) != nil {
				continue // compileCond reports it without compiling
			}
			_, cond, _ := engine.SplitAssignment(cn.Value)
			nodes = append(nodes, cn)
			srcs = append(srcs, cond)
		}
	}
	l.batch = comp.StartConditions(srcs)
	l.pre = make(map[*yaml.Node]int, len(nodes))
	for i, n := range nodes {
		l.pre[n] = i
	}
}

// stopPrecompile ends precompile's batch, if any, and forgets it.
func (l *loader) stopPrecompile() {
	if l.batch != nil {
		l.batch.Stop()
	}
	l.batch, l.pre = nil, nil
}

// posError is an error at a file position.
type posError struct {
	line, col int
	msg       string
}

func (e *posError) Error() string { return e.msg }

// compileEDA translates an EDA condition and compiles the translation.
func (l *loader) compileEDA(n *yaml.Node, src string, comp *engine.Compiler, multi bool) (*engine.Condition, string, error) {
	at := func(offset int, msg string) error {
		line, col := exprPos(n, offsetPos(src, offset), 0)
		return &posError{line: line, col: col, msg: msg}
	}
	translate := eda.TranslateSingle
	if multi {
		translate = eda.Translate
	}
	t, err := translate(src, comp.Vars)
	if err != nil {
		var ee *eda.Error
		if errors.As(err, &ee) {
			return nil, "", at(ee.Offset, ee.Msg)
		}
		return nil, "", err
	}
	if t.Assigned != "" && t.Name == "" && multi {
		return nil, "", at(0, "assignment "+t.Assigned+" is invalid: a match is named events.NAME or facts.NAME")
	}
	c, err := comp.CompileCondition(t.Expr)
	if err == nil {
		if l.native == nil {
			l.native = map[*yaml.Node]string{}
		}
		l.native[n] = t.Native()
	}
	if err != nil {
		var xe *engine.ExprError
		if errors.As(err, &xe) && xe.Line == 1 {
			return nil, "", at(t.SourceOffset(xe.Column), xe.Msg)
		}
		return nil, "", at(0, err.Error())
	}
	return c, t.Name, nil
}

// offsetPos turns a byte offset of src into a 1-based line and column,
// as the expr compiler reports them.
func offsetPos(src string, offset int) *engine.ExprError {
	if offset > len(src) {
		offset = len(src)
	}
	line := 1 + strings.Count(src[:offset], "\n")
	col := offset - strings.LastIndex(src[:offset], "\n")
	return &engine.ExprError{Line: line, Column: col}
}

// jinjaArgs rewrites the Jinja2 expressions of an EDA rulebook's action
// arguments into native templates (eda.Template), in place. A string EDA's
// translation cannot read but the native template language can stays as
// it is; one neither reads is an error at its position.
func (l *loader) jinjaArgs(argsNode *yaml.Node, v any, where string, path []string, comp *engine.Compiler) any {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{{") && !strings.Contains(x, "{%") {
			return x
		}
		out, err := eda.Template(x)
		if err == nil {
			if l.native == nil {
				l.native = map[*yaml.Node]string{}
			}
			if n := nodeAt(argsNode, path); n != nil && n.Kind == yaml.ScalarNode && n.Value == x {
				l.native[n] = out
			}
			return out
		}
		if _, nerr := comp.CompileTemplate(x); nerr == nil {
			return x
		}
		n := nodeAt(argsNode, path)
		line, col := n.Line, n.Column
		var ee *eda.Error
		if errors.As(err, &ee) && n.Kind == yaml.ScalarNode && !strings.Contains(n.Value[:min(ee.Offset, len(n.Value))], "\n") {
			col += ee.Offset
			if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
				col++
			}
		}
		w := where
		if len(path) > 0 {
			w += ": " + strings.Join(path, ".")
		}
		l.errAt(line, col, w, err.Error())
		return x
	case map[string]any:
		for k, vv := range x {
			x[k] = l.jinjaArgs(argsNode, vv, where, append(path[:len(path):len(path)], k), comp)
		}
	case []any:
		for i, vv := range x {
			x[i] = l.jinjaArgs(argsNode, vv, where, append(path[:len(path):len(path)], strconv.Itoa(i)), comp)
		}
	}
	return v
}

// edaFallbackArgs rewrites, in a rulebook read as native, each template of
// v that the native language cannot compile because it names a variable
// bare (`{{ my_var }}`, as EDA's Jinja2 does) but EDA's translation can,
// into its native form (`{{ vars.my_var }}`). Any other string stays, to be
// reported as it is (Jinja filters keep their native-mode hint).
func edaFallbackArgs(v any, comp *engine.Compiler) any {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{{") {
			return x
		}
		_, err := comp.CompileTemplate(x)
		if err == nil {
			return x
		}
		m := unknownName.FindStringSubmatch(err.Error())
		if m == nil {
			return x
		}
		if _, isVar := comp.Vars[m[1]]; !isVar {
			return x
		}
		out, err := eda.Template(x)
		if err != nil {
			return x
		}
		if _, err := comp.CompileTemplate(out); err != nil {
			return x
		}
		return out
	case map[string]any:
		for k, vv := range x {
			x[k] = edaFallbackArgs(vv, comp)
		}
	case []any:
		for i, vv := range x {
			x[i] = edaFallbackArgs(vv, comp)
		}
	}
	return v
}

// unknownName finds the name in expr's "unknown name X" error.
var unknownName = regexp.MustCompile(`unknown name ([A-Za-z_][A-Za-z0-9_]*)`)
