package engine_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// logHarness is a harness whose engine logs JSON into logs.
type logHarness struct {
	*harness
	logs bytes.Buffer
}

func newLogHarness(t *testing.T, rb string) *logHarness {
	t.Helper()
	h := &logHarness{harness: &harness{t: t, clock: engine.NewFakeClock(t0)}}
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	book, err := rulebooks.Parse("test.yml", []byte(rb), rulebooks.Options{Registry: reg, Clock: h.clock})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	h.eng = engine.New(book.Rulesets, engine.Options{Clock: h.clock, Stdout: &h.out,
		Log: zerolog.New(&h.logs),
		OnFiring: func(f *engine.Firing, _ []engine.RenderedAction) {
			h.fired = append(h.fired, f.Rule+"@"+f.Time.Sub(t0).String())
		}})
	return h
}

// suppressedLines returns the "suppressed" log lines, decoded.
func (h *logHarness) suppressedLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if msg, _ := m["message"].(string); strings.HasPrefix(msg, "rule match suppressed by throttle") {
			out = append(out, m)
		}
	}
	return out
}

func statsOf(t *testing.T, eng *engine.Engine, rule string) engine.RuleStats {
	t.Helper()
	for _, st := range eng.Stats() {
		if st.Rule == rule {
			return st
		}
	}
	t.Fatalf("no stats for rule %q", rule)
	return engine.RuleStats{}
}

func TestThrottleSuppressionIsCountedAndLoggedOncePerWindowAndGroup(t *testing.T) {
	cases := []struct {
		name     string
		throttle string
		steps    []step
		runFor   time.Duration
		fired    []string
		matched  int64
		counts   [3]int64 // once_within, once_after, accumulate_within
		logs     []string // group of each suppressed log line, in order
	}{
		{
			name:     "once_within",
			throttle: "{once_within: 1m, group_by: [event.h]}",
			// a fires, a twice suppressed (one line), b fires, b suppressed
			// (its own line), a again after the window: fires, then a
			// suppressed in the new window logs again.
			steps: []step{{0, "", ev("x", 1, "h", "a")}, {10 * time.Second, "", ev("x", 1, "h", "a")},
				{20 * time.Second, "", ev("x", 1, "h", "a")}, {25 * time.Second, "", ev("x", 1, "h", "b")},
				{30 * time.Second, "", ev("x", 1, "h", "b")}, {70 * time.Second, "", ev("x", 1, "h", "a")},
				{80 * time.Second, "", ev("x", 1, "h", "a")}},
			fired:   []string{"t@0s", "t@25s", "t@1m10s"},
			matched: 7,
			counts:  [3]int64{4, 0, 0},
			logs:    []string{"a", "b", "a"},
		},
		{
			name:     "once_after for the whole rule",
			throttle: "{once_after: 1m, group_by: [event.h]}",
			steps: []step{{0, "", ev("x", 1, "h", "a")}, {10 * time.Second, "", ev("x", 1, "h", "b")},
				{20 * time.Second, "", ev("x", 1, "h", "a")}, {30 * time.Second, "", ev("x", 1, "h", "a")}},
			runFor:  2 * time.Minute,
			fired:   []string{"t@1m0s"},
			matched: 4,
			counts:  [3]int64{0, 2, 0},
			logs:    []string{"a"},
		},
		{
			name:     "once_after per group",
			throttle: "{once_after: 1m, group_by: [event.h], once_after_per_group: true}",
			steps: []step{{0, "", ev("x", 1, "h", "a")}, {10 * time.Second, "", ev("x", 1, "h", "a")},
				{20 * time.Second, "", ev("x", 1, "h", "a")}, {90 * time.Second, "", ev("x", 1, "h", "a")},
				{100 * time.Second, "", ev("x", 1, "h", "a")}},
			runFor:  2 * time.Minute,
			fired:   []string{"t@1m0s", "t@2m30s"},
			matched: 5,
			counts:  [3]int64{0, 3, 0},
			logs:    []string{"a", "a"},
		},
		{
			name:     "accumulate_within below threshold",
			throttle: "{accumulate_within: 1m, threshold: 3, group_by: [event.h]}",
			steps: []step{{0, "", ev("x", 1, "h", "a")}, {10 * time.Second, "", ev("x", 1, "h", "a")},
				{20 * time.Second, "", ev("x", 1, "h", "a")}, {30 * time.Second, "", ev("x", 1, "h", "b")}},
			fired:   []string{"t@20s"},
			matched: 4,
			counts:  [3]int64{0, 0, 3},
			logs:    []string{"a", "b"},
		},
		{
			name:     "sliding accumulate_within below threshold",
			throttle: "{accumulate_within: 1m, threshold: 2, accumulate_sliding: true}",
			steps:    []step{{0, "", ev("x", 1)}, {2 * time.Minute, "", ev("x", 1)}, {2*time.Minute + time.Second, "", ev("x", 1)}},
			fired:    []string{"t@2m1s"},
			matched:  3,
			counts:   [3]int64{0, 0, 2},
			logs:     []string{"", ""},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newLogHarness(t, rulebook(`    - name: t
      condition: event.x == 1
      throttle: `+tc.throttle+`
      action: {none: {}}
`))
			h.run(tc.steps, tc.runFor)
			if strings.Join(h.fired, " ") != strings.Join(tc.fired, " ") {
				t.Fatalf("fired %v, want %v", h.fired, tc.fired)
			}
			st := statsOf(t, h.eng, "t")
			got := [3]int64{st.SuppressedOnceWithin, st.SuppressedOnceAfter, st.SuppressedAccumulateWithin}
			if st.Matched != tc.matched || got != tc.counts {
				t.Fatalf("matched %d suppressed %v, want %d %v", st.Matched, got, tc.matched, tc.counts)
			}
			lines := h.suppressedLines()
			var groups []string
			for _, l := range lines {
				g := ""
				if gs, ok := l["group"].([]any); ok && len(gs) > 0 {
					g, _ = gs[0].(string)
				}
				groups = append(groups, g)
				if l["level"] != "info" || l["rule"] != "t" || l["ruleset"] != "r" || l["reason"] != st.Throttle || l["window_ends"] == nil {
					t.Errorf("log line %v lacks its fields", l)
				}
			}
			if strings.Join(groups, ",") != strings.Join(tc.logs, ",") || len(groups) != len(tc.logs) {
				t.Fatalf("suppressed log lines for groups %q, want %q\n%s", groups, tc.logs, h.logs.String())
			}
		})
	}
}

func TestConsumedCountsLaterRulesTheEventWouldHaveMatched(t *testing.T) {
	h := newLogHarness(t, rulebook(`    - name: first
      condition: event.x == 1
      action: {none: {}}
    - name: also
      condition: event.x > 0
      action: {none: {}}
    - name: other
      condition: event.y == 1
      action: {none: {}}
    - name: either
      condition:
        any: [event.y == 1, event.x == 1]
      action: {none: {}}
`))
	h.run([]step{{0, "", ev("x", 1)}, {time.Second, "", ev("x", 2)}}, 0)
	want := map[string][2]int64{"first": {1, 0}, "also": {1, 1}, "other": {0, 0}, "either": {0, 1}}
	for rule, w := range want {
		st := statsOf(t, h.eng, rule)
		if st.Matched != w[0] || st.Consumed != w[1] {
			t.Errorf("%s: matched %d consumed %d, want %v", rule, st.Matched, st.Consumed, w)
		}
	}
}

func TestConsumedIsNotCountedInLargeRulesets(t *testing.T) {
	var sb strings.Builder
	for i := range engine.MaxConsumedRules + 1 {
		sb.WriteString("    - name: r" + strings.Repeat("x", i) + "\n      condition: event.x == 1\n      action: {none: {}}\n")
	}
	h := newLogHarness(t, rulebook(sb.String()))
	h.run([]step{{0, "", ev("x", 1)}}, 0)
	for _, st := range h.eng.Stats() {
		if st.Consumed != 0 || st.ConsumedCounted {
			t.Errorf("%s: consumed %d counted %v, want not counted", st.Rule, st.Consumed, st.ConsumedCounted)
		}
	}
	small := newLogHarness(t, rulebook("    - name: a\n      condition: event.x == 1\n      action: {none: {}}\n    - name: b\n      condition: event.x == 1\n      action: {none: {}}\n"))
	small.run([]step{{0, "", ev("x", 1)}}, 0)
	if st := statsOf(t, small.eng, "b"); st.Consumed != 1 || !st.ConsumedCounted {
		t.Errorf("small ruleset: %+v, want consumed 1, counted", st)
	}
}
