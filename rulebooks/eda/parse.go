package eda

import (
	"strings"
)

type node interface{ at() int }

type litNode struct {
	pos  int
	kind string // "string", "number", "bool", "null"
	text string // string: the value; others: the literal as expr writes it
}

type pathNode struct {
	pos  int
	root string
	keys []pathKey
	bare bool // written without a root: a variable
}

type listNode struct {
	pos   int
	items []node
}

type binNode struct {
	pos  int
	op   string // == != < > <= >= + - * / in "not in" contains "not contains" and or
	l, r node
}

type notNode struct {
	pos int
	x   node
}

type negNode struct {
	pos int
	x   node
}

// isNode is `x is [not] test(args)`.
type isNode struct {
	pos  int
	neg  bool
	x    node
	test string // defined, match, search, regex, select, selectattr
	args []node
	opts map[string]node
	// optPos are the offsets of the option names, for errors.
	optPos map[string]int
}

func (n *litNode) at() int  { return n.pos }
func (n *pathNode) at() int { return n.pos }
func (n *listNode) at() int { return n.pos }
func (n *binNode) at() int  { return n.pos }
func (n *notNode) at() int  { return n.pos }
func (n *negNode) at() int  { return n.pos }
func (n *isNode) at() int   { return n.pos }

type parser struct {
	toks  []token
	i     int
	depth int
}

// maxDepth bounds nesting (parentheses, lists, not and minus chains), so
// a hostile condition is an error, not a stack overflow.
const maxDepth = 200

// enter counts one level of nesting at t; leave undoes it.
func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return errAt(t.pos, "expression nests deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekN(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == s
}

func (p *parser) isWord(s string) bool {
	t := p.peek()
	return t.kind == tWord && t.text == s
}

func isWordFold(t token, s string) bool { return t.kind == tWord && strings.EqualFold(t.text, s) }

func (p *parser) expectOp(s string) (token, error) {
	t := p.next()
	if t.kind != tOp || t.text != s {
		return t, errAt(t.pos, "want %q, got %s", s, describe(t))
	}
	return t, nil
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of the condition"
	case tString:
		return "a string"
	case tNumber:
		return "number " + t.text
	}
	return `"` + t.text + `"`
}

// parsed is a condition split into its optional match name and body.
type parsed struct {
	name    string // events.NAME / facts.NAME <<
	nameRaw string // the assigned path as written
	body    node
}

func parse(src string) (*parsed, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	out := &parsed{}
	if t := p.peek(); (t.kind == tPath || t.kind == tWord) && p.peekN(1).kind == tOp && p.peekN(1).text == "<<" {
		p.next()
		p.next()
		out.nameRaw = src[t.pos:t.end]
		if t.kind != tPath || len(t.keys) != 1 || t.keys[0].isIdx {
			return nil, errAt(t.pos, "the assignment %q is invalid: write events.NAME << or facts.NAME <<", out.nameRaw)
		}
		switch t.text {
		case "events", "facts":
			out.name = t.keys[0].name
		case "event", "fact":
			// ansible-rulebook ignores the name of a single condition's
			// match; the loader rejects it in multi-event rules.
			out.name = ""
		default:
			return nil, errAt(t.pos, "only events and facts can be used in an assignment, not %q", out.nameRaw)
		}
	}
	body, err := p.parseBool()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		if t.kind == tOp && t.text == "<<" {
			return nil, errAt(t.pos, "an assignment (<<) goes at the start: events.NAME << condition")
		}
		return nil, errAt(t.pos, "unexpected %s", describe(t))
	}
	out.body = body
	return out, nil
}

func (p *parser) parseBool() (node, error) {
	if err := p.enter(p.peek()); err != nil {
		return nil, err
	}
	defer p.leave()
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") || p.isWord("or") {
		t := p.next()
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &binNode{pos: t.pos, op: t.text, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseNot() (node, error) {
	if p.isWord("not") {
		t := p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &notNode{pos: t.pos, x: x}, nil
	}
	return p.parseIn()
}

func (p *parser) parseIn() (node, error) {
	l, err := p.parseIs()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		op := ""
		switch {
		case isWordFold(t, "in"), isWordFold(t, "contains"):
			op = strings.ToLower(t.text)
			p.next()
		case isWordFold(t, "not") && (isWordFold(p.peekN(1), "in") || isWordFold(p.peekN(1), "contains")):
			p.next()
			op = "not " + strings.ToLower(p.next().text)
		default:
			return l, nil
		}
		r, err := p.parseIs()
		if err != nil {
			return nil, err
		}
		l = &binNode{pos: t.pos, op: op, l: l, r: r}
	}
}

func (p *parser) parseIs() (node, error) {
	l, err := p.parseCmp(0)
	if err != nil {
		return nil, err
	}
	for p.isWord("is") {
		t := p.next()
		n := &isNode{pos: t.pos, x: l}
		if p.isWord("not") {
			p.next()
			n.neg = true
		}
		tt := p.next()
		if tt.kind != tWord {
			return nil, errAt(tt.pos, "want a test after %q (defined, match, search, regex, select, selectattr), got %s", "is", describe(tt))
		}
		n.test = tt.text
		switch tt.text {
		case "defined":
			if _, ok := l.(*pathNode); !ok {
				return nil, errAt(l.at(), "is defined applies to a name like event.x")
			}
		case "match", "search", "regex", "select", "selectattr":
			if err := p.parseArgs(n); err != nil {
				return nil, err
			}
		default:
			return nil, errAt(tt.pos, "unknown test %q (want defined, match, search, regex, select or selectattr)", tt.text)
		}
		l = n
	}
	return l, nil
}

func (p *parser) parseArgs(n *isNode) error {
	if _, err := p.expectOp("("); err != nil {
		return err
	}
	if p.isOp(")") {
		p.next()
		return nil
	}
	for {
		t := p.peek()
		if t.kind == tWord && p.peekN(1).kind == tOp && p.peekN(1).text == "=" {
			p.next()
			p.next()
			v, err := p.parsePrimary()
			if err != nil {
				return err
			}
			if n.opts == nil {
				n.opts, n.optPos = map[string]node{}, map[string]int{}
			}
			n.opts[t.text] = v
			n.optPos[t.text] = t.pos
		} else {
			if len(n.opts) > 0 {
				return errAt(t.pos, "a positional argument cannot follow a keyword argument")
			}
			v, err := p.parseCmp(0)
			if err != nil {
				return err
			}
			n.args = append(n.args, v)
		}
		if p.isOp(",") {
			p.next()
			continue
		}
		_, err := p.expectOp(")")
		return err
	}
}

// The comparison and arithmetic levels, loosest first, as ansible-rulebook
// orders them.
var cmpLevels = [][]string{{"=="}, {"!="}, {"<", ">"}, {"<="}, {">="}, {"+", "-"}, {"*", "/"}}

func (p *parser) parseCmp(level int) (node, error) {
	if level == len(cmpLevels) {
		return p.parseUnary()
	}
	l, err := p.parseCmp(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOp || !contains(cmpLevels[level], t.text) {
			return l, nil
		}
		p.next()
		r, err := p.parseCmp(level + 1)
		if err != nil {
			return nil, err
		}
		l = &binNode{pos: t.pos, op: t.text, l: l, r: r}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) parseUnary() (node, error) {
	if p.isOp("-") {
		t := p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if lit, ok := x.(*litNode); ok && lit.kind == "number" {
			return &litNode{pos: t.pos, kind: "number", text: "-" + lit.text}, nil
		}
		return &negNode{pos: t.pos, x: x}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (node, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return &litNode{pos: t.pos, kind: "string", text: t.text}, nil
	case tNumber:
		return &litNode{pos: t.pos, kind: "number", text: t.text}, nil
	case tPath:
		return p.pathOf(t), nil
	case tWord:
		switch t.text {
		case "true", "True":
			return &litNode{pos: t.pos, kind: "bool", text: "true"}, nil
		case "false", "False":
			return &litNode{pos: t.pos, kind: "bool", text: "false"}, nil
		case "null":
			return &litNode{pos: t.pos, kind: "null", text: "nil"}, nil
		case "and", "or", "not", "is", "in", "contains":
			return nil, errAt(t.pos, "unexpected %q", t.text)
		}
		return p.pathOf(t), nil
	case tOp:
		switch t.text {
		case "(":
			x, err := p.parseBool()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return x, nil
		case "[":
			if err := p.enter(t); err != nil {
				return nil, err
			}
			defer p.leave()
			l := &listNode{pos: t.pos}
			if p.isOp("]") {
				p.next()
				return l, nil
			}
			for {
				x, err := p.parseCmp(0)
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, x)
				if p.isOp(",") {
					p.next()
					continue
				}
				if _, err := p.expectOp("]"); err != nil {
					return nil, err
				}
				return l, nil
			}
		}
	}
	return nil, errAt(t.pos, "unexpected %s", describe(t))
}

func (p *parser) pathOf(t token) node {
	switch t.text {
	case "event", "events", "fact", "facts", "vars":
		return &pathNode{pos: t.pos, root: t.text, keys: t.keys}
	}
	return &pathNode{pos: t.pos, root: t.text, keys: t.keys, bare: true}
}
