package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// The rule index finds, for one item, the rules of a ruleset that may
// match it, as Drools hashes the equality tests of its alpha network: a
// ruleset of 10,000 rules `event.alertname == "A<i>"` tests an event
// against the one rule its alertname names, not against all of them.
//
// At load, each condition's top-level && chain (the part Condition.admits
// requires to hold, the whole condition when it reads no match) is searched
// for an indexable test: equality with a constant on a path of the item
// (event.x or fact.x), `in` a list of constants, a comparison with a number,
// or the existence of a path. An item that fails the test cannot meet the
// condition: the conjunct is false or unknown. A || of indexable tests is a
// test too (one of them passes). A rule is a candidate for an item when an
// indexed test of one of its conditions passes, or when one of its
// conditions has no indexable test. Candidates run the full conditions, in
// rule order: the index only prunes, so every semantic of the every-rule
// loop (missing fields, numbers across int and float, first match
// consuming, back-references, facts, throttles) stays as it was.
// Options.NoRuleIndex turns it off, for the differential test.

type testKind uint8

const (
	testEq     testKind = iota // the value equals one of keys
	testRange                  // the value is a number within [lo, hi]
	testExists                 // the path exists
)

// indexTest is one test on a path of the item that a conjunct of a
// condition cannot hold without.
type indexTest struct {
	kind   testKind
	path   []any
	keys   []ikey
	lo, hi float64
	// src is the conjunct the test comes from, for `validate --stats`;
	// node is that conjunct until conditionTests writes src.
	src  string
	node ast.Node
}

// ikey is a value as the index compares it: runtime.Equal holds between
// two values only if their ikeys are equal (numbers of every int and float
// type compare as float64; -0 is 0).
type ikey struct {
	kind uint8 // 1 string, 2 number, 3 bool, 4 null
	s    string
	f    float64
}

// keyOf returns the ikey of v. ok is false for values whose equality with
// a constant the index cannot tell (unsigned integers, which expr compares
// wrapped to int, and any other type): they make every test on their path
// pass.
func keyOf(v any) (k ikey, ok bool) {
	switch x := v.(type) {
	case string:
		return ikey{kind: 1, s: x}, true
	case bool:
		if x {
			return ikey{kind: 3, f: 1}, true
		}
		return ikey{kind: 3}, true
	case nil:
		return ikey{kind: 4}, true
	}
	if f, ok := numberOf(v); ok {
		if f == 0 {
			f = 0 // -0
		}
		return ikey{kind: 2, f: f}, true
	}
	return ikey{}, false
}

// numberOf returns v as a float64 when it is a signed integer or a float:
// a monotonic map, so a < b in expr implies numberOf(a) <= numberOf(b).
// It is toFloat less the unsigned integers, which expr compares wrapped
// to int.
func numberOf(v any) (float64, bool) {
	switch v.(type) {
	case uint, uint64:
		return 0, false
	}
	return toFloat(v)
}

// conditionTests is indexTests for the conjuncts a condition requires,
// with the tests' text written out (only for the tests chosen: printing
// every candidate test cost a large rulebook's load time).
func conditionTests(conj []ast.Node) []indexTest {
	ts := indexTests(conj)
	for i := range ts {
		ts[i].src, ts[i].node = nodeString(ts[i].node), nil
	}
	return ts
}

// indexTests returns the tests one of which an item passes when all of the
// conjuncts hold (nil: none can be told): the best test of one conjunct.
func indexTests(conj []ast.Node) []indexTest {
	var best []indexTest
	for _, n := range conj {
		if t := nodeTests(n); t != nil && (best == nil || testsRank(t) < testsRank(best)) {
			best = t
		}
	}
	return best
}

// testsRank orders alternative test sets: equality prunes most, then
// ranges, then existence; fewer alternatives are better.
func testsRank(ts []indexTest) int {
	worst := 0
	for _, t := range ts {
		worst = max(worst, int(t.kind))
	}
	return worst*1000 + min(len(ts), 999)
}

// nodeTests returns the tests one of which an item passes when n is true
// (n reads no match), or nil.
func nodeTests(n ast.Node) []indexTest {
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "and":
			return indexTests(conjuncts(x, nil))
		case "||", "or":
			l := nodeTests(x.Left)
			r := nodeTests(x.Right)
			if l == nil || r == nil {
				return nil
			}
			return append(slices.Clip(l), r...)
		}
	case *ast.UnaryNode:
		return nil // a negation's operand may be anything
	}
	if t, ok := atomTest(n); ok {
		t.node = n
		return []indexTest{t}
	}
	// Any other atom with constant paths is unknown unless they exist
	// (atomNode.eval).
	paths, ok := staticPaths(n)
	if !ok {
		return nil
	}
	for _, p := range paths {
		if (p.root == "event" || p.root == "fact") && len(p.keys) > 0 {
			return []indexTest{{kind: testExists, path: p.keys, node: n}}
		}
	}
	return nil
}

// atomTest returns the test an atom states directly: PATH == CONST, PATH in
// [CONST...], PATH compared with a number (either way round), defined(PATH).
func atomTest(n ast.Node) (indexTest, bool) {
	switch x := n.(type) {
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || (id.Value != "defined" && id.Value != "is_defined") || len(x.Arguments) != 1 {
			return indexTest{}, false
		}
		if p, ok := itemPath(x.Arguments[0]); ok {
			return indexTest{kind: testExists, path: p.keys}, true
		}
	case *ast.BinaryNode:
		switch x.Operator {
		case "==":
			p, ok := itemPath(x.Left)
			c, cok := constKey(x.Right)
			if !ok || !cok {
				p, ok = itemPath(x.Right)
				c, cok = constKey(x.Left)
			}
			if ok && cok {
				return indexTest{kind: testEq, path: p.keys, keys: []ikey{c}}, true
			}
		case "in":
			p, ok := itemPath(x.Left)
			list, lok := x.Right.(*ast.ArrayNode)
			if !ok || !lok {
				return indexTest{}, false
			}
			t := indexTest{kind: testEq, path: p.keys}
			for _, e := range list.Nodes {
				c, ok := constKey(e)
				if !ok {
					return indexTest{}, false
				}
				t.keys = append(t.keys, c)
			}
			return t, true
		case "<", "<=", ">", ">=":
			op := x.Operator
			p, ok := itemPath(x.Left)
			c, cok := constNumber(x.Right)
			if !ok || !cok {
				p, ok = itemPath(x.Right)
				c, cok = constNumber(x.Left)
				op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
			}
			if !ok || !cok {
				return indexTest{}, false
			}
			// Bounds are inclusive whatever the operator: a strict one
			// may not survive the conversion of large integers to float64.
			t := indexTest{kind: testRange, path: p.keys, lo: math.Inf(-1), hi: math.Inf(1)}
			if op == ">" || op == ">=" {
				t.lo = c
			} else {
				t.hi = c
			}
			return t, true
		}
	}
	return indexTest{}, false
}

// itemPath returns the path n reads when it is a constant path under
// event or fact (the item), at least one key deep.
func itemPath(n ast.Node) (fieldPath, bool) {
	if _, ok := n.(*ast.MemberNode); !ok {
		return fieldPath{}, false
	}
	p, ok := constPath(n)
	if !ok || (p.root != "event" && p.root != "fact") || len(p.keys) == 0 {
		return fieldPath{}, false
	}
	return p, true
}

// constKey returns the key of a string, number or bool literal.
func constKey(n ast.Node) (ikey, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return ikey{kind: 1, s: x.Value}, true
	case *ast.BoolNode:
		return keyOf(x.Value)
	}
	if f, ok := constNumber(n); ok {
		return keyOf(f)
	}
	return ikey{}, false
}

// constNumber returns the value of a number literal (negated or not).
func constNumber(n ast.Node) (float64, bool) {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return float64(x.Value), true
	case *ast.FloatNode:
		return x.Value, true
	case *ast.UnaryNode:
		if x.Operator == "-" {
			f, ok := constNumber(x.Node)
			return -f, ok
		}
		if x.Operator == "+" {
			return constNumber(x.Node)
		}
	}
	return 0, false
}

// IndexedTests describes, for each condition of r, the tests the rule
// index selects it by (one of them must pass), each as the conjunct it
// comes from; an empty entry means the condition is tested against every
// item, and then so is the rule.
func (r *Rule) IndexedTests() [][]string {
	out := make([][]string, len(r.Conditions))
	for i, c := range r.Conditions {
		for _, t := range c.index {
			out[i] = append(out[i], t.src)
		}
	}
	return out
}

// ruleSelector selects the candidate rules of one ruleset (by position in
// rsState.rules) for an item.
type ruleSelector struct {
	paths []*pathIndex
	// always are the rules with a condition the index cannot tell;
	// isAlways[i] says whether rule i is one.
	always   []int
	isAlways []bool
	// mark[i] == epoch: rule i is a candidate for the item at hand.
	mark  []uint32
	epoch uint32
	hits  []int
	out   []*ruleState
}

// pathIndex holds the tests on one path of the item.
type pathIndex struct {
	path []any
	eq   map[ikey][]int
	// lows (tests value >= bound) and highs (value <= bound), by bound.
	lows, highs []bound
	exists      []int
	// all are the rules with a test on this path: candidates for a
	// value keyOf cannot tell.
	all []int
	// neq counts the keys of the equality tests (newRuleIndex).
	neq int
}

type bound struct {
	at   float64
	rule int
}

func newRuleIndex(rules []*Rule) *ruleSelector {
	x := &ruleSelector{mark: make([]uint32, len(rules)), isAlways: make([]bool, len(rules))}
	// First the path of every test, then the maps, made at their size
	// with their lists cut from one array: for 10,000 rules, growing
	// the maps and a list per key was most of an engine's build.
	type filed struct {
		p  *pathIndex
		t  *indexTest
		ri int
	}
	var tests []filed
	byPath := map[string]*pathIndex{}
	var key []byte
	var last *pathIndex // most rules test the path the one before did
	eqKeys := 0
	for ri, r := range rules {
		told := true
		for _, c := range r.Conditions {
			if len(c.index) == 0 {
				told = false
				break
			}
		}
		if !told {
			x.always = append(x.always, ri)
			x.isAlways[ri] = true
			continue
		}
		for _, c := range r.Conditions {
			for i := range c.index {
				t := &c.index[i]
				p := last
				if p == nil || !samePath(p.path, t.path) {
					key = appendPathKey(key[:0], t.path)
					p = byPath[string(key)] // no string made to look up
					if p == nil {
						p = &pathIndex{path: t.path}
						byPath[string(key)] = p
						x.paths = append(x.paths, p)
					}
					last = p
				}
				if t.kind == testEq {
					p.neq += len(t.keys)
					eqKeys += len(t.keys)
				}
				tests = append(tests, filed{p, t, ri})
			}
		}
	}
	if len(x.paths) == 0 {
		return nil // nothing to select by: the plain loop
	}
	for _, p := range x.paths {
		p.eq = make(map[ikey][]int, p.neq)
	}
	// A key's first rule takes a slot of arena (capacity 1): most keys
	// name one rule; a second one appends as before.
	arena := make([]int, eqKeys)
	for _, f := range tests {
		p, t, ri := f.p, f.t, f.ri
		p.all = append(p.all, ri)
		switch t.kind {
		case testEq:
			for _, k := range t.keys {
				if l, ok := p.eq[k]; ok {
					p.eq[k] = append(l, ri)
					continue
				}
				arena[0] = ri
				p.eq[k], arena = arena[:1:1], arena[1:]
			}
		case testExists:
			p.exists = append(p.exists, ri)
		case testRange:
			if !math.IsInf(t.lo, -1) {
				p.lows = append(p.lows, bound{t.lo, ri})
			} else {
				p.highs = append(p.highs, bound{t.hi, ri})
			}
		}
	}
	for _, p := range x.paths {
		byAt := func(a, b bound) int {
			if a.at < b.at {
				return -1
			}
			if a.at > b.at {
				return 1
			}
			return 0
		}
		slices.SortStableFunc(p.lows, byAt)
		slices.SortStableFunc(p.highs, byAt)
	}
	return x
}

// samePath reports whether two paths of tests are the same path (the
// same key in newRuleIndex's map).
func samePath(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch x := a[i].(type) {
		case string:
			if y, ok := b[i].(string); !ok || x != y {
				return false
			}
		case int:
			if y, ok := b[i].(int); !ok || x != y {
				return false
			}
		default:
			return false // appendPathKey's map decides
		}
	}
	return true
}

// appendPathKey appends the key of a path in newRuleIndex's map.
func appendPathKey(b []byte, keys []any) []byte {
	for _, k := range keys {
		switch v := k.(type) {
		case string:
			b = append(b, 's')
			b = append(b, v...)
		case int:
			b = append(b, 'i')
			b = strconv.AppendInt(b, int64(v), 10)
		}
		b = append(b, 0)
	}
	return b
}

// candidates returns the rules of s that may match it, in rule order: all
// of them when s has no index or the engine runs without one. The slice
// is reused by the next call.
func (e *Engine) candidates(s *rsState, it *item) []*ruleState {
	x := s.index
	if x == nil || e.opts.NoRuleIndex {
		return s.rules
	}
	x.epoch++
	if x.epoch == 0 {
		clear(x.mark)
		x.epoch = 1
	}
	hits := x.hits[:0]
	addOne := func(ri int) {
		if x.mark[ri] != x.epoch {
			x.mark[ri] = x.epoch
			hits = append(hits, ri)
		}
	}
	add := func(rules []int) {
		for _, ri := range rules {
			addOne(ri)
		}
	}
	for _, p := range x.paths {
		v, found := lookup(it.data, p.path)
		if !found {
			continue // every test needs the path
		}
		k, keyed := keyOf(v)
		if !keyed {
			add(p.all)
			continue
		}
		add(p.eq[k])
		add(p.exists)
		if f, ok := numberOf(v); ok {
			// lows: bound <= f, a prefix; highs: bound >= f, a suffix.
			n, _ := slices.BinarySearchFunc(p.lows, f, func(b bound, f float64) int {
				if b.at <= f {
					return -1
				}
				return 1
			})
			for _, b := range p.lows[:n] {
				addOne(b.rule)
			}
			m, _ := slices.BinarySearchFunc(p.highs, f, func(b bound, f float64) int {
				if b.at < f {
					return -1
				}
				return 1
			})
			for _, b := range p.highs[m:] {
				addOne(b.rule)
			}
		}
	}
	x.hits = hits
	out := x.out[:0]
	if len(hits) > len(x.mark)/8 {
		// Most rules are candidates: one pass in rule order costs less
		// than sorting them.
		for ri, m := range x.mark {
			if m == x.epoch || x.isAlways[ri] {
				out = append(out, s.rules[ri])
			}
		}
		x.out = out
		return out
	}
	slices.Sort(hits)
	// Merge with the rules always tested, both in rule order.
	a, b := hits, x.always
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || (len(a) > 0 && a[0] < b[0]) {
			out = append(out, s.rules[a[0]])
			a = a[1:]
		} else {
			out = append(out, s.rules[b[0]])
			b = b[1:]
		}
	}
	x.out = out
	return out
}

// cmpNode is an atom `PATH op CONST` (or `CONST op PATH`) with op one of
// == != < <= > >=, PATH a constant path of string keys under event or
// fact and CONST a string, number or bool literal. It evaluates as the
// compiled expr program would (the path must exist, then the vm's own
// runtime.Equal, Less, ... on the value and the constant) without a
// program: a large rulebook loads faster and holds less.
type cmpNode struct {
	path      fieldPath
	op        string
	c         any
	constLeft bool
}

func (n cmpNode) eval(e *evalState) (t Tri) {
	v, ok := lookup(e.env.root(n.path.root), n.path.keys)
	if !ok {
		return Unknown
	}
	a, b := v, n.c
	if n.constLeft {
		a, b = b, a
	}
	defer func() {
		if r := recover(); r != nil {
			// A type mismatch (a string compared with a number) panics
			// in runtime as it does in the vm: unknown, and a debug line.
			if e.onError != nil {
				e.onError(fmt.Errorf("%v", r))
			}
			t = Unknown
		}
	}()
	var res bool
	switch n.op {
	case "==":
		res = runtime.Equal(a, b)
	case "!=":
		res = !runtime.Equal(a, b)
	case "<":
		res = runtime.Less(a, b)
	case "<=":
		res = runtime.LessOrEqual(a, b)
	case ">":
		res = runtime.More(a, b)
	case ">=":
		res = runtime.MoreOrEqual(a, b)
	}
	if res {
		return True
	}
	return False
}

// nativeCompare returns the cmpNode for n when n is such a comparison.
func nativeCompare(n ast.Node) (condNode, bool) {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return nil, false
	}
	switch b.Operator {
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return nil, false
	}
	path := func(n ast.Node) (fieldPath, bool) {
		p, ok := itemPath(n)
		if !ok {
			return fieldPath{}, false
		}
		for _, k := range p.keys {
			if _, ok := k.(string); !ok {
				return fieldPath{}, false
			}
		}
		return p, true
	}
	literal := func(n ast.Node) (any, bool) {
		if u, ok := n.(*ast.UnaryNode); ok && u.Operator == "-" {
			switch x := u.Node.(type) {
			case *ast.IntegerNode:
				return -x.Value, true
			case *ast.FloatNode:
				return -x.Value, true
			}
			return nil, false
		}
		switch x := n.(type) {
		case *ast.StringNode:
			return x.Value, true
		case *ast.IntegerNode:
			return x.Value, true
		case *ast.FloatNode:
			return x.Value, true
		case *ast.BoolNode:
			return x.Value, b.Operator == "==" || b.Operator == "!="
		}
		return nil, false
	}
	if p, ok := path(b.Left); ok {
		if c, ok := literal(b.Right); ok {
			return cmpNode{path: p, op: b.Operator, c: c}, true
		}
	}
	if p, ok := path(b.Right); ok {
		if c, ok := literal(b.Left); ok {
			return cmpNode{path: p, op: b.Operator, c: c, constLeft: true}, true
		}
	}
	return nil, false
}
