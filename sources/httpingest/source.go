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
// its hub, name, clock, logger and reference. A source builds it with
// NewBase and turns it into the Service it embeds with Base.Service.
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

// Service is what an HTTP source has in common with the others once built:
// its Base, its decoded Settings and build, which turns one accepted request
// into its entries (the only part that differs between sources). A source
// embeds one, so that Listener, Paths and Run are the same for all of them.
type Service struct {
	Base
	HTTP  Settings
	build func(*Request) ([]engine.Entry, error)
}

// Service serves hs with build.
func (b Base) Service(hs Settings, build func(*Request) ([]engine.Entry, error)) Service {
	if hs.Insecure && !hs.Authenticated() {
		// b.Log names the source already (engine.SourceConfig.Log).
		b.Log.Warn().Str("address", hs.Listener.Address).
			Msg("insecure: accepting events without authentication from anyone who can reach the listener")
	}
	return Service{Base: b, HTTP: hs, build: build}
}

// Listener is where the source listens (for the CLI's banner and for tests
// that use port 0 with Hub.Lookup).
func (s *Service) Listener() Listener { return s.HTTP.Listener }

// Paths are the paths the source serves.
func (s *Service) Paths() []string { return s.HTTP.Paths }

// Endpoint is the source's handler, without an Emitter (Run sets it).
func (s *Service) Endpoint() *Endpoint {
	return s.HTTP.Endpoint(s.Ref, s.Clock.Now, s.Log, s.build)
}

// Run serves the source's paths until ctx ends, emitting the entries of
// each accepted request through out and answering only once Emit returned.
// It returns an error only when the listener cannot be opened or shared.
func (s *Service) Run(ctx context.Context, out engine.Emitter) error {
	ep := s.Endpoint()
	ep.Out = out
	ep.OnReject = s.Hub.OnReject()
	if err := s.Hub.Serve(ctx, s.HTTP.Listener, s.HTTP.Paths, ep); err != nil {
		return fmt.Errorf("%s source %q: %w", s.kind, s.Name, err)
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

// ValueKind names the kind of a decoded JSON or YAML value for an error
// message: "null", "a string", "a boolean", "a number", "a list" or "an
// object". It is engine.TypeName in the words of a JSON body.
func ValueKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []string:
		return "a list"
	}
	return engine.TypeName(v)
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
