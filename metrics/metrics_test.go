package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rulebook-dev/rulebook/engine"
)

// sample finds the metric of family name whose labels are exactly labels.
func sample(t *testing.T, m *Metrics, name string, labels map[string]string) (*dto.Metric, bool) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mt := range f.GetMetric() {
			if len(mt.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range mt.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue next
				}
			}
			return mt, true
		}
	}
	return nil, false
}

// value returns a counter's or gauge's value, -1 when absent.
func value(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mt, ok := sample(t, m, name, labels)
	if !ok {
		return -1
	}
	switch {
	case mt.Counter != nil:
		return mt.GetCounter().GetValue()
	case mt.Gauge != nil:
		return mt.GetGauge().GetValue()
	}
	t.Fatalf("%s%v is neither counter nor gauge", name, labels)
	return 0
}

// histogram returns a histogram's count and sum, count -1 when absent.
func histogram(t *testing.T, m *Metrics, name string, labels map[string]string) (int64, float64) {
	t.Helper()
	mt, ok := sample(t, m, name, labels)
	if !ok || mt.Histogram == nil {
		return -1, 0
	}
	return int64(mt.GetHistogram().GetSampleCount()), mt.GetHistogram().GetSampleSum()
}

func l(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestEvents(t *testing.T) {
	m := New()
	m.EventReceived("ops/hook", OutcomeAccepted)
	m.EventReceived("ops/hook", OutcomeAccepted)
	m.EventReceived("ops/hook", ReasonAuth)
	m.EventReceived("ops/hook", "made-up")
	m.EventReceived("ops/kafka", ReasonDuplicate)
	m.SetSourceCountsFunc(func() []SourceCount {
		return []SourceCount{
			{Source: "ops/hook", Outcome: OutcomeAccepted, N: 10},
			{Source: "ops/hook", Outcome: ReasonStale, N: 3},
			{Source: "ops/am", Outcome: ReasonBacklog, N: 2},
			{Source: "ops/am", Outcome: OutcomeAccepted, N: 0},
		}
	})
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"pushed and pulled accepted add up", "rulebook_events_accepted_total", l("source", "ops/hook"), 12},
		{"received sums every outcome", "rulebook_events_received_total", l("source", "ops/hook"), 2 + 1 + 1 + 10 + 3},
		{"auth rejection", "rulebook_events_rejected_total", l("source", "ops/hook", "reason", "auth"), 1},
		{"unknown outcome is other", "rulebook_events_rejected_total", l("source", "ops/hook", "reason", "other"), 1},
		{"pulled stale", "rulebook_events_rejected_total", l("source", "ops/hook", "reason", "stale"), 3},
		{"source with rejections only has accepted 0", "rulebook_events_accepted_total", l("source", "ops/kafka"), 0},
		{"pulled only source", "rulebook_events_rejected_total", l("source", "ops/am", "reason", "backlog"), 2},
		{"pulled only source received", "rulebook_events_received_total", l("source", "ops/am"), 2},
		{"no made-up reason label", "rulebook_events_rejected_total", l("source", "ops/hook", "reason", "made-up"), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := value(t, m, tc.metric, tc.labels); got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}
	m.SetSourceCountsFunc(nil)
	if got := value(t, m, "rulebook_events_accepted_total", l("source", "ops/hook")); got != 2 {
		t.Errorf("after removing the pull func accepted = %v, want 2", got)
	}
}

func TestRules(t *testing.T) {
	m := New()
	m.Processed("ops")
	m.Processed("ops")
	m.SetEvaluationsFunc(func() []engine.RuleStats {
		// Two engines (bus partitions) report the same rules: they add up.
		return []engine.RuleStats{
			{Ruleset: "ops", Rule: "restart", Evaluated: 1, Throttle: "once_within", SuppressedOnceWithin: 2, Consumed: 1, ConsumedCounted: true},
			{Ruleset: "ops", Rule: "restart", Throttle: "once_within", SuppressedOnceWithin: 3},
			{Ruleset: "ops", Rule: "page", SuppressedAccumulateWithin: 4, ConsumedCounted: true},
			{Ruleset: "big", Rule: "r"}, // consumed not counted
		}
	})
	m.Firing("ops", "restart")
	m.ObserveFiring(&engine.Firing{Ruleset: "ops", Rule: "restart"}, nil)
	m.ObserveFiring(nil, nil)
	if got := value(t, m, "rulebook_events_processed_total", l("ruleset", "ops")); got != 2 {
		t.Errorf("processed = %v, want 2", got)
	}
	if got := value(t, m, "rulebook_rule_evaluations_total", l("ruleset", "ops", "rule", "restart")); got != 1 {
		t.Errorf("evaluations = %v, want 1", got)
	}
	if got := value(t, m, "rulebook_rule_firings_total", l("ruleset", "ops", "rule", "restart")); got != 2 {
		t.Errorf("firings = %v, want 2", got)
	}
	for _, tc := range []struct {
		rule, reason string
		want         float64 // -1: absent
	}{
		{"restart", "once_within", 5},
		{"restart", "consumed", 1},
		{"restart", "once_after", -1}, // not its throttle, never counted
		{"page", "accumulate_within", 4},
		{"page", "consumed", 0},
		{"page", "once_within", -1},
	} {
		if got := value(t, m, "rulebook_rule_suppressed_total", l("ruleset", "ops", "rule", tc.rule, "reason", tc.reason)); got != tc.want {
			t.Errorf("suppressed{%s,%s} = %v, want %v", tc.rule, tc.reason, got, tc.want)
		}
	}
	if got := value(t, m, "rulebook_rule_suppressed_total", l("ruleset", "big", "rule", "r", "reason", "consumed")); got != -1 {
		t.Errorf("consumed where it is not counted = %v, want absent", got)
	}
}

func state(action string, status engine.InvocationStatus, atts ...engine.Attempt) *engine.InvocationState {
	return &engine.InvocationState{
		Invocation: &engine.Invocation{ID: "i", Action: action, Ruleset: "ops", Rule: "r"},
		Status:     status,
		Attempts:   atts,
	}
}

func TestActionResult(t *testing.T) {
	retryable := engine.Attempt{N: 1, Status: engine.Retryable, Duration: 2 * time.Second, Error: "timeout"}
	shutdown := engine.Attempt{N: 2, Status: engine.Retryable, Duration: time.Second, Error: "cancelled by shutdown",
		Details: map[string]any{"interrupted": "shutdown"}}
	ok := engine.Attempt{N: 1, Status: engine.Succeeded, Duration: 500 * time.Millisecond}
	permanent := engine.Attempt{N: 1, Status: engine.Failed, Duration: 100 * time.Millisecond}
	skipped := engine.Attempt{N: 1, Status: engine.Failed, Error: errTextSkipped}

	m := New()
	for _, st := range []*engine.InvocationState{
		nil,
		{Status: engine.StatusFailed},       // no invocation
		state("http", engine.StatusRunning), // ignored
		state("http", engine.StatusQueued),  // ignored
		state("http", engine.StatusRetrying, retryable),                     // retry 1
		state("http", engine.StatusRetrying, retryable, shutdown),           // not a retry
		state("http", engine.StatusFailed, retryable, retryable, retryable), // dead letter
		state("http", engine.StatusSucceeded, retryable, ok),
		state("command", engine.StatusFailed, permanent),
		state("command", engine.StatusFailed, skipped),
	} {
		m.ActionResult(st)
	}

	counters := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"retries exclude shutdown interruptions", "rulebook_action_retries_total", l("action", "http"), 1},
		{"dead letter after exhausted retries", "rulebook_action_dead_letters_total", l("action", "http"), 1},
		{"permanent failure is no dead letter", "rulebook_action_dead_letters_total", l("action", "command"), -1},
		{"failed invocations", "rulebook_action_invocations_total", l("action", "http", "result", "failed"), 1},
		{"succeeded invocations", "rulebook_action_invocations_total", l("action", "http", "result", "succeeded"), 1},
		{"permanent failure counted", "rulebook_action_invocations_total", l("action", "command", "result", "failed"), 1},
		{"skipped counted apart", "rulebook_action_invocations_total", l("action", "command", "result", "skipped"), 1},
	}
	for _, tc := range counters {
		t.Run(tc.name, func(t *testing.T) {
			if got := value(t, m, tc.metric, tc.labels); got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}

	hists := []struct {
		name      string
		metric    string
		labels    map[string]string
		wantCount int64
		wantSum   float64
	}{
		// Retrying (2s), retrying+shutdown (1s retryable), failed (2s), succeeded after retry: last attempt only each time.
		{"retryable attempts", "rulebook_action_attempt_duration_seconds", l("action", "http", "result", "retryable"), 3, 2 + 1 + 2},
		{"succeeded attempts", "rulebook_action_attempt_duration_seconds", l("action", "http", "result", "succeeded"), 1, 0.5},
		{"skipped is no attempt", "rulebook_action_attempt_duration_seconds", l("action", "command", "result", "failed"), 1, 0.1},
		{"failed invocation sums its attempts", "rulebook_action_invocation_duration_seconds", l("action", "http", "result", "failed"), 1, 6},
		{"succeeded invocation sums its attempts", "rulebook_action_invocation_duration_seconds", l("action", "http", "result", "succeeded"), 1, 2.5},
	}
	for _, tc := range hists {
		t.Run(tc.name, func(t *testing.T) {
			n, sum := histogram(t, m, tc.metric, tc.labels)
			if n != tc.wantCount || sum != tc.wantSum {
				t.Errorf("%s%v = count %d sum %v, want %d %v", tc.metric, tc.labels, n, sum, tc.wantCount, tc.wantSum)
			}
		})
	}
}

func TestPulled(t *testing.T) {
	m := New()
	if got := value(t, m, "rulebook_journal_backlog", nil); got != -1 {
		t.Fatalf("backlog without a func = %v, want absent", got)
	}
	backlog := 7.0
	m.SetBacklogFunc(func() float64 { return backlog })
	m.SetKafkaLagFunc(func() []KafkaLag {
		return []KafkaLag{
			{Source: "ops/k", Topic: "events", Partition: 0, Lag: 5},
			{Source: "ops/k", Topic: "events", Partition: 1, Lag: 0},
			{Source: "ops/k", Topic: "events", Partition: 0, Lag: 9}, // duplicate: dropped
		}
	})
	m.PluginRestarts(func() map[string]int { return map[string]int{"ticket": 3, "idle": 0} })
	m.SetDispatchFunc(func() (int, int) { return 2, 5 })

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"backlog", "rulebook_journal_backlog", nil, 7},
		{"lag p0", "rulebook_kafka_consumer_lag", l("source", "ops/k", "topic", "events", "partition", "0"), 5},
		{"lag p1", "rulebook_kafka_consumer_lag", l("source", "ops/k", "topic", "events", "partition", "1"), 0},
		{"restarts", "rulebook_plugin_restarts_total", l("plugin", "ticket"), 3},
		{"no restarts", "rulebook_plugin_restarts_total", l("plugin", "idle"), 0},
		{"running", "rulebook_actions_running", nil, 2},
		{"firings active", "rulebook_firings_active", nil, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := value(t, m, tc.metric, tc.labels); got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}
	backlog = 2
	if got := value(t, m, "rulebook_journal_backlog", nil); got != 2 {
		t.Errorf("backlog is read at scrape time: got %v, want 2", got)
	}
	m.SetBacklogFunc(nil)
	m.SetKafkaLagFunc(nil)
	m.PluginRestarts(nil)
	m.SetDispatchFunc(nil)
	for _, name := range []string{"rulebook_journal_backlog", "rulebook_kafka_consumer_lag", "rulebook_plugin_restarts_total", "rulebook_actions_running"} {
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == name {
				t.Errorf("%s still exported after its func was removed", name)
			}
		}
	}
}

func TestCommitAndHandler(t *testing.T) {
	m := New()
	m.ObserveCommit(2 * time.Millisecond)
	m.ObserveCommit(4 * time.Millisecond)
	if n, sum := histogram(t, m, "rulebook_journal_commit_duration_seconds", nil); n != 2 || sum < 0.0059 || sum > 0.0061 {
		t.Errorf("commit histogram = count %d sum %v, want 2, 0.006", n, sum)
	}
	m.Firing("ops", "restart")

	// A second registry is independent: no global registration panics.
	other := New()
	other.Firing("ops", "restart")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		`rulebook_rule_firings_total{rule="restart",ruleset="ops"} 1`,
		`rulebook_journal_commit_duration_seconds_count 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func BenchmarkEventReceived(b *testing.B) {
	m := New()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.EventReceived("ops/hook", OutcomeAccepted)
		}
	})
}

func TestActionResultModes(t *testing.T) {
	m := New()
	for _, st := range []engine.InvocationStatus{engine.StatusShadowed, engine.StatusShadowed, engine.StatusRejected, engine.StatusPendingApproval} {
		m.ActionResult(&engine.InvocationState{Invocation: &engine.Invocation{Action: "run_command"}, Status: st})
	}
	if got := value(t, m, "rulebook_action_invocations_total", l("action", "run_command", "result", "shadowed")); got != 2 {
		t.Errorf("shadowed %v, want 2", got)
	}
	if got := value(t, m, "rulebook_action_invocations_total", l("action", "run_command", "result", "rejected")); got != 1 {
		t.Errorf("rejected %v, want 1", got)
	}
	if got := value(t, m, "rulebook_action_invocations_total", l("action", "run_command", "result", "pending_approval")); got != -1 {
		t.Errorf("pending counted as final: %v", got)
	}
}
