// Package eda reads Event-Driven Ansible's condition language and turns
// each condition into the native expr form, so that a rulebook written for
// ansible-rulebook loads unmodified and the engine evaluates one language
// only.
//
// The grammar is ansible-rulebook's (its condition_parser): from the
// tightest binding to the loosest, `* /`, `+ -`, `>=`, `<=`, `< >`, `!=`,
// `==`, `is` / `is not` tests, `in` / `not in` / `contains` / `not
// contains`, unary `not`, then `and` and `or` at one level, left to right
// (`a or b and c` is `(a or b) and c`), and `<<` naming a match. Names are
// paths under event, events, fact, facts and vars (`event.a.b`,
// `event["a-b"]`, `event.list[0]`); a bare name is a variable from the
// ruleset's vars, --vars or --env-vars, and a variable that does not exist
// is an error at load, as in ansible-rulebook.
package eda

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is a problem in a condition at a byte offset of its text.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func errAt(off int, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tPath
	tString
	tNumber
	tOp
)

type token struct {
	kind tokKind
	text string // the word, operator, number text, or the string's value
	pos  int
	end  int
	keys []pathKey // tPath: the keys after the root word
}

type pathKey struct {
	name  string
	index int
	isIdx bool
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		r, size := utf8.DecodeRuneInString(src[i:])
		switch {
		case unicode.IsSpace(r):
			i += size
		case r == '\'' || r == '"':
			end := strings.IndexRune(src[i+1:], r)
			if end < 0 {
				return nil, errAt(i, "unterminated string")
			}
			toks = append(toks, token{kind: tString, text: unescapeWhitespace(src[i+1 : i+1+end]), pos: i, end: i + end + 2})
			i += end + 2
		case r >= '0' && r <= '9' || r == '.' && i+1 < len(src) && isDigit(src[i+1]):
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			if j < len(src) && src[j] == '.' {
				j++
				for j < len(src) && isDigit(src[j]) {
					j++
				}
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				k := j + 1
				if k < len(src) && (src[k] == '+' || src[k] == '-') {
					k++
				}
				if k < len(src) && isDigit(src[k]) {
					for k < len(src) && isDigit(src[k]) {
						k++
					}
					j = k
				}
			}
			toks = append(toks, token{kind: tNumber, text: src[i:j], pos: i, end: j})
			i = j
		case isIdentStart(r):
			t, next, err := lexName(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = next
		default:
			op := ""
			for _, o := range []string{"<<", "<=", ">=", "==", "!=", "**", "//", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", "{", "}", ",", "=", "|", "~", ":"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, errAt(i, "unexpected character %q", r)
			}
			toks = append(toks, token{kind: tOp, text: op, pos: i, end: i + len(op)})
			i += len(op)
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src), end: len(src)}), nil
}

// lexName reads a word and the accessors written right after it (`.b`,
// `["c"]`, `[0]`): a path when there are any.
func lexName(src string, i int) (token, int, error) {
	j := i
	for j < len(src) {
		r, size := utf8.DecodeRuneInString(src[j:])
		if !isIdentPart(r) {
			break
		}
		j += size
	}
	t := token{kind: tWord, text: src[i:j], pos: i}
	for j < len(src) {
		switch src[j] {
		case '.':
			k := j + 1
			r, _ := utf8.DecodeRuneInString(src[k:])
			if k >= len(src) || !isIdentStart(r) {
				return t, j, errAt(j, "a name must follow %q", ".")
			}
			for k < len(src) {
				r, size := utf8.DecodeRuneInString(src[k:])
				if !isIdentPart(r) {
					break
				}
				k += size
			}
			t.keys = append(t.keys, pathKey{name: src[j+1 : k]})
			j = k
			continue
		case '[':
			k := j + 1
			if k < len(src) && (src[k] == '"' || src[k] == '\'') {
				end := strings.IndexByte(src[k+1:], src[k])
				if end < 0 {
					return t, j, errAt(k, "unterminated string")
				}
				name := src[k+1 : k+1+end]
				k += end + 2
				if k >= len(src) || src[k] != ']' {
					return t, j, errAt(k, "want %q after the key", "]")
				}
				t.keys = append(t.keys, pathKey{name: name})
				j = k + 1
				continue
			}
			m := k
			if m < len(src) && src[m] == '-' {
				m++
			}
			n := m
			for n < len(src) && isDigit(src[n]) {
				n++
			}
			if n == m || n >= len(src) || src[n] != ']' {
				// Not an index: a list literal follows a word (`x in[1]` is
				// not EDA either, but let the parser say so).
				break
			}
			var idx int
			fmt.Sscanf(src[k:n], "%d", &idx)
			t.keys = append(t.keys, pathKey{index: idx, isIdx: true})
			j = n + 1
			continue
		}
		break
	}
	if len(t.keys) > 0 {
		t.kind = tPath
	}
	t.end = j
	return t, j, nil
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIdentPart(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// unescapeWhitespace converts the escapes pyparsing's QuotedString
// converts (\t, \n, \f, \r); every other backslash stays, so a regex
// written "example\.com" keeps its backslash.
func unescapeWhitespace(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\f`, "\f", `\r`, "\r")
	return r.Replace(s)
}
