package engine

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Secrets are referenced in rulebooks as ${env:NAME} or ${file:PATH} and
// resolved as late as possible. A literal "${" is written "$${". Values that
// templates insert are escaped with EscapeSecretRefs, so event data can never
// name a secret to be resolved.

var secretRef = regexp.MustCompile(`\$?\$\{(env|file):([^}]*)\}`)

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
// secrets receives the resolved values.
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
		kind, name := sub[1], sub[2]
		v, err := lookupSecret(kind, name)
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

func lookupSecret(kind, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("secret reference ${%s:} names nothing", kind)
	}
	switch kind {
	case "env":
		v, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("secret ${env:%s}: environment variable %q is not set", name, name)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("secret ${file:%s}: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("secret reference kind %q is not env or file", kind)
}

// ResolveSecrets returns a deep copy of v with every secret reference in its
// strings resolved, and the resolved values (for Redact).
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

// EscapeSecretRefs returns v with every "${" in its strings written "$${", so
// that ResolveSecrets leaves it literal. Templates apply it to every value
// they insert from events, facts and vars.
func EscapeSecretRefs(v any) any {
	switch x := v.(type) {
	case string:
		if strings.Contains(x, "${") {
			return strings.ReplaceAll(x, "${", "$${")
		}
		return x
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[k] = EscapeSecretRefs(vv)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, vv := range x {
			l[i] = EscapeSecretRefs(vv)
		}
		return l
	}
	return v
}
