package engine

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Secrets are referenced in rulebooks as ${env:NAME} or ${file:PATH}; a
// literal "${env:" is written "$${env:".
//
// Action arguments are templates, and what a template inserts comes from
// event data, which a sender controls. So references are never searched for
// in rendered text: the template compiler finds them in the rulebook's own
// literal text, once, at load, and rendering reports where each one landed in
// the rendered arguments (SecretUse). The invocation stores the arguments
// with the references' text and that list, never a value; ResolveArgs
// substitutes the values just before the action runs, at exactly those
// places. Whatever an event contains, it cannot add a place, move one, or
// name a secret: "$" next to "{env:X}", a map key "${file:/etc/shadow}" or a
// value split over two inserts all stay plain text.
//
// ResolveSecrets and ResolveSecretString scan text for references; they are
// for text the operator wrote (a source's settings, a command-line flag),
// never for anything rendered from an event.

var secretRef = regexp.MustCompile(`\$?\$\{(env|file):([^}]*)\}`)

// openSecretRef matches the start of a reference that its string ends
// before closing: in a template's literal text, a reference whose name a
// template would complete (unless escaped, "$${").
var openSecretRef = regexp.MustCompile(`\$?\$\{(env|file):[^}]*$`)

// openRefAt returns the offset of a reference left open at the end of s, or -1.
func openRefAt(s string) int {
	loc := openSecretRef.FindStringIndex(s)
	if loc == nil || strings.HasPrefix(s[loc[0]:], "$$") {
		return -1
	}
	return loc[0]
}

// SecretRef names one secret.
type SecretRef struct {
	// Kind is "env" or "file".
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// String is the reference as a rulebook writes it: ${env:NAME}.
func (r SecretRef) String() string { return "${" + r.Kind + ":" + r.Name + "}" }

// SecretUse places a reference that the rulebook's literal text made in
// rendered action arguments: the string at Path (map keys and list indexes
// from the top of the arguments) holds the reference's text, r.String(), at
// byte offset At.
type SecretUse struct {
	Path []string `json:"path"`
	At   int      `json:"at"`
	SecretRef
}

// litRef is a reference found in a literal of a template: where it is
// relative to the literal (path inside a literal map or list, byte offset in
// its string).
type litRef struct {
	path []string
	at   int
	ref  SecretRef
}

// parseLiteral unescapes "$${env:...}" in rulebook text and returns the
// text with the references it holds and where they are in that text.
//
// Text with a reference is made valid UTF-8 (invalid bytes become U+FFFD,
// as the JSON of the durable queue would make them), so the offsets of its
// references survive the queue.
func parseLiteral(s string) (string, []litRef) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	if HasSecretRef(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	var refs []litRef
	last := 0
	for _, m := range secretRef.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		if strings.HasPrefix(s[m[0]:], "$$") {
			b.WriteString(s[m[0]+1 : m[1]])
			continue
		}
		r := SecretRef{Kind: s[m[2]:m[3]], Name: s[m[4]:m[5]]}
		refs = append(refs, litRef{at: b.Len(), ref: r})
		b.WriteString(r.String())
	}
	b.WriteString(s[last:])
	return b.String(), refs
}

// HasSecretRef reports whether s contains a secret reference.
func HasSecretRef(s string) bool {
	for _, m := range secretRef.FindAllString(s, -1) {
		if !strings.HasPrefix(m, "$$") {
			return true
		}
	}
	return false
}

// CheckSecretRefs checks that every reference in s can be resolved now,
// without returning the values. Errors name the reference, never a value.
func CheckSecretRefs(s string) error {
	_, err := resolveString(s, nil)
	return err
}

// ResolveSecretString resolves the references in s and unescapes "$${".
// secrets receives the resolved values. s must be text the operator wrote,
// never text rendered from an event (see ResolveArgs).
func ResolveSecretString(s string, secrets *[]string) (string, error) {
	return resolveString(s, secrets)
}

func resolveString(s string, secrets *[]string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var firstErr error
	out := secretRef.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "$$") {
			return m[1:]
		}
		sub := secretRef.FindStringSubmatch(m)
		v, err := lookupSecret(SecretRef{Kind: sub[1], Name: sub[2]})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return ""
		}
		if secrets != nil {
			*secrets = append(*secrets, v)
		}
		return v
	})
	return out, firstErr
}

func lookupSecret(r SecretRef) (string, error) {
	if r.Name == "" {
		return "", fmt.Errorf("secret reference ${%s:} names nothing", r.Kind)
	}
	switch r.Kind {
	case "env":
		v, ok := os.LookupEnv(r.Name)
		if !ok {
			return "", fmt.Errorf("secret %s: environment variable %q is not set", r, r.Name)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(r.Name)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", r, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("secret reference kind %q is not env or file", r.Kind)
}

// ResolveSecrets returns a deep copy of v with every secret reference in its
// strings resolved, and the resolved values (for Redact). v must be settings
// the operator wrote (a source's arguments), never rendered action
// arguments: those are resolved with ResolveArgs.
func ResolveSecrets(v any) (any, []string, error) {
	var secrets []string
	out, err := resolveValue(v, &secrets)
	return out, secrets, err
}

func resolveValue(v any, secrets *[]string) (any, error) {
	switch x := v.(type) {
	case string:
		return ResolveSecretString(x, secrets)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			r, err := resolveValue(vv, secrets)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m[k] = r
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, vv := range x {
			r, err := resolveValue(vv, secrets)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = r
		}
		return l, nil
	}
	return v, nil
}

// ResolveArgs returns a deep copy of rendered action arguments with the
// value of each secret substituted at the place uses gives it, and the
// values (for Redact). Nothing else in args is read as a reference: a
// "${env:X}" that is not at a listed place stays as it is. A use whose place
// does not hold its reference's text is an error (the arguments were
// changed after rendering); errors name the argument and the reference,
// never a value.
func ResolveArgs(args map[string]any, uses []SecretUse) (map[string]any, []string, error) {
	out, _ := deepCopy(args).(map[string]any)
	if len(uses) == 0 {
		return out, nil, nil
	}
	if out == nil {
		out = map[string]any{}
	}
	// Substitute from the end of each string, so the offsets of the uses
	// still to do stay valid.
	sorted := append([]SecretUse(nil), uses...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := strings.Join(sorted[i].Path, "\x00"), strings.Join(sorted[j].Path, "\x00")
		if a != b {
			return a < b
		}
		return sorted[i].At > sorted[j].At
	})
	var secrets []string
	for _, u := range sorted {
		where := strings.Join(u.Path, ".")
		if where == "" {
			where = "(arguments)"
		}
		var v any = out
		err := replaceString(&v, u.Path, func(s string) (string, error) {
			text := u.SecretRef.String()
			if u.At < 0 || u.At > len(s) || !strings.HasPrefix(s[u.At:], text) {
				return "", fmt.Errorf("secret %s is not where the rulebook put it", u.SecretRef)
			}
			val, err := lookupSecret(u.SecretRef)
			if err != nil {
				return "", err
			}
			secrets = append(secrets, val)
			return s[:u.At] + val + s[u.At+len(text):], nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return out, secrets, nil
}

// replaceString replaces the string at path inside *v with f's result.
func replaceString(v *any, path []string, f func(string) (string, error)) error {
	if len(path) == 0 {
		s, ok := (*v).(string)
		if !ok {
			return fmt.Errorf("secret reference points at a %T, not text", *v)
		}
		r, err := f(s)
		if err != nil {
			return err
		}
		*v = r
		return nil
	}
	switch x := (*v).(type) {
	case map[string]any:
		child, ok := x[path[0]]
		if !ok {
			return fmt.Errorf("secret reference points at a missing key %q", path[0])
		}
		if err := replaceString(&child, path[1:], f); err != nil {
			return err
		}
		x[path[0]] = child
		return nil
	case []any:
		i, err := strconv.Atoi(path[0])
		if err != nil || i < 0 || i >= len(x) {
			return fmt.Errorf("secret reference points at a missing item %q", path[0])
		}
		return replaceString(&x[i], path[1:], f)
	}
	return fmt.Errorf("secret reference points into a %T", *v)
}
