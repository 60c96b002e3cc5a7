package rulebooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks/eda"
)

// Options configure a load.
type Options struct {
	// Registry knows the source and action types; required.
	Registry *engine.Registry
	// Clock drives now() and age() in conditions.
	Clock engine.Clock
	// ExtraVars override every ruleset's vars (from --vars and --env-vars).
	ExtraVars map[string]any
	// CheckSecrets makes an unresolvable ${env:...}/${file:...} reference in
	// a source's or an action's arguments an error. `run` and `validate
	// --strict` set it. Without it such a reference is a warning
	// (Rulebook.Warnings), so rulebooks can be checked where the secrets are
	// absent and still be told what `run` would refuse.
	CheckSecrets bool
}

// Rulebook is a loaded rulebook.
type Rulebook struct {
	Path     string
	Rulesets []*engine.Ruleset
	// Warnings are valid but dangerous uses (an action's Warn), in file
	// order, each with Severity "warning": `validate` prints them, `run`
	// logs them.
	Warnings ErrorList
}

// Error is one problem in a rulebook, with its position.
type Error struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Ruleset string `json:"ruleset,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Where   string `json:"where,omitempty"`
	Message string `json:"message"`
	// Severity is "warning" for a warning, empty for an error.
	Severity     string `json:"severity,omitempty"`
	rulesetKnown bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	if e.Severity != "" {
		b.WriteString(e.Severity)
		b.WriteString(": ")
	}
	if e.Ruleset != "" || e.rulesetKnown {
		fmt.Fprintf(&b, "ruleset %q: ", e.Ruleset)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	if e.Where != "" {
		b.WriteString(e.Where)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrorList is every problem found in a load, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and compiles the rulebook at path. A returned error is an
// ErrorList (all problems, not just the first) or an I/O error.
func Load(path string, opts Options) (*Rulebook, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return f.Compile(opts)
}

// Parse compiles a rulebook from data; name is used in error positions.
func Parse(name string, data []byte, opts Options) (*Rulebook, error) {
	return NewFile(name, data).Compile(opts)
}

// File is a rulebook's text parsed as YAML once. `rulebook run` asks it
// for the plugins the rulebook declares (they must run before the rules
// are checked) and then compiles it: parsing the YAML twice was a fifth of
// the start of a 10,000-rule rulebook.
type File struct {
	// Name is the file name errors carry; Data its text.
	Name string
	Data []byte
	doc  yaml.Node
	err  error // the YAML parser's, reported by Compile
	// compiled says Compile released the rules of doc.
	compiled bool
}

// ReadFile reads and parses a rulebook file. Only a read error is returned:
// a YAML error is reported, with its position, by Compile.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return NewFile(path, data), nil
}

// NewFile parses a rulebook's text; name is used in error positions.
func NewFile(name string, data []byte) *File {
	f := &File{Name: name, Data: data}
	f.err = yaml.Unmarshal(data, &f.doc)
	return f
}

// Compile checks and compiles the rulebook. It lets go of each rule's
// part of the parse tree once the rule is compiled: the tree of 10,000
// rules is 18 MB, which then no longer adds to the heap of the compiled
// rules, nor to each collection's work. Compiling again (with other
// options) parses the text again; DeclaredPlugins is unaffected.
func (f *File) Compile(opts Options) (*Rulebook, error) {
	if opts.Registry == nil {
		opts.Registry = engine.NewRegistry()
	}
	if f.compiled {
		f.doc = yaml.Node{}
		f.err = yaml.Unmarshal(f.Data, &f.doc)
	}
	f.compiled = true
	name := f.Name
	l := &loader{file: name, opts: opts, src: f.Data, release: true}
	rb := l.parse(&f.doc, f.err)
	if len(l.errs) > 0 {
		sortByPosition(l.errs)
		return nil, l.errs
	}
	rb.Path = name
	sortByPosition(l.warns)
	rb.Warnings = l.warns
	return rb, nil
}

func sortByPosition(list ErrorList) {
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].Line != list[j].Line {
			return list[i].Line < list[j].Line
		}
		return list[i].Column < list[j].Column
	})
}

var errNoRegistry = errors.New("convert needs the registry of source and action types")

type loader struct {
	file    string
	opts    Options
	src     []byte
	errs    ErrorList
	warns   ErrorList
	ruleset string
	rule    string
	inRS    bool
	// eda: the rulebook is written in EDA's condition language (dialect.go)
	eda bool
	// doc is the parsed YAML; native records the native text of each
	// condition node read as EDA (for Convert).
	doc    *yaml.Node
	native map[*yaml.Node]string
	// names of every ruleset, for cross-references
	rulesetNames map[string]bool
	pendingRefs  []rulesetRef
	fp           fingerprinter
	// batch compiles the conditions of the ruleset being loaded ahead
	// (precompile, dialect.go); pre holds each one's index in it.
	batch *engine.ConditionBatch
	pre   map[*yaml.Node]int
	// release lets each rule's nodes go once it is compiled (a File's
	// compile; Convert keeps the tree it edits).
	release bool
	// ruleFields, wheres and posBuf are reused from rule to rule.
	ruleFields map[string]*yaml.Node
	wheres     map[actionKey]string
	posBuf     []byte
}

type rulesetRef struct {
	name string
	node *yaml.Node
	rs   string
	rule string
	at   string
}

func (l *loader) errf(n *yaml.Node, where, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	l.errAt(line, col, where, fmt.Sprintf(format, args...))
}

func (l *loader) errAt(line, col int, where, msg string) {
	msg += edaHint(msg)
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Ruleset: l.ruleset, Rule: l.rule,
		Where: where, Message: msg, rulesetKnown: l.inRS})
}

func (l *loader) parse(doc *yaml.Node, err error) *Rulebook {
	if err != nil {
		line, col, msg := 1, 1, err.Error()
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			line, col, msg = yamlSyntaxError(l.src, err)
		}
		l.errAt(line, col, "", msg)
		return nil
	}
	if len(doc.Content) == 0 {
		l.errAt(1, 1, "", "the rulebook is empty: want a list of rulesets")
		return nil
	}
	l.doc = doc
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		l.errf(root, "", "a rulebook is a list of rulesets, not a %s", kindName(root))
		return nil
	}
	l.eda = edaDialect(root)
	l.rulesetNames = map[string]bool{}
	for _, n := range root.Content {
		if n.Kind == yaml.MappingNode {
			if v := mapValue(n, "name"); v != nil && v.Kind == yaml.ScalarNode {
				l.rulesetNames[v.Value] = true
			}
		}
	}
	rb := &Rulebook{}
	seen := map[string]*yaml.Node{}
	for _, n := range root.Content {
		rs := l.ruleset1(n)
		if rs == nil {
			continue
		}
		if prev, dup := seen[rs.Name]; dup {
			l.inRS, l.ruleset = true, rs.Name
			l.errf(mapValue(n, "name"), "name", "duplicate ruleset name (first defined at line %d)", prev.Line)
		}
		seen[rs.Name] = n
		rb.Rulesets = append(rb.Rulesets, rs)
	}
	l.inRS, l.ruleset, l.rule = false, "", ""
	for _, ref := range l.pendingRefs {
		if !l.rulesetNames[ref.name] {
			l.inRS, l.ruleset, l.rule = true, ref.rs, ref.rule
			l.errf(ref.node, ref.at, "unknown ruleset %q", ref.name)
		}
	}
	return rb
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// allowedKeys are the JSON names of a spec type's fields. Callers only
// read the map: it is built once per type (with reflection, for every
// rule it was a tenth of the load of a large rulebook).
func allowedKeys(v any) map[string]bool {
	t := reflect.TypeOf(v)
	if keys, ok := specKeys.Load(t); ok {
		return keys.(map[string]bool)
	}
	keys, _ := specKeys.LoadOrStore(t, specFields(t))
	return keys.(map[string]bool)
}

var specKeys sync.Map // reflect.Type → map[string]bool

func specFields(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fields checks a mapping against allowed keys and returns key → value node.
func (l *loader) fields(n *yaml.Node, where string, allowed map[string]bool) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if !l.fieldsInto(out, n, where, allowed) {
		return nil
	}
	return out
}

// fieldsInto is fields, filling out (empty); false when n is no mapping.
func (l *loader) fieldsInto(out map[string]*yaml.Node, n *yaml.Node, where string, allowed map[string]bool) bool {
	if n.Kind != yaml.MappingNode {
		l.errf(n, where, "want a mapping, got a %s", kindName(n))
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if allowed != nil && !allowed[k.Value] {
			l.errf(k, where, "unknown key %q%s", k.Value, suggest(k.Value, sortedKeys(allowed)))
			continue
		}
		if _, dup := out[k.Value]; dup {
			l.errf(k, where, "key %q given twice", k.Value)
			continue
		}
		out[k.Value] = v
	}
	return true
}

func (l *loader) str(n *yaml.Node, where string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errf(n, where, "want a string, got a %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) boolean(n *yaml.Node, where string) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		l.errf(n, where, "want true or false, got %q", n.Value)
		return false, false
	}
	return b, true
}

func (l *loader) integer(n *yaml.Node, where string, min int) (int, bool) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		l.errf(n, where, "want a whole number, got %q", n.Value)
		return 0, false
	}
	if v < min {
		l.errf(n, where, "must be at least %d, got %d", min, v)
		return 0, false
	}
	return v, true
}

func (l *loader) duration(n *yaml.Node, where string) (time.Duration, bool) {
	var v any
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		l.errf(n, where, "want a duration like \"5m\", got a %s", kindName(n))
		return 0, false
	}
	d, err := engine.ParseDuration(v)
	if err != nil {
		l.errf(n, where, "%v", err)
		return 0, false
	}
	if d <= 0 {
		l.errf(n, where, "duration must be positive, got %q", n.Value)
		return 0, false
	}
	return d, true
}

// value decodes a node into plain Go values (map[string]any, []any, ...).
func (l *loader) value(n *yaml.Node, where string) (any, bool) {
	if v, ok := plainValue(n); ok {
		return v, true
	}
	var v any
	if err := n.Decode(&v); err != nil {
		l.errf(n, where, "%v", err)
		return nil, false
	}
	return normalizeYAML(v), true
}

// normalizeYAML turns yaml.v3's decoded values into JSON-shaped ones:
// map[string]any keys, float64 for non-integers kept, ints kept as int.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			x[k] = normalizeYAML(vv)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[fmt.Sprint(k)] = normalizeYAML(vv)
		}
		return m
	case []any:
		for i, vv := range x {
			x[i] = normalizeYAML(vv)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

func (l *loader) ruleset1(n *yaml.Node) *engine.Ruleset {
	l.inRS, l.ruleset, l.rule = true, "", ""
	if v := mapValue(n, "name"); v != nil && v.Kind == yaml.ScalarNode {
		l.ruleset = v.Value
	}
	f := l.fields(n, "", allowedKeys(RulesetSpec{}))
	if f == nil {
		return nil
	}
	rs := &engine.Ruleset{Sequential: true}
	if v := f["name"]; v == nil {
		l.errf(n, "", "missing key \"name\"")
	} else if s, ok := l.str(v, "name"); ok {
		if strings.TrimSpace(s) == "" {
			l.errf(v, "name", "must not be empty")
		}
		rs.Name = s
		l.ruleset = s
	}
	if v := f["hosts"]; v != nil {
		rs.Hosts, _ = l.str(v, "hosts")
	}
	vars := map[string]any{}
	if v := f["vars"]; v != nil {
		if v.Kind != yaml.MappingNode {
			l.errf(v, "vars", "want a mapping, got a %s", kindName(v))
		} else if x, ok := l.value(v, "vars"); ok {
			if m, ok := x.(map[string]any); ok {
				vars = m
			}
		}
	}
	for k, v := range l.opts.ExtraVars {
		vars[k] = v
	}
	rs.Vars = vars
	if v := f["match_multiple_rules"]; v != nil {
		rs.MatchMultiple, _ = l.boolean(v, "match_multiple_rules")
	}
	if v := f["default_events_ttl"]; v != nil {
		rs.DefaultEventsTTL, _ = l.duration(v, "default_events_ttl")
	}
	if v := f["execution_strategy"]; v != nil {
		if s, ok := l.str(v, "execution_strategy"); ok {
			switch s {
			case "sequential":
			case "parallel":
				rs.Sequential = false
			default:
				l.errf(v, "execution_strategy", "want \"sequential\" or \"parallel\", got %q", s)
			}
		}
	}
	if v := f["gather_facts"]; v != nil {
		l.boolean(v, "gather_facts")
	}
	if v := f["plugins"]; v != nil {
		l.plugins(v)
	}
	var defaults engine.Policy
	if v := f["defaults"]; v != nil {
		defaults = l.policy(l.fields(v, "defaults", allowedKeys(DefaultsSpec{})), "defaults")
	}
	comp := &engine.Compiler{Clock: l.opts.Clock, Vars: vars}
	mode := engine.ModeAuto
	if v := f["mode"]; v != nil {
		mode = l.mode(v)
	}
	var approval *engine.ApprovalPolicy
	if v := f["approval"]; v != nil {
		approval = l.approval(v, nil, vars, defaults)
	}
	settings := rulesetSettings(rs, vars, defaults)
	if v := f["sources"]; v == nil {
		l.errf(n, "", "missing key \"sources\"")
	} else {
		rs.Sources = l.sources(v, rs.Name)
	}
	if v := f["rules"]; v == nil {
		l.errf(n, "", "missing key \"rules\"")
	} else if v.Kind != yaml.SequenceNode {
		l.errf(v, "rules", "want a list of rules, got a %s", kindName(v))
	} else {
		seen := make(map[string]int, len(v.Content))
		l.precompile(v, comp)
		for i, rn := range v.Content {
			if l.release {
				v.Content[i] = nil
			}
			r := l.rule1(rn, comp, defaults)
			if r == nil {
				continue
			}
			l.ruleMode(rn, r, mode, approval, vars, defaults)
			r.Fingerprint = l.fp.fingerprint(settings, rn)
			if line, dup := seen[r.Name]; dup && r.Name != "" { // an empty name is reported as such
				l.rule = r.Name
				l.errf(mapValue(rn, "name"), "name", "duplicate rule name (first defined at line %d)", line)
			}
			seen[r.Name] = rn.Line
			rs.Rules = append(rs.Rules, r)
		}
		l.stopPrecompile()
		if len(v.Content) == 0 {
			l.errf(v, "rules", "a ruleset needs at least one rule")
		}
	}
	l.rule = ""
	return rs
}

// rulesetSettings is what a rule's behaviour depends on beyond its own
// YAML: vars, defaults and the ruleset's matching settings.
func rulesetSettings(rs *engine.Ruleset, vars map[string]any, defaults engine.Policy) []byte {
	b, _ := json.Marshal(map[string]any{
		"vars": vars, "defaults": defaults, "ttl": rs.DefaultEventsTTL, "hosts": rs.Hosts,
		"multiple": rs.MatchMultiple, "sequential": rs.Sequential,
	})
	return b
}

func (l *loader) plugins(n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		l.errf(n, "plugins", "want a list of {path, sha256}, got a %s", kindName(n))
		return
	}
	for i, pn := range n.Content {
		where := fmt.Sprintf("plugins[%d]", i)
		f := l.fields(pn, where, allowedKeys(PluginSpec{}))
		if f == nil {
			continue
		}
		if f["path"] == nil {
			l.errf(pn, where, "missing key \"path\"")
		} else {
			l.str(f["path"], where+": path")
		}
		if v := f["sha256"]; v != nil {
			if s, ok := l.str(v, where+": sha256"); ok && !sha256Hex.MatchString(s) {
				l.errf(v, where+": sha256", "want 64 hex digits, got %q", s)
			}
		}
		if v := f["name"]; v != nil {
			l.str(v, where+": name")
		}
	}
}

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// DeclaredPlugins returns the plugins the rulebook declares, with paths
// made relative to the rulebook's directory, so the CLI can start them
// before compiling (their actions must be known to check the rules).
// Problems in the rulebook are left to Compile.
func (f *File) DeclaredPlugins() []PluginSpec {
	var doc []struct {
		Plugins []PluginSpec `yaml:"plugins"`
	}
	if f.err != nil || len(f.doc.Content) == 0 || f.doc.Decode(&doc) != nil {
		return nil
	}
	var out []PluginSpec
	for _, rs := range doc {
		for _, p := range rs.Plugins {
			if p.Path != "" && !filepath.IsAbs(p.Path) {
				p.Path = filepath.Join(filepath.Dir(f.Name), p.Path)
			}
			out = append(out, p)
		}
	}
	return out
}

func (l *loader) sources(n *yaml.Node, ruleset string) []engine.SourceConfig {
	if n.Kind != yaml.SequenceNode {
		l.errf(n, "sources", "want a list of sources, got a %s", kindName(n))
		return nil
	}
	var out []engine.SourceConfig
	seen := map[string]bool{}
	for i, sn := range n.Content {
		where := fmt.Sprintf("sources[%d]", i)
		f := l.fields(sn, where, nil)
		if f == nil {
			continue
		}
		name := ""
		if v := f["name"]; v != nil {
			name, _ = l.str(v, where+": name")
		}
		var typ string
		var argsNode *yaml.Node
		for i := 0; i+1 < len(sn.Content); i += 2 {
			k := sn.Content[i]
			if k.Value == "name" || k.Value == "filters" {
				continue
			}
			if typ != "" {
				l.errf(k, where, "a source has exactly one type key, got %q and %q", typ, k.Value)
				continue
			}
			typ, argsNode = k.Value, sn.Content[i+1]
		}
		var filters []engine.FilterConfig
		if v := f["filters"]; v != nil {
			filters = l.filters(v, where+": filters")
		}
		if typ == "" {
			l.errf(sn, where, "missing the source type key (one of %s)", strings.Join(l.opts.Registry.SourceTypes(), ", "))
			continue
		}
		edaStyle := l.eda || strings.HasPrefix(typ, "ansible.eda.") || strings.HasPrefix(typ, "eda.builtin.")
		typ = strings.TrimPrefix(strings.TrimPrefix(typ, "ansible.eda."), "eda.builtin.")
		if name == "" {
			name = typ
		}
		if seen[name] {
			l.errf(sn, where, "duplicate source name %q: give each source a distinct name", name)
		}
		seen[name] = true
		args := map[string]any{}
		if argsNode.Kind != yaml.ScalarNode || argsNode.Tag != "!!null" {
			if argsNode.Kind != yaml.MappingNode {
				l.errf(argsNode, where+": "+typ, "want a mapping of arguments, got a %s", kindName(argsNode))
				continue
			}
			if v, ok := l.value(argsNode, where); ok {
				args, _ = v.(map[string]any)
			}
		}
		spec, ok := l.opts.Registry.Source(typ)
		if !ok {
			hint := suggest(typ, l.opts.Registry.SourceTypes())
			if hint == "" {
				// An EDA source plugin that is not built in (such as
				// ansible-rulebook's own test sources): say how to run it.
				hint = fmt.Sprintf("; a Python source plugin is run from a directory: pass --source-dir DIR (-S DIR) holding %s.py, or install its collection", typ)
			}
			l.errf(sn, where, "unknown source type %q%s", typ, hint)
			continue
		}
		// ansible.eda's argument names (rulebooks/eda/sources.go).
		if native, err := eda.SourceArgs(typ, args, edaStyle); err != nil {
			l.argError(argsNode, where+": "+typ, err)
			continue
		} else {
			args = native
		}
		l.resolvePaths(args, spec.PathArgs)
		if spec.Check != nil {
			if err := spec.Check(args); err != nil {
				l.argError(argsNode, where+": "+typ, err)
			}
		}
		l.checkSecrets(argsNode, args, where+": "+typ, nil)
		out = append(out, engine.SourceConfig{Name: name, Type: typ, Ruleset: ruleset, Args: args, Filters: filters})
	}
	return out
}

// filters reads a source's `filters:` list (EDA's form: each item a mapping
// with one key, the filter's name, optionally `eda.builtin.`/`ansible.eda.`
// prefixed, holding its arguments) and compiles each filter to check it.
func (l *loader) filters(n *yaml.Node, where string) []engine.FilterConfig {
	if n.Kind != yaml.SequenceNode {
		l.errf(n, where, "want a list of filters (`- json_filter: {...}`), got a %s", kindName(n))
		return nil
	}
	comp := &engine.Compiler{Clock: l.opts.Clock}
	var out []engine.FilterConfig
	for i, fn := range n.Content {
		w := fmt.Sprintf("%s[%d]", where, i)
		if fn.Kind != yaml.MappingNode || len(fn.Content) != 2 {
			l.errf(fn, w, "want a mapping with one key, the filter's name (one of %s)", strings.Join(engine.FilterNames, ", "))
			continue
		}
		key, argsNode := fn.Content[0], fn.Content[1]
		name := engine.FilterName(key.Value)
		args := map[string]any{}
		if argsNode.Kind != yaml.ScalarNode || argsNode.Tag != "!!null" {
			if argsNode.Kind != yaml.MappingNode {
				l.errf(argsNode, w+": "+key.Value, "want a mapping of arguments, got a %s", kindName(argsNode))
				continue
			}
			if v, ok := l.value(argsNode, w); ok {
				args, _ = v.(map[string]any)
			}
		}
		fc := engine.FilterConfig{Name: name, Args: args}
		if _, err := comp.CompileFilters([]engine.FilterConfig{fc}); err != nil {
			var fe *engine.FilterError
			if errors.As(err, &fe) {
				err = fe.Err
			}
			var ae *engine.ArgError
			if !errors.As(err, &ae) {
				l.errf(key, w, "%v%s", err, suggestFilter(name))
				continue
			}
			var ee *engine.ExprError
			if errors.As(ae.Err, &ee) && len(ae.Path) == 1 {
				if vn := nodeAt(argsNode, ae.Path); vn != nil && vn.Kind == yaml.ScalarNode && vn.Line > 0 {
					col := vn.Column + ee.Column - 1
					if vn.Style == yaml.DoubleQuotedStyle || vn.Style == yaml.SingleQuotedStyle {
						col++
					}
					l.errAt(vn.Line, col, w+": "+name+": "+ae.Path[0], ee.Msg)
					continue
				}
			}
			l.argError(argsNode, w+": "+name, err)
			continue
		}
		out = append(out, fc)
	}
	return out
}

func suggestFilter(name string) string {
	for _, n := range engine.FilterNames {
		if n == name {
			return ""
		}
	}
	return suggest(name, engine.FilterNames)
}

// resolvePaths makes the listed relative file arguments absolute against the
// rulebook's directory when the file exists there. Templates, secret
// references, absolute paths and names that are no file beside the rulebook
// (a collection playbook, a path meant for the working directory) are left
// alone.
func (l *loader) resolvePaths(args map[string]any, keys []string) {
	ResolvePaths(l.file, args, keys)
}

// ResolvePaths makes the file arguments named by keys (dotted for nested
// ones) absolute against the directory of rulebookPath when the file exists
// there, in place. The loader applies it to source and action arguments
// (SourceSpec.PathArgs, ActionSpec.PathArgs); `rulebook test` applies it to
// expected arguments, so both read paths the same way.
func ResolvePaths(rulebookPath string, args map[string]any, keys []string) {
	dir := filepath.Dir(rulebookPath)
	for _, key := range keys {
		parts := strings.Split(key, ".")
		m := args
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				m = nil
				break
			}
			m = next
		}
		if m == nil {
			continue
		}
		last := parts[len(parts)-1]
		v, ok := m[last].(string)
		if !ok || v == "" || filepath.IsAbs(v) || engine.IsTemplate(v) || strings.Contains(v, "${") {
			continue
		}
		cand := filepath.Join(dir, v)
		if _, err := os.Stat(cand); err == nil {
			if abs, err := filepath.Abs(cand); err == nil {
				m[last] = abs
			}
		}
	}
}

// argError reports a Check error at the offending key when it has a path,
// and each error of a joined one (errors.Join) at its own.
func (l *loader) argError(args *yaml.Node, where string, err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		// Several problems (errors.Join): each at its own key.
		for _, e := range joined.Unwrap() {
			l.argError(args, where, e)
		}
		return
	}
	var ae *engine.ArgError
	if errors.As(err, &ae) {
		n := keyNodeAt(args, ae.Path)
		w := where
		if len(ae.Path) > 0 {
			w = where + ": " + strings.Join(ae.Path, ".")
		}
		l.errf(n, w, "%v", ae.Err)
		return
	}
	l.errf(args, where, "%v", err)
}

// argWarning records an action's warning at the value it is about, and
// inside a string at the part it names.
func (l *loader) argWarning(args *yaml.Node, where string, w engine.ArgWarning) {
	n := nodeAt(args, w.Path)
	line, col := l.posIn(n, w.Column)
	if len(w.Path) > 0 {
		where += ": " + strings.Join(w.Path, ".")
	}
	l.warnAt(line, col, where, w.Message)
}

// warnAt records a warning at line and col, placed as errAt places errors.
func (l *loader) warnAt(line, col int, where, msg string) {
	l.warns = append(l.warns, &Error{File: l.file, Line: line, Column: col, Ruleset: l.ruleset, Rule: l.rule,
		Where: where, Message: msg, Severity: "warning", rulesetKnown: l.inRS})
}

// posIn is the line and column of the byte at the 1-based offset column
// inside the string of scalar n (0: n itself). Plain and quoted scalars on
// one line add the offset to the column (escapes in double quotes are not
// counted); in a literal block scalar (|) the line is counted and the
// column taken from the source line's indentation.
func (l *loader) posIn(n *yaml.Node, column int) (int, int) {
	if n == nil {
		return 0, 0
	}
	if column <= 0 || n.Kind != yaml.ScalarNode || column > len(n.Value)+1 {
		return n.Line, n.Column
	}
	before := n.Value[:column-1]
	switch {
	case n.Style&yaml.LiteralStyle != 0:
		line := n.Line + 1 + strings.Count(before, "\n")
		lineStart := strings.LastIndexByte(before, '\n') + 1
		// The block's indentation: the source line's, less the spaces the
		// value's line keeps.
		kept := len(n.Value[lineStart:]) - len(strings.TrimLeft(n.Value[lineStart:], " "))
		return line, l.indent(line) - kept + column - lineStart
	case n.Style&yaml.FoldedStyle != 0 || strings.Contains(before, "\n"):
		return n.Line, n.Column
	}
	col := n.Column + column - 1
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		col++
	}
	return n.Line, col
}

// indent is the number of leading spaces of the source's 1-based line.
func (l *loader) indent(line int) int {
	rest := l.src
	for i := 1; i < line; i++ {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			return 0
		}
		rest = rest[j+1:]
	}
	n := 0
	for n < len(rest) && rest[n] == ' ' {
		n++
	}
	return n
}

// keyNodeAt is nodeAt, but when the path ends at a mapping key it returns
// the key's node: errors about an argument point at its name.
func keyNodeAt(n *yaml.Node, path []string) *yaml.Node {
	if len(path) == 0 {
		return n
	}
	parent := nodeAt(n, path[:len(path)-1])
	if parent.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(parent.Content); i += 2 {
			if parent.Content[i].Value == path[len(path)-1] {
				return parent.Content[i]
			}
		}
	}
	return nodeAt(n, path)
}

// nodeAt follows a key path into a node; it stops at the deepest node found.
func nodeAt(n *yaml.Node, path []string) *yaml.Node {
	cur := n
	for _, p := range path {
		if cur == nil {
			return n
		}
		switch cur.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(cur.Content); i += 2 {
				if cur.Content[i].Value == p {
					cur = cur.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return cur
			}
		case yaml.SequenceNode:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(cur.Content) {
				return cur
			}
			cur = cur.Content[i]
		default:
			return cur
		}
	}
	return cur
}

// checkSecrets resolves the secret references in v, the arguments at n: one
// that does not resolve here is an error with Options.CheckSecrets, else a
// warning. The resolved values are not kept.
func (l *loader) checkSecrets(n *yaml.Node, v any, where string, path []string) {
	switch x := v.(type) {
	case string:
		if engine.HasSecretRef(x) {
			if err := engine.CheckSecretRefs(x); err != nil {
				at, w := nodeAt(n, path), where
				if len(path) > 0 {
					w += ": " + strings.Join(path, ".")
				}
				if l.opts.CheckSecrets {
					l.errf(at, w, "%v", err)
				} else {
					l.warnAt(at.Line, at.Column, w, fmt.Sprintf("%v (run and validate --strict refuse this)", err))
				}
			}
		}
	case map[string]any:
		for k, vv := range x {
			l.checkSecrets(n, vv, where, append(path[:len(path):len(path)], k))
		}
	case []any:
		for i, vv := range x {
			l.checkSecrets(n, vv, where, append(path[:len(path):len(path)], strconv.Itoa(i)))
		}
	}
}

// mode reads a `mode:` value.
func (l *loader) mode(n *yaml.Node) string {
	s, ok := l.str(n, "mode")
	if !ok {
		return engine.ModeAuto
	}
	switch s {
	case engine.ModeAuto, engine.ModeShadow, engine.ModeApprove:
		return s
	}
	l.errf(n, "mode", "want \"auto\", \"shadow\" or \"approve\", got %q", s)
	return engine.ModeAuto
}

// approval reads an `approval:` mapping over base (the ruleset's, or nil
// for the defaults).
func (l *loader) approval(n *yaml.Node, base *engine.ApprovalPolicy, vars map[string]any, defaults engine.Policy) *engine.ApprovalPolicy {
	p := &engine.ApprovalPolicy{Timeout: engine.DefaultApprovalTimeout, OnTimeout: engine.DecisionRejected}
	if base != nil {
		*p = *base
	}
	f := l.fields(n, "approval", allowedKeys(ApprovalSpec{}))
	if v := f["timeout"]; v != nil {
		if d, ok := l.duration(v, "approval: timeout"); ok {
			if d <= 0 {
				l.errf(v, "approval: timeout", "must be positive")
			} else {
				p.Timeout = d
			}
		}
	}
	if v := f["on_timeout"]; v != nil {
		if s, ok := l.str(v, "approval: on_timeout"); ok {
			switch s {
			case "reject":
				p.OnTimeout = engine.DecisionRejected
			case "approve":
				p.OnTimeout = engine.DecisionApproved
			default:
				l.errf(v, "approval: on_timeout", "want \"reject\" or \"approve\", got %q", s)
			}
		}
	}
	if v := f["notify"]; v != nil {
		// The notify action's templates also see vars.approval.
		nv := make(map[string]any, len(vars)+1)
		for k, x := range vars {
			nv[k] = x
		}
		nv["approval"] = engine.ApprovalVars("", "", "", "")
		comp := &engine.Compiler{Clock: l.opts.Clock, Vars: nv}
		if a := l.action(v, 0, comp, defaults); a != nil {
			if engine.IsBuiltinAction(a.Type) {
				l.errf(v, "approval: notify", "%q is an engine action; notify runs a dispatched one (http, run_command, a plugin, ...)", a.Type)
			} else {
				p.Notify = a
			}
		}
	}
	return p
}

// ruleMode sets a rule's mode and approval policy from its own keys over
// the ruleset's.
func (l *loader) ruleMode(n *yaml.Node, r *engine.Rule, mode string, approval *engine.ApprovalPolicy, vars map[string]any, defaults engine.Policy) {
	l.rule = r.Name
	r.Mode = mode
	if v := mapValue(n, "mode"); v != nil {
		r.Mode = l.mode(v)
	}
	if v := mapValue(n, "approval"); v != nil {
		if r.Mode != engine.ModeApprove {
			l.errf(v, "approval", "the rule's mode is %q; approval applies to mode approve", r.Mode)
		}
		approval = l.approval(v, approval, vars, defaults)
	}
	if r.Mode == engine.ModeApprove {
		if approval == nil {
			approval = &engine.ApprovalPolicy{Timeout: engine.DefaultApprovalTimeout, OnTimeout: engine.DecisionRejected}
		}
		r.Approval = approval
	}
	l.rule = ""
}

func (l *loader) rule1(n *yaml.Node, comp *engine.Compiler, defaults engine.Policy) *engine.Rule {
	l.rule = ""
	if v := mapValue(n, "name"); v != nil && v.Kind == yaml.ScalarNode {
		l.rule = v.Value
	}
	// The rule's keys in a map reused from rule to rule: only this
	// function reads it.
	if l.ruleFields == nil {
		l.ruleFields = map[string]*yaml.Node{}
	}
	clear(l.ruleFields)
	if !l.fieldsInto(l.ruleFields, n, "", allowedKeys(RuleSpec{})) {
		return nil
	}
	f := l.ruleFields
	r := &engine.Rule{Enabled: true}
	if v := f["name"]; v == nil {
		l.errf(n, "", "missing key \"name\"")
	} else if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		// `- name:` with nothing after it: old EDA examples have it;
		// ansible-rulebook rejects it too (RulenameEmptyException).
		l.errf(v, "name", "is empty: give the rule a name unique in its ruleset (ansible-rulebook rejects an unnamed rule too)")
	} else if s, ok := l.str(v, "name"); ok {
		if strings.TrimSpace(s) == "" {
			l.errf(v, "name", "must not be empty")
		}
		r.Name = s
		l.rule = s
	}
	if v := f["enabled"]; v != nil {
		r.Enabled, _ = l.boolean(v, "enabled")
	}
	if v := f["condition"]; v == nil {
		l.errf(n, "", "missing key \"condition\"")
	} else {
		l.condition(v, r, comp)
	}
	if v := f["throttle"]; v != nil {
		r.Throttle = l.throttle(v, comp)
	}
	var actionNodes []*yaml.Node
	switch a, as := f["action"], f["actions"]; {
	case a != nil && as != nil:
		l.errf(as, "actions", "give either action or actions, not both")
	case a != nil:
		actionNodes = []*yaml.Node{a}
	case as != nil:
		if as.Kind != yaml.SequenceNode {
			l.errf(as, "actions", "want a list of actions, got a %s", kindName(as))
		} else {
			actionNodes = as.Content
			if len(as.Content) == 0 {
				l.errf(as, "actions", "a rule needs at least one action")
			}
		}
	default:
		l.errf(n, "", "missing key \"actions\" (or \"action\")")
	}
	for i, an := range actionNodes {
		if a := l.action(an, i, comp, defaults); a != nil {
			r.Actions = append(r.Actions, a)
		}
	}
	return r
}

func (l *loader) condition(n *yaml.Node, r *engine.Rule, comp *engine.Compiler) {
	switch n.Kind {
	case yaml.ScalarNode:
		r.Kind = engine.Single
		c, name := l.compileCond(n, "condition", comp)
		if c != nil {
			r.Conditions = []*engine.Condition{c}
			if name == "" {
				name = "m_0"
			}
			r.Names = []string{name}
		}
	case yaml.MappingNode:
		f := l.fields(n, "condition", allowedKeys(ConditionSpec{}))
		if f == nil {
			return
		}
		var list *yaml.Node
		var kind string
		for _, k := range []string{"all", "any", "not_all"} {
			if v := f[k]; v != nil {
				if list != nil {
					l.errf(v, "condition", "give one of all, any or not_all, not %s and %s", kind, k)
					continue
				}
				list, kind = v, k
			}
		}
		if list == nil {
			l.errf(n, "condition", "want all, any or not_all")
			return
		}
		r.Kind = map[string]engine.RuleKind{"all": engine.All, "any": engine.Any, "not_all": engine.NotAll}[kind]
		if v := f["timeout"]; v != nil {
			r.Timeout, _ = l.duration(v, "condition: timeout")
			if r.Kind == engine.Any {
				l.errf(v, "condition: timeout", "timeout applies to all and not_all, not any")
			}
		} else if r.Kind == engine.NotAll {
			l.errf(n, "condition", "not_all needs a timeout")
		}
		if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
			l.errf(list, "condition: "+kind, "want a non-empty list of conditions")
			return
		}
		names := map[string]bool{}
		for i, cn := range list.Content {
			where := fmt.Sprintf("condition: %s[%d]", kind, i)
			if cn.Kind != yaml.ScalarNode {
				l.errf(cn, where, "want an expression, got a %s", kindName(cn))
				continue
			}
			c, name := l.compileCond(cn, where, comp)
			if name == "" {
				name = fmt.Sprintf("m_%d", i)
			}
			if names[name] {
				l.errf(cn, where, "match name %q is used twice", name)
			}
			names[name] = true
			if c != nil {
				r.Conditions = append(r.Conditions, c)
				r.Names = append(r.Names, name)
			}
		}
	default:
		l.errf(n, "condition", "want an expression or a mapping with all/any/not_all, got a %s", kindName(n))
	}
}

// templateError reports a template error (*engine.TemplateError: a path
// inside the arguments and a column inside its string) at its place in the
// file.
func (l *loader) templateError(argsNode *yaml.Node, where string, err error) {
	var te *engine.TemplateError
	if !errors.As(err, &te) {
		l.errf(argsNode, where, "%v", err)
		return
	}
	tn := nodeAt(argsNode, te.Path)
	line, col := tn.Line, tn.Column
	if tn.Kind == yaml.ScalarNode && te.Column > 0 {
		col += te.Column - 1
		if tn.Style == yaml.DoubleQuotedStyle || tn.Style == yaml.SingleQuotedStyle {
			col++
		}
	}
	if len(te.Path) > 0 {
		where += ": " + strings.Join(te.Path, ".")
	}
	l.errAt(line, col, where, te.Err.Error())
}

// exprPos maps a position inside an expression to the file.
func exprPos(n *yaml.Node, err error, offset int) (int, int) {
	var ee *engine.ExprError
	if !errors.As(err, &ee) || ee.Line == 0 {
		return n.Line, n.Column
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		return n.Line + ee.Line, ee.Column + n.Column + 1
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if ee.Line == 1 {
			return n.Line, n.Column + 1 + offset + ee.Column - 1
		}
	default:
		if ee.Line == 1 {
			return n.Line, n.Column + offset + ee.Column - 1
		}
	}
	return n.Line + ee.Line - 1, n.Column
}

func (l *loader) throttle(n *yaml.Node, comp *engine.Compiler) *engine.Throttle {
	f := l.fields(n, "throttle", allowedKeys(ThrottleSpec{}))
	if f == nil {
		return nil
	}
	th := &engine.Throttle{}
	kinds := 0
	for key, kind := range map[string]engine.ThrottleKind{"once_within": engine.OnceWithin, "once_after": engine.OnceAfter, "accumulate_within": engine.AccumulateWithin} {
		if v := f[key]; v != nil {
			kinds++
			th.Kind = kind
			th.Window, _ = l.duration(v, "throttle: "+key)
		}
	}
	if kinds != 1 {
		l.errf(n, "throttle", "give exactly one of once_within, once_after or accumulate_within")
		return nil
	}
	if v := f["threshold"]; v != nil {
		if th.Kind != engine.AccumulateWithin {
			l.errf(v, "throttle: threshold", "threshold goes with accumulate_within")
		}
		th.Threshold, _ = l.integer(v, "throttle: threshold", 1)
	} else if th.Kind == engine.AccumulateWithin {
		l.errf(n, "throttle", "accumulate_within needs a threshold")
	}
	if v := f["once_after_per_group"]; v != nil {
		th.PerGroup, _ = l.boolean(v, "throttle: once_after_per_group")
		if th.Kind != engine.OnceAfter {
			l.errf(v, "throttle: once_after_per_group", "once_after_per_group goes with once_after")
		}
	}
	if v := f["accumulate_sliding"]; v != nil {
		th.Sliding, _ = l.boolean(v, "throttle: accumulate_sliding")
		if th.Kind != engine.AccumulateWithin {
			l.errf(v, "throttle: accumulate_sliding", "accumulate_sliding goes with accumulate_within")
		}
	}
	groupKey := "group_by"
	if v := f["group_by_attributes"]; v != nil {
		// ansible-rulebook's name for group_by.
		if f["group_by"] != nil {
			l.errf(v, "throttle", "give group_by or group_by_attributes, not both")
		} else {
			f["group_by"], groupKey = v, "group_by_attributes"
		}
	}
	if v := f["group_by"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			l.errf(v, "throttle: "+groupKey, "want a list of expressions, got a %s", kindName(v))
		} else {
			for i, g := range v.Content {
				where := fmt.Sprintf("throttle: %s[%d]", groupKey, i)
				s, ok := l.str(g, where)
				if !ok {
					continue
				}
				src := s
				if !strings.Contains(s, "{{") {
					src = "{{ " + s + " }}"
				}
				t, err := comp.CompileTemplate(src)
				if err != nil {
					l.errf(g, where, "%v", err)
					continue
				}
				th.GroupBy = append(th.GroupBy, t)
			}
		}
	}
	return th
}

var policyKeys = allowedKeys(PolicySpec{})

func (l *loader) policy(f map[string]*yaml.Node, where string) engine.Policy {
	var p engine.Policy
	if v := f["timeout"]; v != nil {
		p.Timeout, _ = l.duration(v, where+": timeout")
	}
	if v := f["retries"]; v != nil {
		p.Retries, _ = l.integer(v, where+": retries", 0)
	}
	if v := f["delay"]; v != nil {
		p.Delay, _ = l.duration(v, where+": delay")
	}
	if v := f["max_delay"]; v != nil {
		p.MaxDelay, _ = l.duration(v, where+": max_delay")
	}
	return p
}

func (l *loader) action(n *yaml.Node, i int, comp *engine.Compiler, defaults engine.Policy) *engine.ActionDef {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		l.errf(n, "actions["+strconv.Itoa(i)+"]", "an action is a mapping with exactly one key, the action type (e.g. run_playbook: {...})")
		return nil
	}
	kn, argsNode := n.Content[0], n.Content[1]
	typ := eda.ActionName(strings.TrimPrefix(kn.Value, "ansible.eda."))
	where := l.actionWhere(i, typ)
	pos := append(append(l.posBuf[:0], l.file...), ':')
	pos = append(strconv.AppendInt(pos, int64(kn.Line), 10), ':')
	l.posBuf = strconv.AppendInt(pos, int64(kn.Column), 10)
	a := &engine.ActionDef{Type: typ, Pos: string(l.posBuf)}
	var spec engine.ActionSpec
	builtin := engine.IsBuiltinAction(typ)
	if !builtin {
		var ok bool
		if spec, ok = l.opts.Registry.Action(typ); !ok {
			all := append(append([]string{}, engine.BuiltinActions...), l.opts.Registry.ActionTypes()...)
			l.errf(kn, fmt.Sprintf("actions[%d]", i), "unknown action %q%s", typ, suggest(typ, all))
			return nil
		}
	}
	args := map[string]any{}
	if argsNode.Kind == yaml.MappingNode {
		v, ok := l.value(argsNode, where)
		if !ok {
			return nil
		}
		args, _ = v.(map[string]any)
	} else if !(argsNode.Kind == yaml.ScalarNode && argsNode.Tag == "!!null") {
		l.errf(argsNode, where, "want a mapping of arguments, got a %s", kindName(argsNode))
		return nil
	}
	// Bound every template before anything reads it: an action's Check
	// and Warn may split or parse templates themselves, and expr's parser
	// would overflow the stack on a deeply nested one.
	if err := engine.CheckTemplateBounds(args); err != nil {
		l.templateError(argsNode, where, err)
		return nil
	}
	if v := mapValue(argsNode, "var_root"); v != nil && varRootActions[typ] {
		a.VarRoot = l.varRoot(v, where+": var_root")
		delete(args, "var_root")
	}
	if l.eda {
		// EDA's action arguments are Jinja2 (dialect.go).
		before := len(l.errs)
		args, _ = l.jinjaArgs(argsNode, args, where, nil, comp).(map[string]any)
		if len(l.errs) > before {
			return nil
		}
	} else {
		args = edaFallbackArgs(args, comp).(map[string]any)
	}
	if builtin {
		l.checkBuiltin(typ, argsNode, args, where)
	} else {
		a.Policy = defaults
		pf := map[string]*yaml.Node{}
		for k := range policyKeys {
			if v := mapValue(argsNode, k); v != nil {
				pf[k] = v
				delete(args, k)
			}
		}
		p := l.policy(pf, where)
		if pf["timeout"] != nil {
			a.Policy.Timeout = p.Timeout
		}
		if pf["retries"] != nil {
			a.Policy.Retries = p.Retries
		}
		if pf["delay"] != nil {
			a.Policy.Delay = p.Delay
		}
		// EDA's run_playbook/run_module/run_*_template `retry: true`:
		// retry once on failure, unless retries says how often.
		if v := mapValue(argsNode, "retry"); v != nil {
			delete(args, "retry")
			if retry, ok := l.boolean(v, where+": retry"); ok && retry && pf["retries"] == nil && a.Policy.Retries < 1 {
				a.Policy.Retries = 1
			}
		}
		if pf["max_delay"] != nil {
			a.Policy.MaxDelay = p.MaxDelay
		}
		if v := pf["lock"]; v != nil {
			// A lock is a key: literal text ("deploy"), or a template
			// ("{{ event.meta.hosts[0] }}").
			if s, ok := l.str(v, where+": lock"); ok {
				t, err := comp.CompileTemplate(s)
				if err != nil {
					l.errf(v, where+": lock", "%v", err)
				} else {
					a.Lock = t
				}
			}
		}
		l.resolvePaths(args, spec.PathArgs)
		checked := true
		if spec.Check != nil {
			if err := spec.Check(args); err != nil {
				l.argError(argsNode, where, err)
				checked = false
			}
		}
		if checked && spec.Warn != nil {
			for _, w := range spec.Warn(args) {
				l.argWarning(argsNode, where, w)
			}
		}
		l.checkSecrets(argsNode, args, where, nil)
	}
	t, err := comp.CompileTemplate(args)
	if err != nil {
		l.templateError(argsNode, where, err)
		return nil
	}
	if esc, changed := escapeURLArgs(args, spec.URLArgs); changed {
		// Compiled first as written, so that errors point into the
		// rulebook's text; this compiles too.
		if t, err = comp.CompileTemplate(esc); err != nil {
			l.errf(argsNode, where, "%v", err)
			return nil
		}
	}
	a.Args = t
	return a
}

// actionWhere is "actions[i]: typ", made once per index and type: the
// rules of a large rulebook mostly share their actions' types.
func (l *loader) actionWhere(i int, typ string) string {
	k := actionKey{i, typ}
	if w, ok := l.wheres[k]; ok {
		return w
	}
	if l.wheres == nil {
		l.wheres = map[actionKey]string{}
	}
	w := "actions[" + strconv.Itoa(i) + "]: " + typ
	l.wheres[k] = w
	return w
}

type actionKey struct {
	i   int
	typ string
}

// escapeURLArgs returns args with the URL arguments named by keys (dotted
// for nested ones) rewritten by engine.EscapeURLTemplate, and whether any
// changed; args itself is not modified.
func escapeURLArgs(args map[string]any, keys []string) (map[string]any, bool) {
	changed := false
	for _, key := range keys {
		parts := strings.Split(key, ".")
		s, ok := lookupString(args, parts)
		if !ok {
			continue
		}
		esc := engine.EscapeURLTemplate(s)
		if esc == s {
			continue
		}
		if !changed {
			args = copyMaps(args).(map[string]any)
			changed = true
		}
		m := args
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = esc
	}
	return args, changed
}

func lookupString(m map[string]any, parts []string) (string, bool) {
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return "", false
		}
		m = next
	}
	s, ok := m[parts[len(parts)-1]].(string)
	return s, ok
}

// copyMaps copies the maps of v (lists and scalars are shared).
func copyMaps(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = copyMaps(e)
	}
	return out
}

// varRootActions take EDA's var_root, which the engine applies.
var varRootActions = map[string]bool{engine.ActionPrintEvent: true, "run_playbook": true, "run_module": true}

// varRoot reads var_root: a key path ("kafka.message"), or a mapping of
// key paths to the names their values take among the events of a
// multi-event match, in order.
func (l *loader) varRoot(n *yaml.Node, where string) []engine.VarRoot {
	path := func(n *yaml.Node) ([]string, bool) {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" || n.Value == "" {
			l.errf(n, where, "want a key path like kafka.message, got %q", n.Value)
			return nil, false
		}
		keys := strings.Split(n.Value, ".")
		if slices.Contains(keys, "") {
			l.errf(n, where, "key path %q has an empty key", n.Value)
			return nil, false
		}
		return keys, true
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if p, ok := path(n); ok {
			return []engine.VarRoot{{Path: p, Name: n.Value}}
		}
	case yaml.MappingNode:
		var out []engine.VarRoot
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p, ok := path(k)
			if !ok {
				continue
			}
			if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
				l.errf(v, where+": "+k.Value, "want the name its value takes in events, got a %s", kindName(v))
				continue
			}
			out = append(out, engine.VarRoot{Path: p, Name: v.Value})
		}
		if len(out) == 0 && len(n.Content) == 0 {
			l.errf(n, where, "want a key path or a non-empty mapping of key paths to names")
		}
		return out
	default:
		l.errf(n, where, "want a key path or a mapping of key paths to names, got a %s", kindName(n))
	}
	return nil
}

var builtinArgs = map[string]map[string]bool{
	engine.ActionDebug:       {"msg": true, "var": true},
	engine.ActionPrintEvent:  {"pretty": true, "var_root": true},
	engine.ActionSetFact:     {"fact": true, "ruleset": true},
	engine.ActionRetractFact: {"fact": true, "ruleset": true, "partial": true},
	engine.ActionPostEvent:   {"event": true, "ruleset": true},
	engine.ActionShutdown:    {"message": true, "delay": true, "kind": true},
	engine.ActionNone:        {},
}

func (l *loader) checkBuiltin(typ string, n *yaml.Node, args map[string]any, where string) {
	allowed := builtinArgs[typ]
	for k := range args {
		// ansible-rulebook's debug takes any arguments (its docs pass
		// first/second/... to show matches).
		if !allowed[k] && !(l.eda && typ == engine.ActionDebug) {
			l.errf(keyNodeAt(n, []string{k}), where, "unknown key %q%s", k, suggest(k, sortedKeys(allowed)))
		}
	}
	switch typ {
	case engine.ActionSetFact, engine.ActionRetractFact:
		if _, ok := args["fact"].(map[string]any); !ok && !engine.IsTemplate(args["fact"]) {
			l.errf(n, where, "needs fact: a mapping")
		}
	case engine.ActionPostEvent:
		if _, ok := args["event"].(map[string]any); !ok && !engine.IsTemplate(args["event"]) {
			l.errf(n, where, "needs event: a mapping")
		}
	case engine.ActionShutdown:
		if d, ok := args["delay"]; ok && !engine.IsTemplate(d) {
			if _, err := engine.ParseDuration(d); err != nil {
				l.errf(nodeAt(n, []string{"delay"}), where+": delay", "%v", err)
			}
		}
		if k, ok := args["kind"]; ok && k != "graceful" && k != "now" {
			l.errf(nodeAt(n, []string{"kind"}), where+": kind", "want \"graceful\" or \"now\", got %v", k)
		}
	case engine.ActionPrintEvent:
		if p, ok := args["pretty"]; ok {
			if _, isBool := p.(bool); !isBool {
				l.errf(nodeAt(n, []string{"pretty"}), where+": pretty", "want true or false")
			}
		}
	}
	if rs, ok := args["ruleset"].(string); ok && !engine.IsTemplate(rs) {
		l.pendingRefs = append(l.pendingRefs, rulesetRef{name: rs, node: nodeAt(n, []string{"ruleset"}), rs: l.ruleset, rule: l.rule, at: where + ": ruleset"})
	}
}

// suggest returns `; did you mean "x"?` for a close match.
func suggest(got string, options []string) string {
	best, bestD := "", 3
	for _, o := range options {
		if d := editDistance(got, o); d < bestD {
			best, bestD = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
