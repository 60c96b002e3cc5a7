package engine

import (
	"net/url"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// URL escaping of template values. A URL built from text and templates
// ("https://api/items/{{ event.id }}?q={{ event.q }}") must not let an
// inserted value change the URL's structure: a space would make the request
// invalid, a "/" change the path, a "?", "&" or "#" add query parameters or
// cut the URL. EscapeURLTemplate rewrites such a template so that each value
// is percent-encoded for its place, with the template helpers urlpath and
// urlquery, which a rulebook may also call itself.

// URLPathEscape is urlpath(v): v as text (as a template inserts it), escaped
// as one path segment ("a b/c?" → "a%20b%2Fc%3F").
func URLPathEscape(v any) string { return url.PathEscape(Text(v)) }

// URLQueryEscape is urlquery(v): v as text, escaped as a query parameter
// name or value ("a b&c=d" → "a+b%26c%3Dd").
func URLQueryEscape(v any) string { return url.QueryEscape(Text(v)) }

// urlPlace is where in a URL a template value goes.
type urlPlace int

const (
	urlPrefix   urlPlace = iota // scheme, host, port: inserted as is
	urlPath                     // after the first "/" of the path: urlpath
	urlQuery                    // after "?": urlquery
	urlFragment                 // after "#": urlpath
)

// EscapeURLTemplate rewrites the template text s of a URL argument so that
// every "{{ expr }}" inserts its value percent-encoded for its place, as
// judged from the literal text before it: in the path (after the first "/"
// that follows the host) as urlpath(expr), in the query (after "?") as
// urlquery(expr), in the fragment (after "#") as urlpath(expr). Values in
// the scheme, host and port ("https://{{ vars.host }}/...", or a leading
// "{{ vars.base }}/items") are inserted as they are, as is an expression that
// already calls urlpath or urlquery, and a string that is one template only
// ("{{ vars.url }}": the expression builds the whole URL). Text without
// templates is returned unchanged, and so is a template that does not
// compile (CompileTemplate reports it on the original text).
func EscapeURLTemplate(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	if strings.HasPrefix(s, "{{") && strings.Index(s[2:], "}}")+4 == len(s) {
		return s // one template: it builds the whole URL
	}
	var b strings.Builder
	place, rest := urlPrefix, s
	for {
		lit, src, after, _, closed := cutTemplate(rest)
		if !closed {
			break
		}
		place = place.after(lit)
		b.WriteString(lit)
		b.WriteString("{{")
		b.WriteString(escapeURLExpr(place, src))
		b.WriteString("}}")
		rest = after
	}
	b.WriteString(rest)
	return b.String()
}

// after is the place reached once the literal text lit is read from p.
func (p urlPlace) after(lit string) urlPlace {
	if p == urlPrefix {
		// The "//" of "scheme://" does not start the path.
		if k := strings.Index(lit, "://"); k >= 0 {
			lit = lit[k+3:]
		}
	}
	for _, c := range lit {
		switch {
		case c == '#':
			return urlFragment
		case c == '?' && p < urlQuery:
			p = urlQuery
		case c == '/' && p == urlPrefix:
			p = urlPath
		}
	}
	return p
}

func escapeURLExpr(p urlPlace, src string) string {
	var fn string
	switch p {
	case urlPath, urlFragment:
		fn = "urlpath"
	case urlQuery:
		fn = "urlquery"
	default:
		return src
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return src
	}
	if call, ok := tree.Node.(*ast.CallNode); ok {
		if id, ok := call.Callee.(*ast.IdentifierNode); ok && (id.Value == "urlpath" || id.Value == "urlquery") {
			return src
		}
	}
	// The newline ends a // comment that src may end with.
	return " " + fn + "((" + src + "\n)) "
}
