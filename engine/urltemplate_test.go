package engine

import (
	"net/url"
	"testing"
)

func TestEscapeURLTemplate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.com/items", "https://api.example.com/items"},
		{"{{ vars.url }}", "{{ vars.url }}"},
		{"https://x/items/{{ event.id }}", "https://x/items/{{ urlpath(( event.id \n)) }}"},
		{"https://x/s?q={{ event.q }}&n={{ event.n }}", "https://x/s?q={{ urlquery(( event.q \n)) }}&n={{ urlquery(( event.n \n)) }}"},
		{"https://{{ vars.host }}:{{ vars.port }}/a/{{ event.p }}", "https://{{ vars.host }}:{{ vars.port }}/a/{{ urlpath(( event.p \n)) }}"},
		{"{{ vars.base }}/items/{{ event.id }}?x={{ event.x }}", "{{ vars.base }}/items/{{ urlpath(( event.id \n)) }}?x={{ urlquery(( event.x \n)) }}"},
		{"https://x/a?b={{ event.b }}#{{ event.f }}", "https://x/a?b={{ urlquery(( event.b \n)) }}#{{ urlpath(( event.f \n)) }}"},
		{"https://x/{{ event.a | urlquery() }}?q={{ urlpath(event.q) }}", "https://x/{{ event.a | urlquery() }}?q={{ urlpath(event.q) }}"},
		{"https://x/{{ event.a // the id }}", "https://x/{{ urlpath(( event.a // the id \n)) }}"},
		{"https://x/{{ event. }}", "https://x/{{ event. }}"},
		{"https://x/{{ event.a", "https://x/{{ event.a"},
	} {
		if got := EscapeURLTemplate(tc.in); got != tc.want {
			t.Errorf("EscapeURLTemplate(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestURLTemplateRendersEncodedValues: values with URL syntax in them stay
// one path segment or one query value, and decode back to themselves.
func TestURLTemplateRendersEncodedValues(t *testing.T) {
	c := &Compiler{}
	tpl, err := c.CompileTemplate(EscapeURLTemplate("https://api.example.com/items/{{ event.id }}/x?q={{ event.q }}&n={{ event.n }}&m={{ event.missing }}#{{ event.f }}"))
	if err != nil {
		t.Fatal(err)
	}
	hostile := "a b/c?d&e=f#g%h+i"
	out, err := tpl.Render(Env{Event: map[string]any{"id": hostile, "q": hostile, "n": 1.5, "f": "x y#z"}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(out.(string))
	if err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if u.Host != "api.example.com" || u.Path != "/items/"+hostile+"/x" || u.EscapedPath() != "/items/a%20b%2Fc%3Fd&e=f%23g%25h+i/x" {
		t.Errorf("path %q (escaped %q)", u.Path, u.EscapedPath())
	}
	q := u.Query()
	if len(q) != 3 || q.Get("q") != hostile || q.Get("n") != "1.5" || !q.Has("m") || q.Get("m") != "" {
		t.Errorf("query %v from %q", q, u.RawQuery)
	}
	if u.Fragment != "x y#z" {
		t.Errorf("fragment %q", u.Fragment)
	}
}

// FuzzEscapeURLTemplate: a URL template that compiles still compiles once
// escaped, and its literal text is kept.
func FuzzEscapeURLTemplate(f *testing.F) {
	for _, s := range []string{"https://x/{{ event.a }}?q={{ event.b }}#{{ vars.c }}", "{{ vars.u }}/{{ event.a // c }}", "a{{b}}c{{", "https://x/{{ \"}\" }}"} {
		f.Add(s)
	}
	c := &Compiler{}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := c.CompileTemplate(s); err != nil {
			return
		}
		esc := EscapeURLTemplate(s)
		if _, err := c.CompileTemplate(esc); err != nil {
			t.Fatalf("%q compiles, escaped %q does not: %v", s, esc, err)
		}
	})
}
