package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/metrics"
	kafkasource "github.com/rulebook-dev/rulebook/sources/kafka"
)

// adminBackend is what the admin API reads and drives: every engine of
// this process (one, or one per partition with --bus), the audit trail, and
// reloads.
type adminBackend struct{ a *app }

var _ admin.Backend = adminBackend{}

func (b adminBackend) Rules() []admin.RuleInfo {
	engines := b.a.engines()
	sums := map[[2]string]engine.RuleStats{}
	for _, eng := range engines {
		for _, st := range eng.Stats() {
			k := [2]string{st.Ruleset, st.Rule}
			sum := sums[k]
			sum.Add(st)
			sums[k] = sum
		}
	}
	var out []admin.RuleInfo
	for _, rs := range b.a.currentRulesets() {
		for _, r := range rs.Rules {
			out = append(out, admin.RuleInfoFrom(rs.Name, r, sums[[2]string{rs.Name, r.Name}]))
		}
	}
	return out
}

func (b adminBackend) Facts(ruleset string) []map[string]any {
	var out []map[string]any
	for _, eng := range b.a.engines() {
		out = append(out, eng.Facts(ruleset)...)
	}
	return out
}

func (b adminBackend) Audit(ctx context.Context, f engine.AuditFilter) ([]engine.AuditEntry, error) {
	return b.a.store.Actions().Query(ctx, f)
}

// Inject evaluates a test event. With the embedded journal it goes to the
// engine directly; on the bus it is produced like any event, so it reaches
// the process that owns its partition.
func (b adminBackend) Inject(ctx context.Context, ruleset string, event map[string]any) error {
	if b.a.parts == nil {
		return b.a.eng.Inject(ctx, ruleset, nil, []map[string]any{event})
	}
	ev := engine.NewEvent(event, "admin", "admin", b.a.clock.Now())
	_, err := b.a.gate.Emit(ctx, engine.SourceRef{Ruleset: ruleset, Name: "admin", Type: "admin"}, []engine.Entry{{Event: ev}})
	return err
}

// Explain explains an event against the engine's live state. On the bus
// the state of the event's partition may be in another process, so it
// is not offered there.
func (b adminBackend) Explain(ruleset string, event map[string]any) ([]engine.Explanation, error) {
	if b.a.parts != nil {
		return nil, fmt.Errorf("%w with --bus: the event's partition may be owned by another process; run `rulebook explain RULEBOOK EVENT.json` for a fresh engine", admin.ErrExplainUnavailable)
	}
	return b.a.eng.Explain(ruleset, event)
}

var _ admin.Explainer = adminBackend{}

// Reload reloads the rulebook; the admin listener logs the outcome and
// publishes it on the live stream.
func (b adminBackend) Reload(ctx context.Context) error {
	return b.a.reload("admin API")
}

func (b adminBackend) Ready() (bool, []string) {
	var why []string
	a := b.a
	if a.draining.Load() {
		why = append(why, "draining: shutting down")
	}
	if a.sources == nil || a.sources.count() == 0 {
		why = append(why, "no source is running")
	}
	if a.wiring != nil && a.wiring.host != nil {
		for _, in := range a.wiring.host.Infos() {
			if in.Err != nil {
				why = append(why, fmt.Sprintf("plugin %q did not start: %v", in.Name, in.Err))
			}
		}
	}
	return len(why) == 0, why
}

// startAdmin starts the admin listener (API, live stream, dashboard,
// /metrics, /healthz, /readyz) unless --admin is empty.
func (a *app) startAdmin(ctx context.Context) (*admin.Server, error) {
	// Once it listens, or will not: what waits for its URL goes on.
	defer a.adminSettled()
	if a.rf.adminAddr == "" {
		return nil, nil
	}
	token, err := adminToken(a.rf.adminToken)
	if err != nil {
		return nil, err
	}
	srv, err := admin.New(admin.Config{Address: a.rf.adminAddr, Token: token, Backend: adminBackend{a},
		Metrics: a.metrics.Handler(), Stream: a.stream, Log: a.log.With().Str("component", "admin").Logger(), Clock: a.clock})
	if err != nil {
		return nil, fmt.Errorf("--admin: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("--admin %s: %w", a.rf.adminAddr, err)
	}
	u := srv.URL()
	a.adminURL.Store(&u)
	a.log.Info().Str("url", u).Msg("admin listening")
	return srv, nil
}

// adminToken is the admin listener's token: the --admin-token flag's value,
// else RULEBOOK_ADMIN_TOKEN, with ${env:..}/${file:..} resolved; empty when
// neither is set.
func adminToken(flagValue string) (string, error) {
	token := flagValue
	if token == "" {
		token = os.Getenv("RULEBOOK_ADMIN_TOKEN")
	}
	if token == "" {
		return "", nil
	}
	resolved, err := engine.ResolveSecretString(token, nil)
	if err != nil {
		return "", fmt.Errorf("--admin-token: %w", err)
	}
	return resolved, nil
}

// wireMetrics points the pulled metrics at this process's components.
func (a *app) wireMetrics() {
	m := a.metrics
	if a.parts == nil {
		m.SetBacklogFunc(func() float64 { return float64(a.store.Backlog()) })
	}
	m.SetDispatchFunc(func() (int, int) {
		st := a.disp.Stats()
		return st.Running, st.Firings
	})
	m.SetEvaluationsFunc(func() []engine.RuleStats {
		var out []engine.RuleStats
		for _, eng := range a.engines() {
			out = append(out, eng.Stats()...)
		}
		return out
	})
	if a.wiring.host != nil || a.wiring.sourceHost != nil {
		host, sources := a.wiring.host, a.wiring.sourceHost
		m.PluginRestarts(func() map[string]int {
			out := map[string]int{}
			if host != nil {
				for _, in := range host.Infos() {
					out[in.Name] = host.Restarts(in.Name)
				}
			}
			if sources != nil {
				for _, in := range sources.Infos() {
					out[in.Name] += sources.Restarts(in.Name)
				}
			}
			return out
		})
	}
	m.SetKafkaLagFunc(func() []metrics.KafkaLag {
		var out []metrics.KafkaLag
		a.sources.each(func(cfg engine.SourceConfig, src engine.Source) {
			if ks, ok := src.(*kafkasource.Source); ok {
				for _, p := range ks.Stats().Partitions {
					out = append(out, metrics.KafkaLag{Source: cfg.Ruleset + "/" + cfg.Name, Topic: p.Topic, Partition: p.Partition, Lag: p.Lag})
				}
			}
		})
		if a.consumer != nil {
			st := a.consumer.Stats()
			for _, p := range st.Partitions {
				if p.Owned {
					out = append(out, metrics.KafkaLag{Source: "bus", Topic: st.Topic, Partition: p.Partition, Lag: p.Lag})
				}
			}
		}
		return out
	})
}

// outcomeReason maps an Emit result to the metrics' outcome names.
func outcomeReason(o engine.Outcome) string {
	switch o {
	case engine.Duplicate:
		return metrics.ReasonDuplicate
	case engine.Stale:
		return metrics.ReasonStale
	}
	return metrics.OutcomeAccepted
}

var _ admin.Approver = adminBackend{}

// Pending lists the invocations waiting for approval.
func (b adminBackend) Pending(ctx context.Context) ([]*engine.InvocationState, error) {
	if b.a.disp == nil {
		return nil, nil
	}
	return b.a.disp.Pending(), nil
}

// Decide approves or rejects a waiting invocation.
func (b adminBackend) Decide(ctx context.Context, id, decision, by, reason string) (*engine.InvocationState, error) {
	if b.a.disp == nil {
		return nil, fmt.Errorf("%w: the dispatcher is not running", admin.ErrNotPending)
	}
	st, err := b.a.disp.Decide(ctx, id, decision, by, reason)
	if errors.Is(err, dispatch.ErrNotPending) {
		return nil, fmt.Errorf("%w: %q", admin.ErrNotPending, id)
	}
	return st, err
}
