package admin

import (
	"context"
	"errors"

	"github.com/rulebook-dev/rulebook/engine"
)

// EngineBackend is a Backend over a running engine and the action store
// that holds its audit trail. Reload and readiness are the wiring's: it
// supplies them as functions.
type EngineBackend struct {
	// Engine is required. Engine.Replace keeps the same *Engine across
	// reloads, so it need not change.
	Engine *engine.Engine
	// Store answers Audit (journal.Store.Actions()); nil: Audit fails.
	Store engine.ActionStore
	// ReloadFunc reloads the rulebooks; nil: Reload fails.
	ReloadFunc func(ctx context.Context) error
	// ReadyFunc reports readiness; nil: always ready.
	ReadyFunc func() (bool, []string)
}

var _ Backend = (*EngineBackend)(nil)

// Rules joins the rulesets' rules with their counters, in rulebook order.
func (b *EngineBackend) Rules() []RuleInfo {
	stats := map[[2]string]engine.RuleStats{}
	for _, st := range b.Engine.Stats() {
		stats[[2]string{st.Ruleset, st.Rule}] = st
	}
	var out []RuleInfo
	for _, rs := range b.Engine.Rulesets() {
		for _, r := range rs.Rules {
			st := stats[[2]string{rs.Name, r.Name}]
			out = append(out, RuleInfoFrom(rs.Name, r, st))
		}
	}
	return out
}

// Facts returns the ruleset's facts.
func (b *EngineBackend) Facts(ruleset string) []map[string]any { return b.Engine.Facts(ruleset) }

// Audit queries the store.
func (b *EngineBackend) Audit(ctx context.Context, f engine.AuditFilter) ([]engine.AuditEntry, error) {
	if b.Store == nil {
		return nil, errors.New("no audit trail")
	}
	return b.Store.Query(ctx, f)
}

// Inject evaluates the event in the ruleset, as post_event would.
func (b *EngineBackend) Inject(ctx context.Context, ruleset string, event map[string]any) error {
	return b.Engine.Inject(ctx, ruleset, nil, []map[string]any{event})
}

// Reload calls ReloadFunc.
func (b *EngineBackend) Reload(ctx context.Context) error {
	if b.ReloadFunc == nil {
		return errors.New("reload is not available")
	}
	return b.ReloadFunc(ctx)
}

// Ready calls ReadyFunc.
func (b *EngineBackend) Ready() (bool, []string) {
	if b.ReadyFunc == nil {
		return true, nil
	}
	return b.ReadyFunc()
}
