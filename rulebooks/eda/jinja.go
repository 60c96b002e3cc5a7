package eda

import (
	"strconv"
	"strings"
)

// Template turns the Jinja2 expressions of an action argument written for
// ansible-rulebook ("{{ event.host | upper }}") into native template
// expressions ("{{ upper(event.host) }}"). An expression that is already
// valid in both (a plain path such as event.x) comes out unchanged. It
// covers the filters, tests and string methods EDA rulebooks use:
// filters upper, lower, capitalize, trim, length/count, string, int,
// float, abs, round, default/d, first, last, join, replace, unique, sort,
// regex_replace, basename, dirname, normpath, to_json, from_json; `is
// [not] defined`; `~`; `x if c else y`; the methods upper(), lower(),
// strip(), startswith(), endswith(), replace() and split(). Anything else
// is an *Error at its offset in s, so a rulebook never renders a template
// differently from EDA without saying so. Statements ({% %}) are not
// supported.
func Template(s string) (string, error) {
	if strings.Contains(s, "{%") {
		return "", errAt(strings.Index(s, "{%"), "jinja statements ({%% ... %%}) are not supported in action arguments; use an expression {{ ... }}")
	}
	var b strings.Builder
	rest, off := s, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return "", errAt(off+i, "template has no closing }}")
		}
		b.WriteString(rest[:i])
		src := rest[i+2 : i+2+j]
		out, err := jinjaExpr(src)
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Offset += off + i + 2
			}
			return "", err
		}
		b.WriteString("{{ " + out + " }}")
		off += i + 2 + j + 2
		rest = rest[i+2+j+2:]
	}
}

func jinjaExpr(src string) (string, error) {
	toks, err := lex(src)
	if err != nil {
		return "", err
	}
	p := &jparser{parser{toks: toks}}
	out, _, err := p.ifExpr()
	if err != nil {
		return "", err
	}
	if t := p.peek(); t.kind != tEOF {
		return "", errAt(t.pos, "unexpected %s in template", describe(t))
	}
	return out, nil
}

type jparser struct{ parser }

func paren(s string, prec, min int) string {
	if prec < min {
		return "(" + s + ")"
	}
	return s
}

func (p *jparser) ifExpr() (string, int, error) {
	if err := p.enter(p.peek()); err != nil {
		return "", 0, err
	}
	defer p.leave()
	x, xp, err := p.orExpr()
	if err != nil {
		return "", 0, err
	}
	if !p.isWord("if") {
		return x, xp, nil
	}
	p.next()
	c, cp, err := p.orExpr()
	if err != nil {
		return "", 0, err
	}
	y := "nil"
	yp := precPrimary
	if p.isWord("else") {
		p.next()
		if y, yp, err = p.ifExpr(); err != nil {
			return "", 0, err
		}
	}
	return paren(c, cp, precOr+1) + " ? " + paren(x, xp, precOr+1) + " : " + paren(y, yp, precOr+1), 5, nil
}

func (p *jparser) orExpr() (string, int, error) {
	return p.boolLevel("or", precOr, p.andExpr)
}

func (p *jparser) andExpr() (string, int, error) {
	return p.boolLevel("and", precAnd, p.notExpr)
}

func (p *jparser) boolLevel(op string, prec int, next func() (string, int, error)) (string, int, error) {
	l, lp, err := next()
	if err != nil {
		return "", 0, err
	}
	for p.isWord(op) {
		p.next()
		r, rp, err := next()
		if err != nil {
			return "", 0, err
		}
		l, lp = paren(l, lp, prec)+" "+op+" "+paren(r, rp, prec+1), prec
	}
	return l, lp, nil
}

func (p *jparser) notExpr() (string, int, error) {
	if p.isWord("not") {
		if err := p.enter(p.next()); err != nil {
			return "", 0, err
		}
		defer p.leave()
		x, xp, err := p.notExpr()
		if err != nil {
			return "", 0, err
		}
		return "not " + paren(x, xp, precNot+1), precNot, nil
	}
	return p.cmpExpr()
}

func (p *jparser) cmpExpr() (string, int, error) {
	l, lp, err := p.concat()
	if err != nil {
		return "", 0, err
	}
	for {
		t := p.peek()
		op := ""
		switch {
		case t.kind == tOp && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">="):
			op = t.text
			p.next()
		case t.kind == tWord && t.text == "in":
			op = "in"
			p.next()
		case t.kind == tWord && t.text == "not" && p.peekN(1).kind == tWord && p.peekN(1).text == "in":
			p.next()
			p.next()
			op = "not in"
		case t.kind == tWord && t.text == "is":
			p.next()
			neg := false
			if p.isWord("not") {
				p.next()
				neg = true
			}
			tt := p.next()
			switch {
			case tt.kind == tWord && tt.text == "defined":
				l = "defined(" + l + ")"
			case tt.kind == tWord && tt.text == "undefined":
				l, neg = "defined("+l+")", !neg
			case tt.kind == tWord && tt.text == "none":
				l = paren(l, lp, precCmp+1) + " == nil"
			default:
				return "", 0, errAt(tt.pos, "unsupported test %s in template (defined, undefined, none)", describe(tt))
			}
			if neg {
				l, lp = "not ("+l+")", precNot
			} else {
				lp = precCmp
				if strings.HasPrefix(l, "defined(") {
					lp = precPrimary
				}
			}
			continue
		default:
			return l, lp, nil
		}
		r, rp, err := p.concat()
		if err != nil {
			return "", 0, err
		}
		l, lp = paren(l, lp, precCmp+1)+" "+op+" "+paren(r, rp, precCmp+1), precCmp
	}
}

func (p *jparser) concat() (string, int, error) {
	l, lp, err := p.arith(0)
	if err != nil {
		return "", 0, err
	}
	if !p.isOp("~") {
		return l, lp, nil
	}
	parts := []string{"string(" + l + ")"}
	for p.isOp("~") {
		p.next()
		r, _, err := p.arith(0)
		if err != nil {
			return "", 0, err
		}
		parts = append(parts, "string("+r+")")
	}
	return strings.Join(parts, " + "), precAdd, nil
}

var jArith = [][]string{{"+", "-"}, {"*", "/", "//", "%"}}

func (p *jparser) arith(level int) (string, int, error) {
	if level == len(jArith) {
		return p.unary()
	}
	prec := precAdd
	if level == 1 {
		prec = precMul
	}
	l, lp, err := p.arith(level + 1)
	if err != nil {
		return "", 0, err
	}
	for {
		t := p.peek()
		if t.kind != tOp || !contains(jArith[level], t.text) {
			return l, lp, nil
		}
		p.next()
		r, rp, err := p.arith(level + 1)
		if err != nil {
			return "", 0, err
		}
		if t.text == "//" {
			l, lp = "int("+paren(l, lp, prec)+" / "+paren(r, rp, prec+1)+")", precPrimary
			continue
		}
		l, lp = paren(l, lp, prec)+" "+t.text+" "+paren(r, rp, prec+1), prec
	}
}

func (p *jparser) unary() (string, int, error) {
	if p.isOp("-") {
		if err := p.enter(p.next()); err != nil {
			return "", 0, err
		}
		defer p.leave()
		x, xp, err := p.unary()
		if err != nil {
			return "", 0, err
		}
		return "-" + paren(x, xp, precNeg+1), precNeg, nil
	}
	x, xp, err := p.filtered()
	if err != nil {
		return "", 0, err
	}
	if p.isOp("**") {
		if err := p.enter(p.next()); err != nil {
			return "", 0, err
		}
		defer p.leave()
		y, yp, err := p.unary()
		if err != nil {
			return "", 0, err
		}
		return paren(x, xp, 101) + " ** " + paren(y, yp, 100), 100, nil
	}
	return x, xp, nil
}

func (p *jparser) args() ([]string, error) {
	if _, err := p.expectOp("("); err != nil {
		return nil, err
	}
	var out []string
	for !p.isOp(")") {
		if t := p.peek(); t.kind == tWord && p.peekN(1).kind == tOp && p.peekN(1).text == "=" {
			return nil, errAt(t.pos, "keyword arguments are not supported in templates")
		}
		a, _, err := p.ifExpr()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		if p.isOp(",") {
			p.next()
			continue
		}
		if !p.isOp(")") {
			t := p.peek()
			return nil, errAt(t.pos, "want %q or %q, got %s", ",", ")", describe(t))
		}
	}
	p.next()
	return out, nil
}

// filters maps a Jinja filter to expr: %s is the value, then the
// arguments; n is the number of arguments it takes.
var filters = map[string]struct {
	n    []int
	tmpl func(x string, a []string) string
}{
	"upper":         {[]int{0}, call("upper")},
	"lower":         {[]int{0}, call("lower")},
	"capitalize":    {[]int{0}, call("__capitalize")},
	"trim":          {[]int{0}, call("trim")},
	"length":        {[]int{0}, call("len")},
	"count":         {[]int{0}, call("len")},
	"string":        {[]int{0}, call("string")},
	"int":           {[]int{0}, call("int")},
	"float":         {[]int{0}, call("float")},
	"abs":           {[]int{0}, call("abs")},
	"round":         {[]int{0}, call("round")},
	"first":         {[]int{0}, call("first")},
	"last":          {[]int{0}, call("last")},
	"unique":        {[]int{0}, call("uniq")},
	"sort":          {[]int{0}, call("sort")},
	"basename":      {[]int{0}, call("basename")},
	"dirname":       {[]int{0}, call("dirname")},
	"normpath":      {[]int{0}, call("normpath")},
	"to_json":       {[]int{0}, call("__to_json")},
	"from_json":     {[]int{0}, call("fromJSON")},
	"default":       {[]int{1}, func(x string, a []string) string { return "(" + x + " ?? " + a[0] + ")" }},
	"d":             {[]int{1}, func(x string, a []string) string { return "(" + x + " ?? " + a[0] + ")" }},
	"join":          {[]int{0, 1}, joinFilter},
	"replace":       {[]int{2}, func(x string, a []string) string { return "replace(string(" + x + "), " + a[0] + ", " + a[1] + ")" }},
	"regex_replace": {[]int{2}, call("regex_replace")},
}

// call is the translation that calls fn with the value, then the
// arguments: fn(x, a...).
func call(fn string) func(x string, a []string) string {
	return func(x string, a []string) string {
		return fn + "(" + strings.Join(append([]string{x}, a...), ", ") + ")"
	}
}

func joinFilter(x string, a []string) string {
	sep := `""`
	if len(a) > 0 {
		sep = a[0]
	}
	return "join(map(" + x + ", string(#)), " + sep + ")"
}

var methods = map[string]struct {
	n    int
	tmpl func(x string, a []string) string
}{
	"upper":      {0, call("upper")},
	"lower":      {0, call("lower")},
	"strip":      {0, call("trim")},
	"startswith": {1, call("hasPrefix")},
	"endswith":   {1, call("hasSuffix")},
	"replace":    {2, call("replace")},
	"split":      {1, call("split")},
}

func (p *jparser) filtered() (string, int, error) {
	x, xp, err := p.postfix()
	if err != nil {
		return "", 0, err
	}
	for p.isOp("|") {
		p.next()
		t := p.next()
		if t.kind != tWord {
			return "", 0, errAt(t.pos, "want a filter name after |, got %s", describe(t))
		}
		f, ok := filters[t.text]
		if !ok {
			return "", 0, errAt(t.pos, "unsupported filter %q in template", t.text)
		}
		var a []string
		if p.isOp("(") {
			if a, err = p.args(); err != nil {
				return "", 0, err
			}
		}
		okN := false
		for _, n := range f.n {
			okN = okN || n == len(a)
		}
		if !okN {
			return "", 0, errAt(t.pos, "filter %s takes %v arguments, got %d", t.text, f.n, len(a))
		}
		x, xp = f.tmpl(x, a), precPrimary
		if t.text == "default" || t.text == "d" {
			xp = precPrimary
		}
	}
	return x, xp, nil
}

func (p *jparser) postfix() (string, int, error) {
	t := p.peek()
	var x string
	xp := precPrimary
	switch t.kind {
	case tPath, tWord:
		p.next()
		keys := t.keys
		root := t.text
		if t.kind == tWord {
			switch t.text {
			case "True", "true":
				return "true", precPrimary, nil
			case "False", "false":
				return "false", precPrimary, nil
			case "None", "none":
				return "nil", precPrimary, nil
			}
		}
		// A trailing key followed by ( is a method call.
		var method string
		if len(keys) > 0 && !keys[len(keys)-1].isIdx && p.isOp("(") {
			method = keys[len(keys)-1].name
			keys = keys[:len(keys)-1]
		}
		switch root {
		case "event", "events", "fact", "facts", "vars":
			x = root + keysText(keys)
		default:
			// Variables are top-level names in EDA's templates.
			x = "vars" + keysText(append([]pathKey{{name: root}}, keys...))
		}
		if method != "" {
			m, ok := methods[method]
			if !ok {
				return "", 0, errAt(t.pos, "unsupported method %q in template", method)
			}
			a, err := p.args()
			if err != nil {
				return "", 0, err
			}
			if len(a) != m.n {
				return "", 0, errAt(t.pos, "method %s takes %d arguments, got %d", method, m.n, len(a))
			}
			x = m.tmpl(x, a)
		}
	case tString:
		p.next()
		x = strconv.Quote(t.text)
	case tNumber:
		p.next()
		x = t.text
	case tOp:
		switch t.text {
		case "(":
			p.next()
			inner, ip, err := p.ifExpr()
			if err != nil {
				return "", 0, err
			}
			if _, err := p.expectOp(")"); err != nil {
				return "", 0, err
			}
			x, xp = paren(inner, ip, precPrimary), precPrimary
		case "[":
			p.next()
			var items []string
			for !p.isOp("]") {
				it, _, err := p.ifExpr()
				if err != nil {
					return "", 0, err
				}
				items = append(items, it)
				if p.isOp(",") {
					p.next()
				} else if !p.isOp("]") {
					u := p.peek()
					return "", 0, errAt(u.pos, "want %q or %q, got %s", ",", "]", describe(u))
				}
			}
			p.next()
			x = "[" + strings.Join(items, ", ") + "]"
		case "{":
			p.next()
			var items []string
			for !p.isOp("}") {
				k, _, err := p.ifExpr()
				if err != nil {
					return "", 0, err
				}
				if _, err := p.expectOp(":"); err != nil {
					return "", 0, err
				}
				v, _, err := p.ifExpr()
				if err != nil {
					return "", 0, err
				}
				items = append(items, k+": "+v)
				if p.isOp(",") {
					p.next()
				} else if !p.isOp("}") {
					u := p.peek()
					return "", 0, errAt(u.pos, "want %q or %q, got %s", ",", "}", describe(u))
				}
			}
			p.next()
			x = "{" + strings.Join(items, ", ") + "}"
		default:
			return "", 0, errAt(t.pos, "unexpected %s in template", describe(t))
		}
	default:
		return "", 0, errAt(t.pos, "unexpected %s in template", describe(t))
	}
	// Subscripts after a parenthesis, list or call: x[0], x.y.
	for {
		switch {
		case p.isOp("["):
			p.next()
			idx, _, err := p.ifExpr()
			if err != nil {
				return "", 0, err
			}
			if _, err := p.expectOp("]"); err != nil {
				return "", 0, err
			}
			x, xp = paren(x, xp, precPrimary)+"["+idx+"]", precPrimary
		default:
			return x, xp, nil
		}
	}
}
