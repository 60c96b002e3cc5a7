package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"github.com/rs/zerolog"
)

// Event filters transform a source's events before they are journaled, as
// Event-Driven Ansible's `filters:` do: each filter of a source's ordered
// list gets the output of the previous one. They see the whole event
// (meta.headers included); the keys the engine owns (meta.uuid, meta.source,
// meta.received_at) are put back afterwards, so no filter can lose them.

// FilterConfig is one entry of a source's `filters:` list.
type FilterConfig struct {
	// Name is the filter's name without an `eda.builtin.` or
	// `ansible.eda.` prefix.
	Name string `json:"name"`
	// Args are the filter's arguments as decoded from YAML.
	Args map[string]any `json:"args,omitempty"`
}

// FilterNames are the filters a source may list.
var FilterNames = []string{"dashes_to_underscores", "event_splitter", "insert_hosts_to_meta", "json_filter", "normalize_keys", "set"}

// FilterName strips the collection prefixes EDA rulebooks use
// (`eda.builtin.`, `ansible.eda.`) from a filter name.
func FilterName(name string) string {
	for _, p := range []string{"eda.builtin.", "ansible.eda."} {
		if strings.HasPrefix(name, p) {
			return name[len(p):]
		}
	}
	return name
}

// FilterChain is a source's compiled filter list. It is safe for concurrent
// use.
type FilterChain struct {
	filters []compiledFilter
	log     zerolog.Logger
}

type compiledFilter struct {
	name string
	// apply transforms one event into zero or more events.
	apply func(ev Event, log zerolog.Logger) ([]Event, error)
}

// FilterError says that a filter refused an event (a path it was told to
// require is missing, hosts that are not strings): the event is not
// accepted, and sending it again will not help.
type FilterError struct {
	// Index is the filter's position in the source's list, Name its name.
	Index int
	Name  string
	Err   error
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("filters[%d] (%s): %v", e.Index, e.Name, e.Err)
}

func (e *FilterError) Unwrap() error { return e.Err }

// IsFilterError reports whether err is a *FilterError and returns it.
func IsFilterError(err error) (*FilterError, bool) {
	var fe *FilterError
	ok := errors.As(err, &fe)
	return fe, ok
}

// CompileFilters checks and compiles a filter list. An error names the
// filter's index in *FilterError, with an *ArgError inside when an argument
// is at fault, so the loader can point at it.
func (c *Compiler) CompileFilters(list []FilterConfig) (*FilterChain, error) {
	chain := &FilterChain{log: zerolog.Nop()}
	for i, fc := range list {
		name := FilterName(fc.Name)
		f, err := c.compileFilter(name, fc.Args)
		if err != nil {
			return nil, &FilterError{Index: i, Name: name, Err: err}
		}
		chain.filters = append(chain.filters, compiledFilter{name: name, apply: f})
	}
	return chain, nil
}

// WithLog returns the chain logging to log (a missing path that EDA's
// filters log, a key a filter replaced).
func (fc *FilterChain) WithLog(log zerolog.Logger) *FilterChain {
	out := *fc
	out.log = log
	return &out
}

// Len is the number of filters.
func (fc *FilterChain) Len() int {
	if fc == nil {
		return 0
	}
	return len(fc.filters)
}

// Apply runs ev through the filters, in order. ev is changed in place. It
// returns the resulting events (none, one, or several when a filter splits
// the event), each with the engine's meta keys of ev: an event that was not
// split keeps its meta.uuid; split events get IDs derived from it, so a
// redelivered event splits into the same IDs.
func (fc *FilterChain) Apply(ev Event) ([]Event, error) {
	if fc.Len() == 0 {
		return []Event{ev}, nil
	}
	orig, _ := ev[MetaKey].(map[string]any)
	var uuid, source, received any
	if orig != nil {
		uuid, source, received = orig[MetaUUID], orig[MetaSource], orig[MetaReceivedAt]
	}
	events := []Event{ev}
	split := false
	for i, f := range fc.filters {
		var next []Event
		for _, e := range events {
			out, err := f.apply(e, fc.log)
			if err != nil {
				return nil, &FilterError{Index: i, Name: f.name, Err: err}
			}
			if len(out) != 1 {
				split = true
			}
			next = append(next, out...)
		}
		if f.name == "event_splitter" {
			split = true
		}
		events = next
	}
	for i, e := range events {
		meta, _ := e[MetaKey].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			e[MetaKey] = meta
		}
		if source != nil {
			meta[MetaSource] = source
		}
		if received != nil {
			meta[MetaReceivedAt] = received
		}
		switch id, _ := uuid.(string); {
		case id == "":
			if _, ok := meta[MetaUUID].(string); !ok {
				meta[MetaUUID] = NewID()
			}
		case split:
			meta[MetaUUID] = derivedID(id + "/" + strconv.Itoa(i))
		default:
			meta[MetaUUID] = id
		}
	}
	return events, nil
}

func (c *Compiler) compileFilter(name string, args map[string]any) (func(Event, zerolog.Logger) ([]Event, error), error) {
	if args == nil {
		args = map[string]any{}
	}
	switch name {
	case "json_filter":
		return compileJSONFilter(args)
	case "dashes_to_underscores":
		if err := onlyKeys(args, "overwrite"); err != nil {
			return nil, err
		}
		overwrite, err := boolArg(args, "overwrite", true)
		if err != nil {
			return nil, err
		}
		return func(ev Event, _ zerolog.Logger) ([]Event, error) {
			dashesToUnderscores(ev, overwrite)
			return []Event{ev}, nil
		}, nil
	case "normalize_keys":
		if err := onlyKeys(args, "overwrite"); err != nil {
			return nil, err
		}
		overwrite, err := boolArg(args, "overwrite", true)
		if err != nil {
			return nil, err
		}
		return func(ev Event, _ zerolog.Logger) ([]Event, error) {
			out, _ := normalizeKeys(ev, overwrite).(map[string]any)
			return []Event{out}, nil
		}, nil
	case "insert_hosts_to_meta":
		return compileInsertHosts(args)
	case "event_splitter":
		return compileSplitter(args)
	case "set":
		return c.compileSet(args)
	}
	return nil, fmt.Errorf("unknown filter %q (want one of %s)", name, strings.Join(FilterNames, ", "))
}

func onlyKeys(args map[string]any, allowed ...string) error {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			if len(allowed) == 0 {
				return ArgErrorf([]string{k}, "unknown key %q: this filter takes no arguments", k)
			}
			return ArgErrorf([]string{k}, "unknown key %q (want %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func boolArg(args map[string]any, key string, def bool) (bool, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, ArgErrorf([]string{key}, "want true or false, got %s", TypeName(v))
	}
	return b, nil
}

func stringArg(args map[string]any, key, def string) (string, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", ArgErrorf([]string{key}, "want a string, got %s", TypeName(v))
	}
	return s, nil
}

// --- json_filter -----------------------------------------------------------

func compileJSONFilter(args map[string]any) (func(Event, zerolog.Logger) ([]Event, error), error) {
	if err := onlyKeys(args, "exclude_keys", "include_keys"); err != nil {
		return nil, err
	}
	patterns := func(key string) ([]*regexp.Regexp, error) {
		v, ok := args[key]
		if !ok || v == nil {
			return nil, nil
		}
		list, ok := v.([]any)
		if !ok {
			return nil, ArgErrorf([]string{key}, "want a list of key names or patterns, got %s", TypeName(v))
		}
		var out []*regexp.Regexp
		for i, p := range list {
			s, ok := p.(string)
			if !ok {
				return nil, ArgErrorf([]string{key, strconv.Itoa(i)}, "want a key name or pattern, got %s", TypeName(p))
			}
			re, err := fnmatchRegexp(s)
			if err != nil {
				return nil, ArgErrorf([]string{key, strconv.Itoa(i)}, "bad pattern %q: %v", s, err)
			}
			out = append(out, re)
		}
		return out, nil
	}
	include, err := patterns("include_keys")
	if err != nil {
		return nil, err
	}
	exclude, err := patterns("exclude_keys")
	if err != nil {
		return nil, err
	}
	return func(ev Event, _ zerolog.Logger) ([]Event, error) {
		jsonFilter(ev, include, exclude)
		return []Event{ev}, nil
	}, nil
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// jsonFilter removes, at any depth of nested mappings, the keys that match
// an exclude pattern and no include pattern. Like EDA's json_filter it does
// not look inside lists.
func jsonFilter(m map[string]any, include, exclude []*regexp.Regexp) {
	for k, v := range m {
		if !anyMatch(include, k) && anyMatch(exclude, k) {
			delete(m, k)
			continue
		}
		if sub, ok := v.(map[string]any); ok {
			jsonFilter(sub, include, exclude)
		}
	}
}

// fnmatchRegexp translates a shell pattern as Python's fnmatch reads it
// (*, ?, [seq], [!seq]) into an anchored regular expression.
func fnmatchRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			body := p[i+1 : j]
			neg := strings.HasPrefix(body, "!")
			if neg {
				body = body[1:]
			}
			body = strings.ReplaceAll(body, `\`, `\\`)
			if neg {
				b.WriteString(`[^` + body + `]`)
			} else {
				b.WriteString(`[` + body + `]`)
			}
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	return regexp.Compile(b.String())
}

// --- dashes_to_underscores and normalize_keys -------------------------------

// dashesToUnderscores renames keys with dashes, at any depth (lists
// included), to the same key with underscores. A key that already exists
// under the new name is replaced when overwrite is set; otherwise the
// dashed key is dropped, as in EDA.
func dashesToUnderscores(v any, overwrite bool) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			val := x[k]
			dashesToUnderscores(val, overwrite)
			if !strings.Contains(k, "-") {
				continue
			}
			nk := strings.ReplaceAll(k, "-", "_")
			delete(x, k)
			if _, exists := x[nk]; !exists || overwrite {
				x[nk] = val
			}
		}
	case []any:
		for _, e := range x {
			dashesToUnderscores(e, overwrite)
		}
	}
}

var notKeyChars = regexp.MustCompile(`[^0-9a-zA-Z_]+`)

// normalizeKeys replaces every run of characters other than letters, digits
// and underscore in keys, at any depth, by one underscore. On a collision
// with a key that was already normal, overwrite says whether the renamed
// key's value wins (EDA's default) or is dropped.
func normalizeKeys(v any, overwrite bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		var renamed []string
		for k, val := range x {
			if notKeyChars.MatchString(k) {
				renamed = append(renamed, k)
				continue
			}
			out[k] = normalizeKeys(val, overwrite)
		}
		sort.Strings(renamed)
		for _, k := range renamed {
			nk := notKeyChars.ReplaceAllString(k, "_")
			if _, wasNormal := x[nk]; wasNormal && !overwrite {
				continue
			}
			out[nk] = normalizeKeys(x[k], overwrite)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeKeys(e, overwrite)
		}
		return out
	}
	return v
}

// --- insert_hosts_to_meta ----------------------------------------------------

func compileInsertHosts(args map[string]any) (func(Event, zerolog.Logger) ([]Event, error), error) {
	if err := onlyKeys(args, "host_path", "host_separator", "log_error", "path_separator", "raise_error"); err != nil {
		return nil, err
	}
	hostPath, err := stringArg(args, "host_path", "")
	if err != nil {
		return nil, err
	}
	pathSep, err := stringArg(args, "path_separator", ".")
	if err != nil {
		return nil, err
	}
	if pathSep == "" {
		return nil, ArgErrorf([]string{"path_separator"}, "must not be empty")
	}
	hostSep, err := stringArg(args, "host_separator", "")
	if err != nil {
		return nil, err
	}
	raise, err := boolArg(args, "raise_error", false)
	if err != nil {
		return nil, err
	}
	logErr, err := boolArg(args, "log_error", true)
	if err != nil {
		return nil, err
	}
	return func(ev Event, log zerolog.Logger) ([]Event, error) {
		if hostPath == "" {
			return []Event{ev}, nil
		}
		v, ok := getPath(ev, strings.Split(hostPath, pathSep))
		if !ok {
			if logErr {
				log.Error().Str("host_path", hostPath).Str("event_id", EventID(ev)).Msg("event has no host_path")
			}
			if raise {
				return nil, fmt.Errorf("event does not contain %q", hostPath)
			}
			return []Event{ev}, nil
		}
		var hosts []any
		switch h := v.(type) {
		case string:
			if hostSep != "" {
				for _, s := range strings.Split(h, hostSep) {
					hosts = append(hosts, s)
				}
			} else {
				hosts = []any{h}
			}
		case []any:
			for _, e := range h {
				if _, ok := e.(string); !ok {
					return nil, fmt.Errorf("%q holds %s, which is not a valid hostname", hostPath, TypeName(e))
				}
			}
			hosts = append(hosts, h...)
		default:
			return nil, fmt.Errorf("%q holds %s, which is not a valid hostname", hostPath, TypeName(v))
		}
		Meta(ev)[MetaHosts] = hosts
		return []Event{ev}, nil
	}, nil
}

// getPath follows keys through mappings and lists (a number indexes a
// list), as dpath does for EDA's filters.
func getPath(root any, keys []string) (any, bool) {
	cur := root
	for _, k := range keys {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[k]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// --- event_splitter ----------------------------------------------------------

func compileSplitter(args map[string]any) (func(Event, zerolog.Logger) ([]Event, error), error) {
	if err := onlyKeys(args, "attributes_key_map", "extras", "raise_error", "splitter_key"); err != nil {
		return nil, err
	}
	key, err := stringArg(args, "splitter_key", "")
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, ArgErrorf(nil, "missing key \"splitter_key\" (the dotted path of the list to split)")
	}
	raise, err := boolArg(args, "raise_error", false)
	if err != nil {
		return nil, err
	}
	mapping := func(k string) (map[string]any, error) {
		v, ok := args[k]
		if !ok || v == nil {
			return nil, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, ArgErrorf([]string{k}, "want a mapping, got %s", TypeName(v))
		}
		return m, nil
	}
	attrs, err := mapping("attributes_key_map")
	if err != nil {
		return nil, err
	}
	for k, v := range attrs {
		if _, ok := v.(string); !ok {
			return nil, ArgErrorf([]string{"attributes_key_map", k}, "want a dotted path, got %s", TypeName(v))
		}
	}
	extras, err := mapping("extras")
	if err != nil {
		return nil, err
	}
	attrKeys := make([]string, 0, len(attrs))
	for k := range attrs {
		attrKeys = append(attrKeys, k)
	}
	sort.Strings(attrKeys)
	return func(ev Event, log zerolog.Logger) ([]Event, error) {
		v, ok := getPath(ev, strings.Split(key, "."))
		if !ok {
			if raise {
				return nil, fmt.Errorf("splitter_key %q is not in the event", key)
			}
			log.Warn().Str("splitter_key", key).Str("event_id", EventID(ev)).Msg("splitter_key missing: event left intact")
			return []Event{ev}, nil
		}
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("splitter_key %q holds %s, not a list", key, TypeName(v))
		}
		add := map[string]any{}
		for _, k := range attrKeys {
			val, ok := getPath(ev, strings.Split(attrs[k].(string), "."))
			if !ok {
				log.Warn().Str("attribute", k).Str("path", attrs[k].(string)).Msg("attributes_key_map path missing: skipped")
				continue
			}
			add[k] = val
		}
		for k, val := range extras {
			add[k] = val
		}
		out := make([]Event, 0, len(list))
		for i, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.%d is %s, not a mapping", key, i, TypeName(item))
			}
			one, _ := deepCopy(m).(map[string]any)
			for k, val := range add {
				one[k] = deepCopy(val)
			}
			out = append(out, one)
		}
		return out, nil
	}, nil
}

// --- set ---------------------------------------------------------------------

type setTarget struct {
	path []string
	src  string
	prog *vm.Program
}

// compileSet compiles `set: {dotted.path: expression}`. An expression reads
// the event's top-level keys by name (`payload.hosts`) or through `event`,
// and has the conditions' functions. A path the event lacks gives null, and
// a null result leaves the target as it is.
func (c *Compiler) compileSet(args map[string]any) (func(Event, zerolog.Logger) ([]Event, error), error) {
	if len(args) == 0 {
		return nil, ArgErrorf(nil, "want a mapping of dotted.key: expression")
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cfg := c.config()
	var targets []setTarget
	for _, k := range keys {
		path := strings.Split(k, ".")
		for _, p := range path {
			if p == "" {
				return nil, ArgErrorf([]string{k}, "bad key path %q", k)
			}
		}
		if path[0] == MetaKey && len(path) > 1 {
			switch path[1] {
			case MetaUUID, MetaSource, MetaReceivedAt:
				return nil, ArgErrorf([]string{k}, "meta.%s is set by the engine", path[1])
			}
		}
		if len(path) == 1 && path[0] == MetaKey {
			return nil, ArgErrorf([]string{k}, "meta is owned by the engine: set a key inside it")
		}
		src, ok := args[k].(string)
		if !ok || strings.TrimSpace(src) == "" {
			return nil, ArgErrorf([]string{k}, "want an expression (a string), got %s", TypeName(args[k]))
		}
		tree, err := parser.ParseWithConfig(src, cfg)
		if err != nil {
			return nil, &ArgError{Path: []string{k}, Err: exprError(err, file.NewSource(src))}
		}
		declared := map[string]bool{}
		collectDeclared(tree.Node, declared)
		bindEvent(&tree.Node, cfg.Functions, cfg.Builtins, declared)
		rewrite(&tree.Node, true)
		prog, err := compileNode(tree.Node, tree.Source, cfg, false)
		if err != nil {
			return nil, &ArgError{Path: []string{k}, Err: err}
		}
		targets = append(targets, setTarget{path: path, src: src, prog: prog})
	}
	return func(ev Event, _ zerolog.Logger) ([]Event, error) {
		var machine vm.VM
		env := &Env{Event: ev, Fact: ev}
		vals := make([]any, len(targets))
		for i, t := range targets {
			v, err := machine.Run(t.prog, env)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %w", strings.Join(t.path, "."), t.src, err)
			}
			vals[i] = normalize(v)
		}
		for i, t := range targets {
			if vals[i] == nil {
				continue
			}
			if err := setPath(ev, t.path, deepCopy(vals[i])); err != nil {
				return nil, err
			}
		}
		return []Event{ev}, nil
	}, nil
}

func collectDeclared(n ast.Node, out map[string]bool) {
	if d, ok := n.(*ast.VariableDeclaratorNode); ok {
		out[d.Name] = true
	}
	walkChildren(n, func(c *ast.Node) { collectDeclared(*c, out) })
}

// bindEvent makes a bare name that is no function, builtin, declared
// variable or root name read the event's top-level key of that name.
func bindEvent[F any, B any](node *ast.Node, funcs map[string]F, builtins map[string]B, declared map[string]bool) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		_, isFunc := funcs[n.Value]
		_, isBuiltin := builtins[n.Value]
		if isFunc || isBuiltin || declared[n.Value] || rootNames[n.Value] {
			return
		}
		ast.Patch(node, &ast.MemberNode{Node: &ast.IdentifierNode{Value: "event"}, Property: &ast.StringNode{Value: n.Value}})
		return
	case *ast.CallNode:
		for i := range n.Arguments {
			bindEvent(&n.Arguments[i], funcs, builtins, declared)
		}
		return
	case *ast.MemberNode:
		bindEvent(&n.Node, funcs, builtins, declared)
		if _, lit := n.Property.(*ast.StringNode); !lit {
			bindEvent(&n.Property, funcs, builtins, declared)
		}
		return
	}
	walkChildren(*node, func(c *ast.Node) { bindEvent(c, funcs, builtins, declared) })
}

func setPath(ev Event, path []string, v any) error {
	m := map[string]any(ev)
	for i, p := range path[:len(path)-1] {
		next, ok := m[p]
		if !ok || next == nil {
			nm := map[string]any{}
			m[p] = nm
			m = nm
			continue
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("cannot set %q: %q holds %s, not a mapping", strings.Join(path, "."), strings.Join(path[:i+1], "."), TypeName(next))
		}
		m = nm
	}
	m[path[len(path)-1]] = v
	return nil
}

// --- the emitter -------------------------------------------------------------

// FilterEmitter returns an Emitter that runs each entry's event through
// chain before handing it to out. A split event becomes one entry per part,
// with the part's index appended to its dedupe key; the entry's Position
// goes with its last part. The outcome of an entry is Accepted when any of
// its parts was (or when the filters left nothing to store), else the first
// part's outcome. An event a filter refuses fails the call with a
// *FilterError: nothing of it is stored.
func FilterEmitter(out Emitter, chain *FilterChain) Emitter {
	if chain.Len() == 0 {
		return out
	}
	return &filterEmitter{out: out, chain: chain}
}

type filterEmitter struct {
	out   Emitter
	chain *FilterChain
}

func (f *filterEmitter) Emit(ctx context.Context, src SourceRef, entries []Entry) ([]Outcome, error) {
	expanded := make([]Entry, 0, len(entries))
	spans := make([][2]int, len(entries))
	for i, en := range entries {
		evs, err := f.chain.Apply(en.Event)
		if err != nil {
			return nil, err
		}
		start := len(expanded)
		for j, ev := range evs {
			part := en
			part.Event = ev
			if len(evs) > 1 && en.DedupeKey != "" {
				part.DedupeKey = en.DedupeKey + "#" + strconv.Itoa(j)
			}
			if j < len(evs)-1 {
				part.Position = ""
			}
			expanded = append(expanded, part)
		}
		spans[i] = [2]int{start, len(expanded)}
	}
	outcomes := make([]Outcome, len(entries))
	if len(expanded) == 0 {
		return outcomes, nil
	}
	res, err := f.out.Emit(ctx, src, expanded)
	if err != nil {
		return nil, err
	}
	for i, sp := range spans {
		if sp[0] == sp[1] {
			continue
		}
		outcomes[i] = res[sp[0]]
		for _, o := range res[sp[0]:sp[1]] {
			if o == Accepted {
				outcomes[i] = Accepted
			}
		}
	}
	return outcomes, nil
}

// Position implements PositionReader when out does.
func (f *filterEmitter) Position(ctx context.Context, src SourceRef) (string, error) {
	return LastPosition(ctx, f.out, src)
}
