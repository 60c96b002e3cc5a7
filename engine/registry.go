package engine

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps the source and action types a rulebook may name to their
// specs. The CLI fills one; the loader and the runtime read it.
type Registry struct {
	mu      sync.RWMutex
	sources map[string]SourceSpec
	actions map[string]ActionSpec
	// resolve, when set, builds the spec of a source type that is not
	// registered (an EDA Python source plugin found by name on disk).
	resolve func(typ string) (SourceSpec, bool)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sources: map[string]SourceSpec{}, actions: map[string]ActionSpec{}}
}

// RegisterSource adds a source type. It panics on a duplicate or empty type:
// that is a wiring bug, not a user error.
func (r *Registry) RegisterSource(s SourceSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.Type == "" || s.New == nil {
		panic("engine: source spec needs a Type and New")
	}
	if _, dup := r.sources[s.Type]; dup {
		panic(fmt.Sprintf("engine: source type %q registered twice", s.Type))
	}
	r.sources[s.Type] = s
}

// RegisterAction adds an action type. It panics on a duplicate or empty type.
func (r *Registry) RegisterAction(a ActionSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.Type == "" || a.New == nil {
		panic("engine: action spec needs a Type and New")
	}
	if _, dup := r.actions[a.Type]; dup {
		panic(fmt.Sprintf("engine: action type %q registered twice", a.Type))
	}
	r.actions[a.Type] = a
}

// SetSourceResolver sets the function that Source asks about a type that
// is not registered, e.g. to find a source plugin file by the type's name.
// Resolved types are not listed by SourceTypes: they are not known until a
// rulebook names them.
func (r *Registry) SetSourceResolver(resolve func(typ string) (SourceSpec, bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolve = resolve
}

// Source returns the spec of a source type: a registered one, else what the
// source resolver finds.
func (r *Registry) Source(typ string) (SourceSpec, bool) {
	r.mu.RLock()
	s, ok := r.sources[typ]
	resolve := r.resolve
	r.mu.RUnlock()
	if ok || resolve == nil {
		return s, ok
	}
	return resolve(typ)
}

// Action returns the spec of an action type.
func (r *Registry) Action(typ string) (ActionSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.actions[typ]
	return a, ok
}

// SourceTypes lists the registered source types, sorted.
func (r *Registry) SourceTypes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.sources))
	for k := range r.sources {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ActionTypes lists the registered action types, sorted.
func (r *Registry) ActionTypes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.actions))
	for k := range r.actions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
