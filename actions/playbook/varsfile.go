package playbook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The variables reach Ansible through a file passed as `-e @file`, never on
// the command line. The file is JSON-shaped YAML in flow style, with every
// string tagged !unsafe: event data is attacker-controlled (a webhook body)
// and Ansible would otherwise evaluate a "{{ lookup('pipe', ...) }}" found
// in it when a task uses the value. Tagged strings stay literal.

// writeVarsFile writes vars to path with mode 0600.
func writeVarsFile(path string, vars map[string]any) error {
	norm, err := normalize(vars)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	writeUnsafeYAML(&b, norm)
	b.WriteByte('\n')
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// normalize turns v into the JSON data model (map[string]any, []any, string,
// json.Number, bool, nil) by a JSON round trip.
func normalize(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("variables are not representable as JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

func writeUnsafeYAML(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(yamlNumber(x.String()))
	case string:
		b.WriteString("!unsafe ")
		writeQuoted(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeUnsafeYAML(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeQuoted(b, k)
			b.WriteString(": ")
			writeUnsafeYAML(b, x[k])
		}
		b.WriteByte('}')
	default:
		// normalize produces none of these; keep the output valid anyway.
		b.WriteString("null")
	}
}

// yamlNumber rewrites a JSON number so that YAML 1.1 (PyYAML) reads it as
// a number: floats need a dot and a signed exponent.
func yamlNumber(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "!unsafe " + strconv.Quote(s)
	}
	out := strconv.FormatFloat(f, 'g', -1, 64)
	mant, exp, hasExp := strings.Cut(out, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if hasExp {
		return mant + "e" + exp
	}
	return mant
}

// writeQuoted writes s as a YAML double-quoted scalar, escaping everything
// that PyYAML does not accept raw in a stream.
func writeQuoted(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\uFFFD`)
			i++
			continue
		}
		i += size
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case yamlPrintable(r):
			b.WriteRune(r)
		case r <= 0xFFFF:
			fmt.Fprintf(b, `\u%04X`, r)
		default:
			fmt.Fprintf(b, `\U%08X`, r)
		}
	}
	b.WriteByte('"')
}

// yamlPrintable is PyYAML's set of characters allowed raw in a stream,
// minus the line breaks U+0085, U+2028 and U+2029 that would fold.
func yamlPrintable(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0x7E:
		return true
	case r >= 0xA0 && r <= 0xD7FF:
		return r != 0x2028 && r != 0x2029
	case r >= 0xE000 && r <= 0xFFFD:
		return r != 0xFEFF
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
