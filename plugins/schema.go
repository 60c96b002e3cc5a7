package plugins

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/rulebook-dev/rulebook/engine"
)

var printer = message.NewPrinter(language.English)

// argsSchema validates an action's arguments at load time.
//
// Templates: arguments are checked before templates are rendered, so a
// string containing "{{" may become any value (and a secret reference
// such as ${env:URL} is only resolved just before the action runs). Rather than guessing a
// placeholder of the right type for every schema keyword, the whole
// arguments object is validated as written and the errors are then
// filtered: an error located at such a string is dropped (the rendered
// value may be valid), and an anyOf/oneOf counts as satisfied when one of
// its branches failed only at template strings. What remains are errors no
// rendering can fix: missing or unknown keys, a literal of the wrong type,
// a literal outside an enum. The one case this cannot see through is a
// schema whose if/then/else branches on a value that is still a template;
// such a value is checked by the plugin once rendered.
type argsSchema struct {
	schema *jsonschema.Schema
}

func compileSchema(action, text string) (*argsSchema, error) {
	return compileArgsSchema(fmt.Sprintf("action %q", action), "rulebook-plugin:///"+action+".json", text)
}

// compileArgsSchema compiles text (blank: any object) as the JSON Schema
// at url, for an action's or a source plugin's arguments; errors start
// with what.
func compileArgsSchema(what, url, text string) (*argsSchema, error) {
	if strings.TrimSpace(text) == "" {
		text = `{"type":"object"}`
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("%s: schema is not JSON: %w", what, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("%s: schema: %w", what, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s: schema: %w", what, err)
	}
	return &argsSchema{schema: s}, nil
}

// check validates args. A problem is an *engine.ArgError with the path of
// the offending key; several problems (a missing key and a wrong type, two
// unknown keys in different places) are every one of them, in path order,
// joined with errors.Join: an author fixes them in one go, not one per
// load.
func (s *argsSchema) check(args map[string]any) error {
	inst, err := normalize(args)
	if err != nil {
		return engine.ArgErrorf(nil, "arguments cannot be represented as JSON: %v", err)
	}
	err = s.schema.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return engine.ArgErrorf(nil, "%v", err)
	}
	kept := filterTemplates(ve, inst)
	if kept == nil {
		return nil
	}
	var errs []error
	seen := map[string]bool{}
	for _, leaf := range leaves(kept, nil) {
		ae := argError(leaf)
		key := strings.Join(ae.Path, "\x00") + "\x00" + ae.Err.Error()
		if !seen[key] {
			seen[key] = true
			errs = append(errs, ae)
		}
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		return slices.Compare(a.(*engine.ArgError).Path, b.(*engine.ArgError).Path)
	})
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// leaves appends to out the errors of e that name an offending key: every
// leaf, except that a failed anyOf/oneOf is one problem, reported as its
// first branch's first leaf (listing why each alternative failed would bury
// the point).
func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		return append(out, firstLeaf(e))
	}
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leaves(c, out)
	}
	return out
}

// normalize turns args into the plain JSON values the validator expects
// (YAML may have produced int, uint64, map[any]any...).
func normalize(args map[string]any) (any, error) {
	if args == nil {
		args = map[string]any{}
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// filterTemplates returns e without the parts a template could fix, or nil
// when nothing remains.
func filterTemplates(e *jsonschema.ValidationError, inst any) *jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		if v, ok := lookup(inst, e.InstanceLocation); ok && unrendered(v) {
			return nil
		}
		return e
	}
	switch e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		// Each cause is one failing branch: if a branch failed only at
		// templates, it may pass once they are rendered.
		var branches []*jsonschema.ValidationError
		for _, c := range e.Causes {
			f := filterTemplates(c, inst)
			if f == nil {
				return nil
			}
			branches = append(branches, f)
		}
		out := *e
		out.Causes = branches
		return &out
	}
	var causes []*jsonschema.ValidationError
	for _, c := range e.Causes {
		if f := filterTemplates(c, inst); f != nil {
			causes = append(causes, f)
		}
	}
	if len(causes) == 0 {
		return nil
	}
	out := *e
	out.Causes = causes
	return &out
}

// unrendered reports whether v is only known at run time: a template, or a
// secret reference (${env:...}, ${file:...}) resolved just before Run.
func unrendered(v any) bool {
	if engine.IsTemplate(v) {
		return true
	}
	s, ok := v.(string)
	return ok && engine.HasSecretRef(s)
}

func lookup(v any, path []string) (any, bool) {
	for _, tok := range path {
		switch x := v.(type) {
		case map[string]any:
			nv, ok := x[tok]
			if !ok {
				return nil, false
			}
			v = nv
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// firstLeaf returns the deepest first error, which names the offending key.
func firstLeaf(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) > 0 {
		e = e.Causes[0]
	}
	return e
}

func argError(e *jsonschema.ValidationError) *engine.ArgError {
	path := append([]string(nil), e.InstanceLocation...)
	msg := e.ErrorKind.LocalizedString(printer)
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		if len(k.Properties) > 0 {
			path = append(path, k.Properties[0])
			if len(k.Properties) == 1 {
				msg = "unknown key"
			} else {
				msg = fmt.Sprintf("unknown keys %s", quoteAll(k.Properties))
			}
		}
	case *kind.Required:
		if len(k.Missing) == 1 {
			msg = fmt.Sprintf("missing required key %q", k.Missing[0])
		} else {
			msg = fmt.Sprintf("missing required keys %s", quoteAll(k.Missing))
		}
	}
	return &engine.ArgError{Path: path, Err: errors.New(msg)}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
