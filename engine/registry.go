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

// Source returns the spec of a source type.
func (r *Registry) Source(typ string) (SourceSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.sources[typ]
	return s, ok
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
