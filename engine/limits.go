package engine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

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

// CheckTemplateBounds checks every template string in v (action arguments
// as decoded from YAML) against MaxExprSize and MaxNesting, as
// CompileTemplate does, without parsing anything. The loader calls it
// before an action's Check and Warn, which may split or parse templates
// themselves. The error is a *TemplateError at the first string over a
// bound (map keys in sorted order).
func CheckTemplateBounds(v any) error {
	return templateBounds(v, nil)
}

func templateBounds(v any, path []string) error {
	switch x := v.(type) {
	case string:
		return templateStringBounds(x, path)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := templateBounds(x[k], append(path[:len(path):len(path)], k)); err != nil {
				return err
			}
		}
	case []any:
		for i, item := range x {
			if err := templateBounds(item, append(path[:len(path):len(path)], strconv.Itoa(i))); err != nil {
				return err
			}
		}
	}
	return nil
}

// templateStringBounds checks one string: its size when it holds a
// template, and the nesting of each "{{ ... }}" in it.
func templateStringBounds(s string, path []string) error {
	if !strings.Contains(s, "{{") {
		return nil
	}
	if err := checkTextSize(s); err != nil {
		return &TemplateError{Path: path, Column: 1, Err: fmt.Errorf("template %w", err)}
	}
	rest, offset := s, 0
	for {
		lit, src, after, _, closed := cutTemplate(rest)
		if !closed {
			return nil // no template left, or unclosed: CompileTemplate reports it
		}
		if _, at := exprNesting(src); at >= 0 {
			return &TemplateError{Path: path, Column: offset + len(lit) + 2 + at + 1, Err: fmt.Errorf("template: brackets nest deeper than %d levels", MaxNesting)}
		}
		offset += len(rest) - len(after)
		rest = after
	}
}
