package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// TestNodeStringAsExpr: nodeString prints every node of many conditions
// as expr's String does.
func TestNodeStringAsExpr(t *testing.T) {
	atoms := []string{`event.host`, `event["a b"]`, `event.a.b["c"][0]`, `event?.a`, `event.a?.["b c"]`, `fact.x`,
		`event.list[1]`, `"h1"`, `"q\"uote\\ \u00e9 \n é"`, `'single'`, `42`, `-7`, `0x1F`, `1e3`, `2.5`, `true`, `false`,
		`nil`, `vars.limit`, `now()`, `len(event.list)`, `[1, "a"]`, `{"k": 1}`, `(event.a ?? 1)`, `(event.a ? 1 : 2)`,
		`1..3`, `not event.ok`, `!event.ok`, `-event.n`, `filter(event.list, # > 1)`, `map(event.list, .name)`,
		`event.a + event.b * 2`, `(event.a + event.b) * 2`, `event.s matches "^a"`, `event.s contains "x"`}
	ops := []string{"==", "!=", "<", "<=", ">", ">=", "in", "&&", "||", "and", "or", "+", "-", "*", "/", "%", "**", "??", "contains", "startsWith"}
	rnd := rand.New(rand.NewPCG(3, 4))
	var srcs []string
	for _, a := range atoms {
		srcs = append(srcs, a)
		for _, op := range ops {
			srcs = append(srcs, a+" "+op+" "+atoms[rnd.IntN(len(atoms))])
		}
	}
	for range 2000 {
		var b strings.Builder
		b.WriteString(atoms[rnd.IntN(len(atoms))])
		for range rnd.IntN(4) {
			fmt.Fprintf(&b, " %s %s", ops[rnd.IntN(len(ops))], atoms[rnd.IntN(len(atoms))])
		}
		srcs = append(srcs, b.String())
	}
	cfg := (&Compiler{}).config()
	checked, fast := 0, 0
	for _, src := range srcs {
		tree, err := parser.ParseWithConfig(src, cfg)
		if err != nil {
			continue
		}
		ast.Walk(&tree.Node, visitor(func(n ast.Node) {
			checked++
			if _, ok := appendNode(nil, n); ok {
				fast++
			}
			if got, want := nodeString(n), n.String(); got != want {
				t.Fatalf("%s: node %T printed %q, want %q", src, n, got, want)
			}
		}))
	}
	if checked < 10000 || fast < checked/3 {
		t.Fatalf("%d nodes checked, %d printed without String", checked, fast)
	}
}
