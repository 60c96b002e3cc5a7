package httpingest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Base is the plumbing a source served through a Hub shares with the others:
// its hub, name, clock, logger and reference. A source keeps one as a field,
// builds it with NewBase and serves with Serve.
type Base struct {
	Hub   *Hub
	Name  string
	Clock engine.Clock
	Log   zerolog.Logger
	Ref   engine.SourceRef
	// kind is the source type as written in errors (the package's Type, also
	// when sc.Type names an alias).
	kind string
}

// NewBase checks hub and fills in the defaults of sc for a source of type
// kind: the system clock, kind as the type and the type as the name.
func NewBase(hub *Hub, sc engine.SourceConfig, kind string) (Base, error) {
	if hub == nil {
		return Base{}, fmt.Errorf("%s source needs an http hub", kind)
	}
	clock := sc.Clock
	if clock == nil {
		clock = engine.SystemClock{}
	}
	typ := sc.Type
	if typ == "" {
		typ = kind
	}
	name := sc.Name
	if name == "" {
		name = typ
	}
	return Base{
		Hub:   hub,
		Name:  name,
		Clock: clock,
		Log:   sc.Log,
		Ref:   engine.SourceRef{Ruleset: sc.Ruleset, Name: name, Type: typ},
		kind:  kind,
	}, nil
}

// Serve serves the paths of hs until ctx ends, turning each accepted request
// into entries with build and emitting them through out. It returns an error
// only when the listener cannot be opened or shared.
func (b *Base) Serve(ctx context.Context, out engine.Emitter, hs Settings, build func(*Request) ([]engine.Entry, error)) error {
	ep := hs.Endpoint(b.Ref, b.Clock.Now, b.Log, build)
	ep.Out = out
	ep.OnReject = b.Hub.OnReject()
	if err := b.Hub.Serve(ctx, hs.Listener, hs.Paths, ep); err != nil {
		return fmt.Errorf("%s source %q: %w", b.kind, b.Name, err)
	}
	return nil
}

// OnlyKeys returns an *engine.ArgError at path for the first key of m (in
// sorted order) that is not one of keys, listing the known keys sorted.
func OnlyKeys(path []string, m map[string]any, keys ...string) error {
	sorted := append([]string{}, keys...)
	sort.Strings(sorted)
	return unknownKey(path, m, sorted)
}

// unknownKey is OnlyKeys listing keys in the order given.
func unknownKey(path []string, m map[string]any, keys []string) error {
	var unknown []string
outer:
	for k := range m {
		for _, ok := range keys {
			if k == ok {
				continue outer
			}
		}
		unknown = append(unknown, k)
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return engine.ArgErrorf(append(append([]string{}, path...), unknown[0]), "unknown key %q (known: %s)", unknown[0], strings.Join(keys, ", "))
}

// ValueKind names the kind of a decoded JSON value for an error message:
// "null", "a string", "a boolean", "a number", "a list" or "an object".
func ValueKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// DescribeValue quotes a string value (cut to 64 bytes), says "missing" for
// nil and names the kind of anything else.
func DescribeValue(v any) string {
	if s, ok := v.(string); ok {
		if len(s) > 64 {
			s = s[:64] + "..."
		}
		return strconv.Quote(s)
	}
	if v == nil {
		return "missing"
	}
	return ValueKind(v)
}

// BoolArg reads the optional boolean argument key of args: def when it is
// absent or null, an *engine.ArgError naming key when it is not a boolean.
func BoolArg(args map[string]any, key string, def bool) (bool, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return def, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, engine.ArgErrorf([]string{key}, "must be true or false")
	}
	return b, nil
}

// DurationArg reads the optional duration argument key of args (see
// ParseDuration): def when it is absent or null, an *engine.ArgError naming
// key when it is not a duration.
func DurationArg(args map[string]any, key string, def time.Duration) (time.Duration, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return 0, &engine.ArgError{Path: []string{key}, Err: err}
	}
	return d, nil
}
