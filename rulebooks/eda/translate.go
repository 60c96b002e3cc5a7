package eda

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Condition is one EDA condition in native form.
type Condition struct {
	// Name is the match name an `events.NAME <<` or `facts.NAME <<`
	// assignment gives, "" when there is none.
	Name string
	// Assigned is the assigned path as written (`events.first`), also when
	// it names no match (`event.first <<`, which ansible-rulebook ignores
	// in a single condition).
	Assigned string
	// Expr is the condition in the native expr language, without the
	// assignment.
	Expr  string
	marks []mark
}

type mark struct{ out, src int }

// Native returns the condition as a native rulebook writes it, the
// assignment included.
func (c *Condition) Native() string {
	if c.Name != "" {
		return c.Assigned + " << " + c.Expr
	}
	return c.Expr
}

// SourceOffset maps a 1-based column of Expr (where the native compiler
// reports a problem) to the byte offset of the EDA text it came from.
func (c *Condition) SourceOffset(col int) int {
	best := 0
	for _, m := range c.marks {
		if m.out <= col-1 {
			best = m.src
		} else {
			break
		}
	}
	return best
}

// Looks reports whether src is written in EDA's language rather than
// expr: it uses a word only EDA has (an `is` test, True, False, null) or
// expr cannot read it at all (the caller decides the latter). Words inside
// strings do not count, but a string holding a Jinja template ("{{ x }}",
// which ansible-rulebook renders with the variables before comparing) does.
func Looks(src string) bool {
	// The words looked for and a string's braces are in src as written:
	// most conditions have none of them, and need no lexing.
	if !strings.Contains(src, "is") && !strings.Contains(src, "True") && !strings.Contains(src, "False") &&
		!strings.Contains(src, "null") && !strings.Contains(src, "{{") {
		return false
	}
	return looksLexed(src)
}

// looksLexed is Looks without the check for the words.
func looksLexed(src string) bool {
	toks, err := lex(src)
	if err != nil {
		return false
	}
	for _, t := range toks {
		if t.kind == tString && strings.Contains(t.text, "{{") && strings.Contains(t.text, "}}") {
			return true
		}
		if t.kind == tWord {
			switch t.text {
			case "is", "True", "False", "null":
				return true
			}
		}
	}
	return false
}

// Parses reports whether src is a condition in EDA's grammar (whether
// its names exist is not checked).
func Parses(src string) bool {
	_, err := parse(src)
	return err == nil
}

// Translate parses an EDA condition and returns its native form. vars are
// the ruleset's variables (with --vars and --env-vars merged in): `vars.x`
// and bare names must exist there, as ansible-rulebook checks at load.
// Errors are *Error with the offset in src.
func Translate(src string, vars map[string]any) (*Condition, error) {
	return translate(src, vars, false)
}

// TranslateSingle is Translate for a rule's only condition (not one of
// all/any/not_all). There ansible-rulebook reads `events.x` as `event.x`
// (both name the one matched event), so it does too, except `events.m`,
// the name of that match.
func TranslateSingle(src string, vars map[string]any) (*Condition, error) {
	return translate(src, vars, true)
}

func translate(src string, vars map[string]any, single bool) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errAt(0, "condition is empty")
	}
	p, err := parse(src)
	if err != nil {
		return nil, err
	}
	t := &translator{vars: vars, single: single}
	f, _, err := t.emit(p.body)
	if err != nil {
		return nil, err
	}
	c := &Condition{Name: p.name, Assigned: p.nameRaw, Expr: f.text.String(), marks: f.marks}
	sort.SliceStable(c.marks, func(i, j int) bool { return c.marks[i].out < c.marks[j].out })
	return c, nil
}

type frag struct {
	text  strings.Builder
	marks []mark
}

func newFrag(src int) *frag { return &frag{marks: []mark{{0, src}}} }

func (f *frag) s(s string) *frag { f.text.WriteString(s); return f }

func (f *frag) add(g *frag) *frag {
	off := f.text.Len()
	for _, m := range g.marks {
		f.marks = append(f.marks, mark{m.out + off, m.src})
	}
	f.text.WriteString(g.text.String())
	return f
}

// addWrapped adds g, in parentheses when its precedence is below min.
func (f *frag) addWrapped(g *frag, prec, min int) *frag {
	if prec < min {
		f.s("(")
		f.add(g)
		return f.s(")")
	}
	return f.add(g)
}

// expr's precedences.
const (
	precOr      = 10
	precAnd     = 15
	precCmp     = 20
	precAdd     = 30
	precMul     = 60
	precNot     = 50
	precNeg     = 90
	precPrimary = 1000
)

var binPrec = map[string]int{
	"or": precOr, "and": precAnd,
	"==": precCmp, "!=": precCmp, "<": precCmp, ">": precCmp, "<=": precCmp, ">=": precCmp,
	"in": precCmp, "not in": precCmp, "contains": precCmp, "not contains": precCmp,
	"+": precAdd, "-": precAdd, "*": precMul, "/": precMul,
}

type translator struct {
	vars   map[string]any
	single bool // the rule's only condition: events.x is event.x
}

func (t *translator) emit(n node) (*frag, int, error) {
	f := newFrag(n.at())
	switch x := n.(type) {
	case *litNode:
		if x.kind == "string" && strings.Contains(x.text, "{{") {
			return t.substitute(x)
		}
		return f.s(t.literal(x)), precPrimary, nil
	case *pathNode:
		s, err := t.path(x)
		if err != nil {
			return nil, 0, err
		}
		return f.s(s), precPrimary, nil
	case *listNode:
		f.s("[")
		for i, it := range x.items {
			if i > 0 {
				f.s(", ")
			}
			g, _, err := t.emit(it)
			if err != nil {
				return nil, 0, err
			}
			f.add(g)
		}
		return f.s("]"), precPrimary, nil
	case *binNode:
		p := binPrec[x.op]
		l, lp, err := t.emit(x.l)
		if err != nil {
			return nil, 0, err
		}
		r, rp, err := t.emit(x.r)
		if err != nil {
			return nil, 0, err
		}
		f.addWrapped(l, lp, p)
		f.s(" " + x.op + " ")
		f.addWrapped(r, rp, p+1)
		return f, p, nil
	case *notNode:
		g, gp, err := t.emit(x.x)
		if err != nil {
			return nil, 0, err
		}
		f.s("not ")
		f.addWrapped(g, gp, precNot+1)
		return f, precNot, nil
	case *negNode:
		g, gp, err := t.emit(x.x)
		if err != nil {
			return nil, 0, err
		}
		f.s("-")
		f.addWrapped(g, gp, precNeg+1)
		return f, precNeg, nil
	case *isNode:
		return t.is(x)
	}
	return nil, 0, errAt(n.at(), "unsupported expression")
}

func (t *translator) literal(x *litNode) string {
	switch x.kind {
	case "string":
		return strconv.Quote(x.text)
	case "number":
		s := x.text
		if strings.HasPrefix(s, ".") {
			s = "0" + s
		} else if strings.HasPrefix(s, "-.") {
			s = "-0" + s[1:]
		}
		return s
	}
	return x.text
}

var exprKeywords = map[string]bool{
	"in": true, "not": true, "and": true, "or": true, "matches": true, "contains": true, "startsWith": true,
	"endsWith": true, "let": true, "nil": true, "true": true, "false": true, "if": true, "else": true,
}

var exprIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func keysText(keys []pathKey) string {
	var b strings.Builder
	for _, k := range keys {
		switch {
		case k.isIdx:
			b.WriteString("[" + strconv.Itoa(k.index) + "]")
		case exprIdent.MatchString(k.name) && !exprKeywords[k.name]:
			b.WriteString("." + k.name)
		default:
			b.WriteString("[" + strconv.Quote(k.name) + "]")
		}
	}
	return b.String()
}

func (t *translator) path(x *pathNode) (string, error) {
	if x.bare {
		keys := append([]pathKey{{name: x.root}}, x.keys...)
		if err := t.checkVar(x.pos, keys, x.root); err != nil {
			return "", err
		}
		return "vars" + keysText(keys), nil
	}
	if x.root == "vars" {
		if len(x.keys) == 0 {
			return "vars", nil
		}
		if err := t.checkVar(x.pos, x.keys, "vars"+keysText(x.keys)); err != nil {
			return "", err
		}
	}
	if t.single && x.root == "events" && len(x.keys) > 0 && !x.keys[0].isIdx && x.keys[0].name != "m" {
		return "event" + keysText(x.keys), nil
	}
	return x.root + keysText(x.keys), nil
}

// checkVar reports a variable the ruleset does not define.
func (t *translator) checkVar(pos int, keys []pathKey, written string) error {
	var cur any = t.vars
	for i, k := range keys {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[k.name]
			if !ok || k.isIdx {
				if i == 0 && written == keys[0].name {
					return errAt(pos, "unknown name %q: a condition reads event, events, fact, facts, vars, or a variable given in vars, --vars or --env-vars", written)
				}
				return errAt(pos, "vars does not contain key %q", pathString(keys[:i+1]))
			}
			cur = v
		case []any:
			if !k.isIdx {
				return errAt(pos, "vars does not contain key %q", pathString(keys[:i+1]))
			}
			idx := k.index
			if idx < 0 {
				idx += len(c)
			}
			if idx < 0 || idx >= len(c) {
				return errAt(pos, "vars does not contain key %q", pathString(keys[:i+1]))
			}
			cur = c[idx]
		default:
			return errAt(pos, "vars does not contain key %q", pathString(keys[:i+1]))
		}
	}
	return nil
}

func pathString(keys []pathKey) string {
	s := keysText(keys)
	return strings.TrimPrefix(s, ".")
}

var selectOps = map[string]bool{"==": true, "!=": true, ">": true, ">=": true, "<": true, "<=": true, "regex": true, "search": true, "match": true}
var selectattrOps = map[string]bool{"in": true, "not in": true, "contains": true, "not contains": true}

func (t *translator) is(x *isNode) (*frag, int, error) {
	f := newFrag(x.pos)
	var subject *frag
	var err error
	if p, ok := x.x.(*pathNode); ok && x.test == "defined" {
		// A presence check reads variables that may be absent.
		root, keys := p.root, p.keys
		if p.bare {
			root, keys = "vars", append([]pathKey{{name: p.root}}, p.keys...)
		}
		subject = newFrag(p.pos).s(root + keysText(keys))
	} else if subject, _, err = t.emit(x.x); err != nil {
		return nil, 0, err
	}
	prec := precPrimary
	if x.neg && x.test != "defined" {
		f.s("not ")
		prec = precNot
	}
	switch x.test {
	case "defined":
		if x.neg {
			f.s("is_not_defined(")
		} else {
			f.s("defined(")
		}
		return f.add(subject).s(")"), prec, nil
	case "match", "search", "regex":
		if len(x.args) != 1 {
			return nil, 0, errAt(x.pos, "%s takes one pattern, got %d arguments", x.test, len(x.args))
		}
		flags := ""
		for _, name := range sortedOpts(x.opts) {
			v := x.opts[name]
			lit, ok := v.(*litNode)
			if !ok || lit.kind != "bool" {
				return nil, 0, errAt(v.at(), "%s: want true or false", name)
			}
			switch name {
			case "ignorecase":
				if lit.text == "true" {
					flags += "i"
				}
			case "multiline":
				if lit.text == "true" {
					flags += "m"
				}
			default:
				return nil, 0, errAt(x.optPos[name], "unknown option %q of %s (want ignorecase, multiline)", name, x.test)
			}
		}
		pat, err := t.pattern(x.args[0], flags)
		if err != nil {
			return nil, 0, err
		}
		fn := "search"
		if x.test == "match" {
			fn = "match"
		}
		return f.s(fn + "(").add(subject).s(", ").add(pat).s(")"), prec, nil
	case "select", "selectattr":
		want := 2
		if x.test == "selectattr" {
			want = 3
		}
		if len(x.args) != want || len(x.opts) > 0 {
			if x.test == "select" {
				return nil, 0, errAt(x.pos, "select takes (operator, value)")
			}
			return nil, 0, errAt(x.pos, "selectattr takes (key, operator, value)")
		}
		args := x.args
		f.s(x.test + "(").add(subject)
		if x.test == "selectattr" {
			key, ok := args[0].(*litNode)
			if !ok || key.kind != "string" || key.text == "" {
				return nil, 0, errAt(args[0].at(), "selectattr: the key must be a string")
			}
			f.s(", " + strconv.Quote(key.text))
			args = args[1:]
		}
		op, ok := args[0].(*litNode)
		if !ok || op.kind != "string" || !(selectOps[op.text] || x.test == "selectattr" && selectattrOps[op.text]) {
			valid := "==, !=, >, >=, <, <=, regex, search, match"
			if x.test == "selectattr" {
				valid += ", in, not in, contains, not contains"
			}
			return nil, 0, errAt(args[0].at(), "%s: the operator must be one of %s", x.test, valid)
		}
		f.s(", " + strconv.Quote(op.text) + ", ")
		var val *frag
		switch op.text {
		case "regex", "search", "match":
			val, err = t.pattern(args[1], "")
		default:
			val, _, err = t.emit(args[1])
		}
		if err != nil {
			return nil, 0, err
		}
		return f.add(val).s(")"), prec, nil
	}
	return nil, 0, errAt(x.pos, "unknown test %q", x.test)
}

func sortedOpts(m map[string]node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pattern emits a regex argument with flags folded in ((?i), (?m)). A
// literal pattern is checked here, so a bad one is an error at load.
func (t *translator) pattern(n node, flags string) (*frag, error) {
	prefix := ""
	if flags != "" {
		prefix = "(?" + flags + ")"
	}
	if lit, ok := n.(*litNode); ok {
		if lit.kind != "string" {
			return nil, errAt(n.at(), "the pattern must be a string")
		}
		if _, err := regexp.Compile(prefix + lit.text); err != nil {
			return nil, errAt(n.at(), "invalid regular expression %q: %v", lit.text, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		return newFrag(n.at()).s(strconv.Quote(prefix + lit.text)), nil
	}
	g, gp, err := t.emit(n)
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		return g, nil
	}
	return newFrag(n.at()).s(strconv.Quote(prefix)+" + ").addWrapped(g, gp, precAdd+1), nil
}

var jinjaVar = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}`)

// substitute handles a string literal holding {{ name }} references, which
// ansible-rulebook fills from the variables at load: a string that is one
// reference is the variable's value (keeping its type), otherwise the text
// with each reference's value in it.
func (t *translator) substitute(x *litNode) (*frag, int, error) {
	locs := jinjaVar.FindAllStringSubmatchIndex(x.text, -1)
	if len(locs) == 0 {
		return nil, 0, errAt(x.pos, "a string in a condition may only hold {{ variable }} references, got %q", x.text)
	}
	ref := func(loc []int) (string, error) {
		var keys []pathKey
		for _, k := range strings.Split(x.text[loc[2]:loc[3]], ".") {
			keys = append(keys, pathKey{name: k})
		}
		if keys[0].name == "vars" && len(keys) > 1 {
			keys = keys[1:]
		}
		if err := t.checkVar(x.pos, keys, pathString(keys)); err != nil {
			return "", err
		}
		return "vars" + keysText(keys), nil
	}
	f := newFrag(x.pos)
	if len(locs) == 1 && locs[0][0] == 0 && locs[0][1] == len(x.text) {
		s, err := ref(locs[0])
		if err != nil {
			return nil, 0, err
		}
		return f.s(s), precPrimary, nil
	}
	prev := 0
	first := true
	part := func(s string) {
		if !first {
			f.s(" + ")
		}
		first = false
		f.s(s)
	}
	for _, loc := range locs {
		if loc[0] > prev {
			part(strconv.Quote(x.text[prev:loc[0]]))
		}
		s, err := ref(loc)
		if err != nil {
			return nil, 0, err
		}
		part("string(" + s + ")")
		prev = loc[1]
	}
	if prev < len(x.text) {
		part(strconv.Quote(x.text[prev:]))
	}
	if strings.Contains(f.text.String(), "{{") {
		return nil, 0, errAt(x.pos, "a string in a condition may only hold {{ variable }} references, got %q", x.text)
	}
	return f, precAdd, nil
}
