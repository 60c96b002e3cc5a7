package engine

import "fmt"

// Bounds on what the expression parser is given. expr's parser recurses
// once per nested bracket, so a condition of a million "(" overflows the
// stack and kills the process (a fatal error, not a panic): validate
// crashes, and a reload of such a file would end the running engine. Both
// bounds are checked on the text, before parsing.
const (
	// MaxExprSize bounds a condition, and a template string (a string
	// with "{{ ... }}"), in bytes. Literal strings are not bounded.
	MaxExprSize = 64 << 10
	// MaxNesting bounds how deeply brackets ((), [], {}) nest in one
	// expression.
	MaxNesting = 200
)

// checkTextSize returns an error when s is larger than MaxExprSize.
func checkTextSize(s string) error {
	if len(s) > MaxExprSize {
		return fmt.Errorf("too long: %d bytes; the limit is %d (64 KiB)", len(s), MaxExprSize)
	}
	return nil
}

// exprNesting scans src as expr's lexer would for strings ("...", '...'
// with backslash escapes, `...` raw) and brackets. When brackets nest deeper
// than MaxNesting it stops at the first bracket too deep and returns its
// byte offset; otherwise at is -1.
func exprNesting(src string) (depth, at int) {
	var quote byte
	cur := 0
	for i := 0; i < len(src); i++ {
		ch := src[i]
		if quote != 0 {
			switch {
			case ch == '\\' && quote != '`':
				i++
			case ch == quote:
				quote = 0
			}
			continue
		}
		switch ch {
		case '"', '\'', '`':
			quote = ch
		case '(', '[', '{':
			cur++
			if cur > depth {
				depth = cur
			}
			if cur > MaxNesting {
				return depth, i
			}
		case ')', ']', '}':
			if cur > 0 {
				cur--
			}
		}
	}
	return depth, -1
}

// lineCol turns a byte offset in src into a 1-based line and column.
func lineCol(src string, at int) (line, col int) {
	line, start := 1, 0
	for i := 0; i < at && i < len(src); i++ {
		if src[i] == '\n' {
			line, start = line+1, i+1
		}
	}
	return line, at - start + 1
}

// CheckExprBounds checks an expression's size and nesting before it is
// parsed (CompileCondition does); errors are *ExprError with the position
// of the problem. Code that compiles other expressions with expr (a
// source's settings) should call it first.
func CheckExprBounds(src string) error {
	if err := checkTextSize(src); err != nil {
		return &ExprError{Line: 1, Column: 1, Msg: err.Error()}
	}
	if _, at := exprNesting(src); at >= 0 {
		line, col := lineCol(src, at)
		return &ExprError{Line: line, Column: col, Msg: fmt.Sprintf("brackets nest deeper than %d levels", MaxNesting)}
	}
	return nil
}
