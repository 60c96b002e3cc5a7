package engine

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Conditions follow Event-Driven Ansible's treatment of missing data, which
// keeps remediation from firing on incomplete events: any comparison,
// membership test, regex or function over a field the event lacks is
// "unknown", and unknown is not a match; its negation is unknown too. Only the
// presence checks (defined, is_defined, is_not_defined) look at absence.
//
// The evaluator gets this by three-valued (Kleene) logic: a condition is
// parsed once, its boolean skeleton (&&, ||, not) is kept as a tree, and
// every other maximal sub-expression (an "atom") is compiled as its own expr
// program. Member chains rooted at event, events, fact, facts and vars are
// rewritten into __get calls that fail with errMissing when a key is absent;
// an atom that fails that way is unknown. An explicit null is a value.

// Tri is a three-valued truth value.
type Tri uint8

const (
	False Tri = iota
	True
	Unknown
)

func (t Tri) String() string {
	switch t {
	case False:
		return "false"
	case True:
		return "true"
	}
	return "unknown"
}

// The names a condition can read.
var rootNames = map[string]bool{"event": true, "events": true, "fact": true, "facts": true, "vars": true}

var errMissing = errors.New("field is not defined")

// Condition is a compiled, type-checked condition.
type Condition struct {
	// Source is the expression as written.
	Source string
	root   condNode
	// unbound says the condition reads no match (events.*, facts.*): for
	// one item its value is the same whichever partial match the item
	// would join. Otherwise alpha are the conjuncts of its top-level &&
	// chain that read no match: the condition holds only if they all do,
	// so the engine tests them once per item, not once per partial match.
	unbound bool
	alpha   []condNode
	// join, when set, is a conjunct `event.x == events.name.y` (either
	// way round, fact/facts alike) of the top-level && chain: an item can
	// meet the condition only in a partial match whose match name has the
	// item's value at that path, so the engine finds those partials by
	// value (joinIndex) instead of testing every one.
	join *joinSpec
	// reads are the match names the condition reads (events.NAME,
	// facts.NAME with a constant NAME); readsAny says it reads matches in
	// a way no name can be told (events[x], events alone, $env): it may
	// read any match.
	reads    []string
	readsAny bool
	// negatedFact, when set, is the path of fact.PATH in a condition that
	// is only `not defined(fact.PATH)` (EDA's `fact.PATH is not defined`):
	// it turns true when the last fact carrying PATH is retracted.
	negatedFact []any
	// index are the tests one of which an item passes whenever the
	// condition admits it (admits): the rule index (index.go) selects
	// the rule for an item by them. Empty: it cannot tell.
	index []indexTest
}

// joinSpec is an equality between a path of the item and a path of a
// named match.
type joinSpec struct {
	item  []any  // keys into the item
	match string // the match name
	path  []any  // keys into that match
}

type condNode interface {
	eval(e *evalState) Tri
}

type andNode struct{ l, r condNode }
type orNode struct{ l, r condNode }
type notNode struct{ n condNode }
type atomNode struct {
	prog *vm.Program
	// paths, when set, are the constant field paths the atom reads: it is
	// unknown unless all exist, and the program reads them natively. When
	// nil, the program was rewritten to presence-aware __get calls.
	paths []fieldPath
}

type fieldPath struct {
	root string
	keys []any
}

// and3, or3 and not3 are Kleene's three-valued and, or and not: the one
// definition of the logic that condNode.eval and Explain (explainNode)
// both combine their operands with.
func and3(l, r Tri) Tri {
	switch {
	case l == False || r == False:
		return False
	case l == True && r == True:
		return True
	}
	return Unknown
}

func or3(l, r Tri) Tri {
	switch {
	case l == True || r == True:
		return True
	case l == False && r == False:
		return False
	}
	return Unknown
}

func not3(t Tri) Tri {
	switch t {
	case True:
		return False
	case False:
		return True
	}
	return Unknown
}

func (n andNode) eval(e *evalState) Tri {
	l := n.l.eval(e)
	if l == False {
		return False
	}
	return and3(l, n.r.eval(e))
}

func (n orNode) eval(e *evalState) Tri {
	l := n.l.eval(e)
	if l == True {
		return True
	}
	return or3(l, n.r.eval(e))
}

func (n notNode) eval(e *evalState) Tri { return not3(n.n.eval(e)) }

func (n atomNode) eval(e *evalState) Tri {
	for _, p := range n.paths {
		if _, ok := lookup(e.env.root(p.root), p.keys); !ok {
			return Unknown
		}
	}
	out, err := e.vm.Run(n.prog, e.env)
	if err != nil {
		if !errors.Is(err, errMissing) && e.onError != nil {
			e.onError(err)
		}
		return Unknown
	}
	if b, ok := out.(bool); ok {
		if b {
			return True
		}
		return False
	}
	return Unknown
}

// Env is what conditions and templates read. event and fact are the same
// item (as in Event-Driven Ansible), events and facts the matches so far.
type Env struct {
	Event  map[string]any `expr:"event"`
	Fact   map[string]any `expr:"fact"`
	Events map[string]any `expr:"events"`
	Facts  map[string]any `expr:"facts"`
	Vars   map[string]any `expr:"vars"`
}

// root returns the value of one of the root names.
func (e *Env) root(name string) any {
	switch name {
	case "event":
		return e.Event
	case "fact":
		return e.Fact
	case "events":
		return e.Events
	case "facts":
		return e.Facts
	case "vars":
		return e.Vars
	}
	return nil
}

// evalState is what one evaluation needs; the engine keeps one and reuses it
// (evaluation is single-threaded per engine).
type evalState struct {
	vm      vm.VM
	env     *Env
	onError func(error)
}

func newEvalState(onError func(error)) *evalState {
	return &evalState{env: &Env{}, onError: onError}
}

// bind sets the names conditions and templates read.
func (e *evalState) bind(event map[string]any, events map[string]any, vars map[string]any) {
	e.env.Event = event
	e.env.Fact = event
	e.env.Events = events
	e.env.Facts = events
	e.env.Vars = vars
}

// Eval evaluates the condition against one item and the matches so far.
func (c *Condition) eval(e *evalState) Tri { return c.root.eval(e) }

// admits reports whether the item bound in e may meet the condition with
// some matches: the whole condition holds when it reads no match, else
// every conjunct that reads no match holds. When it is false the condition
// is false or unknown whatever the matches.
func (c *Condition) admits(e *evalState) bool {
	if c.unbound {
		return c.root.eval(e) == True
	}
	for _, n := range c.alpha {
		if n.eval(e) != True {
			return false
		}
	}
	return true
}

// Compiler compiles conditions, templates and other expressions of one
// rulebook load. Its clock drives now() and age().
type Compiler struct {
	Clock Clock
	// Vars are the ruleset's variables, used to type-check `vars.x`.
	Vars map[string]any
	// cfg is the expr configuration, built at the first compile (Clock
	// must be set by then) rather than for every expression: that was
	// half the load time of a large rulebook. Checking writes expr's
	// type cache in it (NtCache), so a Compiler compiles on one goroutine
	// at a time; StartConditions gives its helpers a cfg each.
	cfg *conf.Config
	// noNative compiles every atom as an expr program, for the test that
	// compares them with cmpNode.
	noNative bool
}

// ExprError is a compile error inside an expression, with the 1-based line
// and column inside the expression text.
type ExprError struct {
	Line, Column int
	Msg          string
}

func (e *ExprError) Error() string { return e.Msg }

func exprError(err error, src file.Source) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line == 0 {
			fe = fe.Bind(src)
		}
		return &ExprError{Line: fe.Line, Column: fe.Column + 1, Msg: fe.Message}
	}
	return err
}

func (c *Compiler) config() *conf.Config {
	if c.cfg == nil {
		c.cfg = c.newConfig()
	}
	return c.cfg
}

func (c *Compiler) newConfig() *conf.Config {
	cfg := conf.CreateNew()
	opts := []expr.Option{expr.Env(Env{}), expr.DisableBuiltin("now")}
	opts = append(opts, c.functions()...)
	for _, op := range opts {
		op(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.Check()
	return cfg
}

func (c *Compiler) varsOrEmpty() map[string]any {
	if c.Vars == nil {
		return map[string]any{}
	}
	return c.Vars
}

// assignment is EDA's `events.name << condition` that names a match.
var assignment = regexp.MustCompile(`^\s*(?:events|facts)\.([A-Za-z_][A-Za-z0-9_]*)\s*<<\s*`)

// SplitAssignment separates an EDA match name (`events.first << cond`) from
// the condition. offset is the number of bytes removed from the front.
func SplitAssignment(src string) (name, cond string, offset int) {
	if !strings.Contains(src, "<<") {
		return "", src, 0 // most conditions: no regexp run
	}
	m := assignment.FindStringSubmatchIndex(src)
	if m == nil {
		return "", src, 0
	}
	return src[m[2]:m[3]], src[m[1]:], m[1]
}

// CompileCondition parses, rewrites, type-checks and compiles a condition.
// Errors are *ExprError when they have a position.
func (c *Compiler) CompileCondition(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("condition is empty")
	}
	if err := CheckExprBounds(src); err != nil {
		return nil, err
	}
	cfg := c.config()
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, exprError(err, file.NewSource(src))
	}
	// What only reads the tree comes first: skeleton rewrites it.
	cond := &Condition{Source: src}
	cond.reads, cond.readsAny = matchNames(tree.Node)
	cond.negatedFact = negatedFactOf(tree.Node)
	if !readsMatches(tree.Node) {
		// Every conjunct reads no match (what splitAlpha would find,
		// without a parse of its own).
		cond.unbound = true
		cond.index = conditionTests(conjuncts(tree.Node, nil))
	}
	root, err := c.skeleton(tree.Node, tree.Source, cfg)
	if err != nil {
		return nil, err
	}
	cond.root = root
	if !cond.unbound {
		c.splitAlpha(cond, src, cfg)
	}
	return cond, nil
}

// matchNames returns the names of the matches n reads (events.NAME,
// facts.NAME), and any when it may read others too.
func matchNames(n ast.Node) (names []string, anyName bool) {
	var named map[*ast.IdentifierNode]bool // made at the first named match: most conditions read none
	ast.Walk(&n, visitor(func(x ast.Node) {
		m, ok := x.(*ast.MemberNode)
		if !ok {
			return
		}
		id, ok := m.Node.(*ast.IdentifierNode)
		if !ok || (id.Value != "events" && id.Value != "facts") {
			return
		}
		if s, ok := m.Property.(*ast.StringNode); ok && !m.Method {
			if named == nil {
				named = map[*ast.IdentifierNode]bool{}
			}
			named[id] = true
			if !slices.Contains(names, s.Value) {
				names = append(names, s.Value)
			}
		}
	}))
	ast.Walk(&n, visitor(func(x ast.Node) {
		if id, ok := x.(*ast.IdentifierNode); ok && !named[id] {
			switch id.Value {
			case "events", "facts", "$env":
				anyName = true
			}
		}
	}))
	return names, anyName
}

// negatedFactOf returns PATH when n is `not defined(fact.PATH)`,
// `!defined(fact.PATH)`, `not is_defined(fact.PATH)` or
// `is_not_defined(fact.PATH)` (PATH constant).
func negatedFactOf(n ast.Node) []any {
	want := "is_not_defined"
	if u, ok := n.(*ast.UnaryNode); ok && (u.Operator == "not" || u.Operator == "!") {
		n, want = u.Node, "defined"
	}
	call, ok := n.(*ast.CallNode)
	if !ok || len(call.Arguments) != 1 {
		return nil
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || !(id.Value == want || (want == "defined" && id.Value == "is_defined")) {
		return nil
	}
	p, ok := constPath(call.Arguments[0])
	if !ok || p.root != "fact" || len(p.keys) == 0 {
		return nil
	}
	return p.keys
}

type visitor func(ast.Node)

func (v visitor) Visit(n *ast.Node) { v(*n) }

// splitAlpha finds the conjuncts of the condition's top-level && chain
// that read no match, and compiles them on their own (Condition.admits),
// and the join among the others. It only speeds evaluation up: when a
// conjunct does not compile on its own, the condition keeps no alpha part
// and every item is tested in full.
func (c *Compiler) splitAlpha(cond *Condition, src string, cfg *conf.Config) {
	// A tree of its own: skeleton rewrites the one it compiles.
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return
	}
	conj := conjuncts(tree.Node, nil)
	var alpha []ast.Node
	for _, n := range conj {
		if !readsMatches(n) {
			alpha = append(alpha, n)
		} else if cond.join == nil {
			cond.join = joinOf(n)
		}
	}
	tests := conditionTests(alpha) // before skeleton rewrites the nodes
	if len(alpha) == len(conj) {
		cond.unbound = true
		cond.index = tests
		return
	}
	var nodes []condNode
	for _, n := range alpha {
		node, err := c.skeleton(n, tree.Source, cfg)
		if err != nil {
			return
		}
		nodes = append(nodes, node)
	}
	cond.alpha = nodes
	cond.index = tests
}

// joinOf returns the join n states when it is `ITEM == MATCH` or
// `MATCH == ITEM`, ITEM a constant path under event or fact and MATCH a
// constant path under events.NAME or facts.NAME.
func joinOf(n ast.Node) *joinSpec {
	b, ok := n.(*ast.BinaryNode)
	if !ok || b.Operator != "==" {
		return nil
	}
	l, lok := constPath(b.Left)
	r, rok := constPath(b.Right)
	if !lok || !rok {
		return nil
	}
	if l.root == "events" || l.root == "facts" {
		l, r = r, l
	}
	if (l.root != "event" && l.root != "fact") || (r.root != "events" && r.root != "facts") || len(r.keys) == 0 {
		return nil
	}
	name, ok := r.keys[0].(string)
	if !ok {
		return nil
	}
	return &joinSpec{item: l.keys, match: name, path: r.keys[1:]}
}

// constPath returns the path n reads when it is a root name or a chain of
// constant keys under one.
func constPath(n ast.Node) (fieldPath, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return fieldPath{root: x.Value}, rootNames[x.Value]
	case *ast.MemberNode:
		var buf [4]ast.Node
		root, keys, ok := appendMemberPath(buf[:0], x)
		if !ok {
			return fieldPath{}, false
		}
		p := fieldPath{root: root, keys: make([]any, 0, len(keys))}
		for _, k := range keys {
			switch kv := k.(type) {
			case *ast.StringNode:
				p.keys = append(p.keys, kv.Value)
			case *ast.IntegerNode:
				p.keys = append(p.keys, kv.Value)
			default:
				return fieldPath{}, false
			}
		}
		return p, true
	}
	return fieldPath{}, false
}

// conjuncts appends the operands of n's top-level && chain (n itself when
// it is not an &&).
func conjuncts(n ast.Node, out []ast.Node) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
		return conjuncts(b.Right, conjuncts(b.Left, out))
	}
	return append(out, n)
}

// readsMatches reports whether n reads events or facts (the matches so
// far), or may through $env.
func readsMatches(n ast.Node) bool {
	v := &matchReader{}
	ast.Walk(&n, v)
	return v.found
}

type matchReader struct{ found bool }

func (v *matchReader) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		switch id.Value {
		case "events", "facts", "$env":
			v.found = true
		}
	}
}

func (c *Compiler) skeleton(n ast.Node, src file.Source, cfg *conf.Config) (condNode, error) {
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "and", "||", "or":
			l, err := c.skeleton(x.Left, src, cfg)
			if err != nil {
				return nil, err
			}
			r, err := c.skeleton(x.Right, src, cfg)
			if err != nil {
				return nil, err
			}
			if x.Operator == "&&" || x.Operator == "and" {
				return andNode{l, r}, nil
			}
			return orNode{l, r}, nil
		}
	case *ast.UnaryNode:
		if x.Operator == "!" || x.Operator == "not" {
			inner, err := c.skeleton(x.Node, src, cfg)
			if err != nil {
				return nil, err
			}
			return notNode{inner}, nil
		}
	}
	if paths, ok := staticPaths(n); ok {
		if !c.noNative {
			if node, ok := nativeCompare(n); ok {
				return node, nil
			}
		}
		rewritePresence(&n)
		prog, err := compileNode(n, src, cfg, true)
		if err != nil {
			return nil, err
		}
		if paths == nil {
			paths = []fieldPath{}
		}
		return atomNode{prog: prog, paths: paths}, nil
	}
	rewrite(&n, false)
	prog, err := compileNode(n, src, cfg, true)
	if err != nil {
		return nil, err
	}
	return atomNode{prog: prog}, nil
}

// staticPaths collects the field paths an atom reads when every one has
// constant keys and nothing in the atom evaluates conditionally (ternaries,
// ??, closures); ok is false otherwise. Paths inside presence checks are not
// required.
func staticPaths(n ast.Node) (paths []fieldPath, ok bool) {
	ok = true
	var visit func(n ast.Node)
	visit = func(n ast.Node) {
		if !ok || n == nil {
			return
		}
		switch x := n.(type) {
		case *ast.ConditionalNode, *ast.PredicateNode, *ast.PointerNode, *ast.VariableDeclaratorNode, *ast.SequenceNode:
			ok = false
			return
		case *ast.BinaryNode:
			if x.Operator == "??" {
				ok = false
				return
			}
		case *ast.CallNode:
			if id, isID := x.Callee.(*ast.IdentifierNode); isID {
				switch id.Value {
				case "defined", "is_defined", "is_not_defined":
					return
				}
			}
		case *ast.BuiltinNode:
			switch x.Name {
			case "all", "none", "any", "one", "filter", "map", "count", "sum", "find", "findIndex", "findLast", "findLastIndex", "groupBy", "sortBy", "reduce":
				ok = false
				return
			}
		case *ast.ChainNode:
			ok = false
			return
		case *ast.MemberNode:
			if _, _, isPath := memberPath(x); isPath {
				p, constant := constPath(x)
				if !constant {
					ok = false
					return
				}
				paths = append(paths, p)
				return
			}
		case *ast.IdentifierNode:
			if rootNames[x.Value] {
				paths = append(paths, fieldPath{root: x.Value})
			}
		}
		walkChildren(n, func(c *ast.Node) { visit(*c) })
	}
	visit(n)
	return paths, ok
}

// rewritePresence rewrites only the presence checks and `contains`, leaving
// member access native (for atoms whose paths are checked up front).
func rewritePresence(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			switch id.Value {
			case "defined", "is_defined", "is_not_defined":
				rewrite(node, false)
				return
			}
		}
	case *ast.BinaryNode:
		rewritePresence(&n.Left)
		rewritePresence(&n.Right)
		if n.Operator == "contains" {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__contains"},
				Arguments: []ast.Node{n.Left, n.Right}})
		}
		return
	}
	walkChildren(*node, func(c *ast.Node) { rewritePresence(c) })
}

func compileNode(n ast.Node, src file.Source, cfg *conf.Config, wantBool bool) (*vm.Program, error) {
	tree := &parser.Tree{Node: n, Source: src}
	t, err := checker.Check(tree, cfg)
	if err != nil {
		return nil, exprError(err, src)
	}
	if wantBool && (neverBool(n) || t != nil && t.Kind() != reflect.Bool && t.Kind() != reflect.Interface) {
		fe := (&file.Error{Location: n.Location()}).Bind(src)
		return nil, &ExprError{Line: fe.Line, Column: fe.Column + 1,
			Msg: fmt.Sprintf("condition must be a boolean, but this part is %s", t)}
	}
	prog, err := compiler.Compile(tree, cfg)
	if err != nil {
		return nil, exprError(err, src)
	}
	return prog, nil
}

// neverBool reports nodes whose value cannot be a boolean whatever the
// event holds: arithmetic, literals, lists and maps.
func neverBool(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "+", "-", "*", "/", "%", "**", "^", "..":
			return true
		}
	case *ast.UnaryNode:
		return x.Operator == "-" || x.Operator == "+"
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.ArrayNode, *ast.MapNode, *ast.NilNode:
		return true
	}
	return false
}

// rewrite turns member chains rooted at the event names into __get/__has
// calls and `contains` into __contains, in place. lenient (inside ??) makes
// a missing path nil instead of unknown.
func rewrite(node *ast.Node, lenient bool) {
	switch n := (*node).(type) {
	case *ast.ChainNode:
		rewrite(&n.Node, lenient)
		if call, ok := n.Node.(*ast.CallNode); ok && isHelper(call, "__get", "__getor") {
			*node = n.Node
		}
		return
	case *ast.MemberNode:
		if root, keys, ok := memberPath(n); ok {
			for i := range keys {
				rewrite(&keys[i], false)
			}
			fn := "__get"
			if lenient {
				fn = "__getor"
			}
			args := append([]ast.Node{&ast.IdentifierNode{Value: root}}, keys...)
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: args})
			return
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			switch id.Value {
			case "defined", "is_defined", "is_not_defined":
				if len(n.Arguments) == 1 {
					if m, ok := n.Arguments[0].(*ast.ChainNode); ok {
						n.Arguments[0] = m.Node
					}
					if m, ok := n.Arguments[0].(*ast.MemberNode); ok {
						if root, keys, ok := memberPath(m); ok {
							for i := range keys {
								rewrite(&keys[i], false)
							}
							args := append([]ast.Node{&ast.IdentifierNode{Value: root}}, keys...)
							var repl ast.Node = &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__has"}, Arguments: args}
							if id.Value == "is_not_defined" {
								repl = &ast.UnaryNode{Operator: "!", Node: repl}
							}
							ast.Patch(node, repl)
							return
						}
					}
					if r, ok := n.Arguments[0].(*ast.IdentifierNode); ok && rootNames[r.Value] {
						var repl ast.Node = &ast.BoolNode{Value: true}
						if id.Value == "is_not_defined" {
							repl = &ast.BoolNode{Value: false}
						}
						ast.Patch(node, repl)
						return
					}
				}
			}
		}
	case *ast.BinaryNode:
		if n.Operator == "??" {
			rewrite(&n.Left, true)
			rewrite(&n.Right, lenient)
			return
		}
		rewrite(&n.Left, lenient)
		rewrite(&n.Right, lenient)
		if n.Operator == "contains" {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__contains"},
				Arguments: []ast.Node{n.Left, n.Right}})
		}
		return
	}
	walkChildren(*node, func(child *ast.Node) { rewrite(child, lenient) })
}

func isHelper(c *ast.CallNode, names ...string) bool {
	id, ok := c.Callee.(*ast.IdentifierNode)
	if !ok {
		return false
	}
	for _, n := range names {
		if id.Value == n {
			return true
		}
	}
	return false
}

// memberPath returns the root name and the key nodes of a chain like
// event.a["b"][0], when its root is one of the event names.
func memberPath(n *ast.MemberNode) (string, []ast.Node, bool) {
	return appendMemberPath(nil, n)
}

// appendMemberPath is memberPath, the keys appended to keys (a caller's
// buffer: most chains are a key or two deep).
func appendMemberPath(keys []ast.Node, n *ast.MemberNode) (string, []ast.Node, bool) {
	var cur ast.Node = n
	for {
		switch x := cur.(type) {
		case *ast.MemberNode:
			if x.Method {
				return "", nil, false
			}
			keys = append(keys, x.Property)
			cur = x.Node
			continue
		case *ast.ChainNode:
			cur = x.Node
			continue
		case *ast.IdentifierNode:
			if !rootNames[x.Value] {
				return "", nil, false
			}
			for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
				keys[i], keys[j] = keys[j], keys[i]
			}
			return x.Value, keys, true
		}
		return "", nil, false
	}
}

func walkChildren(n ast.Node, f func(*ast.Node)) {
	switch x := n.(type) {
	case *ast.UnaryNode:
		f(&x.Node)
	case *ast.BinaryNode:
		f(&x.Left)
		f(&x.Right)
	case *ast.ChainNode:
		f(&x.Node)
	case *ast.MemberNode:
		f(&x.Node)
		f(&x.Property)
	case *ast.SliceNode:
		f(&x.Node)
		if x.From != nil {
			f(&x.From)
		}
		if x.To != nil {
			f(&x.To)
		}
	case *ast.CallNode:
		f(&x.Callee)
		for i := range x.Arguments {
			f(&x.Arguments[i])
		}
	case *ast.BuiltinNode:
		for i := range x.Arguments {
			f(&x.Arguments[i])
		}
	case *ast.PredicateNode:
		f(&x.Node)
	case *ast.ConditionalNode:
		f(&x.Cond)
		f(&x.Exp1)
		f(&x.Exp2)
	case *ast.VariableDeclaratorNode:
		f(&x.Value)
		f(&x.Expr)
	case *ast.SequenceNode:
		for i := range x.Nodes {
			f(&x.Nodes[i])
		}
	case *ast.ArrayNode:
		for i := range x.Nodes {
			f(&x.Nodes[i])
		}
	case *ast.MapNode:
		for i := range x.Pairs {
			f(&x.Pairs[i])
		}
	case *ast.PairNode:
		f(&x.Key)
		f(&x.Value)
	}
}

// lookup walks keys from root. ok is false when a key is absent, an index is
// out of range, or a step is not a container.
func lookup(root any, keys []any) (any, bool) {
	cur := root
	for _, k := range keys {
		switch c := cur.(type) {
		case map[string]any:
			ks, ok := k.(string)
			if !ok {
				return nil, false
			}
			v, ok := c[ks]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, ok := toIndex(k, len(c))
			if !ok {
				return nil, false
			}
			cur = c[i]
		case map[string]string:
			ks, ok := k.(string)
			if !ok {
				return nil, false
			}
			v, ok := c[ks]
			if !ok {
				return nil, false
			}
			cur = v
		case []string:
			i, ok := toIndex(k, len(c))
			if !ok {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func toIndex(k any, n int) (int, bool) {
	var i int
	switch x := k.(type) {
	case int:
		i = x
	case int64:
		i = int(x)
	case float64:
		if x != float64(int(x)) {
			return 0, false
		}
		i = int(x)
	default:
		return 0, false
	}
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		return 0, false
	}
	return i, true
}
