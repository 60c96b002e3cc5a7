package engine

import (
	"strconv"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser/utils"
)

// nodeString is n.String(), expr's printing of a node, written without
// fmt for the shapes indexed tests mostly have (event.host == "h1",
// event.cpu > 90): printing each condition's test through fmt.Sprintf
// was a tenth of compiling it. Other shapes are left to String.
func nodeString(n ast.Node) string {
	if b, ok := appendNode(nil, n); ok {
		return string(b)
	}
	return n.String()
}

// appendNode appends n.String() to b, or reports false when n is not a
// shape it prints as expr does.
func appendNode(b []byte, n ast.Node) ([]byte, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return append(b, x.Value...), true
	case *ast.StringNode:
		return strconv.AppendQuote(b, x.Value), true // %q
	case *ast.IntegerNode:
		return strconv.AppendInt(b, int64(x.Value), 10), true // %d
	case *ast.BoolNode:
		return strconv.AppendBool(b, x.Value), true // %t
	case *ast.NilNode:
		return append(b, "nil"...), true
	case *ast.MemberNode:
		switch x.Node.(type) {
		case *ast.BinaryNode, *ast.PointerNode:
			return b, false // wrapped in parentheses, or printed alone
		}
		if x.Optional {
			return b, false
		}
		var ok bool
		if b, ok = appendNode(b, x.Node); !ok {
			return b, false
		}
		if s, isStr := x.Property.(*ast.StringNode); isStr && utils.IsValidIdentifier(s.Value) {
			b = append(b, '.')
			return append(b, s.Value...), true
		}
		b = append(b, '[')
		if b, ok = appendNode(b, x.Property); !ok {
			return b, false
		}
		return append(b, ']'), true
	case *ast.BinaryNode:
		if x.Operator == ".." {
			return b, false
		}
		for _, side := range [2]ast.Node{x.Left, x.Right} {
			switch side.(type) {
			case *ast.UnaryNode, *ast.BinaryNode, *ast.ConditionalNode:
				return b, false // maybe wrapped in parentheses
			}
		}
		var ok bool
		if b, ok = appendNode(b, x.Left); !ok {
			return b, false
		}
		b = append(b, ' ')
		b = append(b, x.Operator...)
		b = append(b, ' ')
		return appendNode(b, x.Right)
	}
	return b, false
}
