package bus

import (
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestFilter(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type in struct {
		at       time.Duration // accepted, after t0
		source   string
		dedupe   string
		window   time.Duration
		order    string
		ts       time.Duration // timestamp, after t0; 0: none
		expected engine.Outcome
	}
	tests := []struct {
		name    string
		entries []in
	}{
		{"no keys never skipped", []in{
			{at: 0, expected: engine.Accepted},
			{at: 0, expected: engine.Accepted},
		}},
		{"duplicate within the default window, new after it", []in{
			{at: 0, dedupe: "a", expected: engine.Accepted},
			{at: time.Minute, dedupe: "a", expected: engine.Duplicate},
			{at: 59 * time.Minute, dedupe: "a", expected: engine.Duplicate},
			{at: time.Hour, dedupe: "a", expected: engine.Accepted},
			{at: time.Hour + time.Second, dedupe: "a", expected: engine.Duplicate},
		}},
		{"a duplicate does not extend the window", []in{
			{at: 0, dedupe: "a", expected: engine.Accepted},
			{at: 50 * time.Minute, dedupe: "a", expected: engine.Duplicate},
			{at: 61 * time.Minute, dedupe: "a", expected: engine.Accepted},
		}},
		{"per-entry window", []in{
			{at: 0, dedupe: "a", window: 10 * time.Second, expected: engine.Accepted},
			{at: 5 * time.Second, dedupe: "a", window: 10 * time.Second, expected: engine.Duplicate},
			{at: 11 * time.Second, dedupe: "a", window: 10 * time.Second, expected: engine.Accepted},
		}},
		{"keys are per source", []in{
			{at: 0, source: "s1", dedupe: "a", expected: engine.Accepted},
			{at: 0, source: "s2", dedupe: "a", expected: engine.Accepted},
			{at: 0, source: "s1", dedupe: "a", expected: engine.Duplicate},
		}},
		{"stale by order key", []in{
			{at: 0, order: "o", ts: 10 * time.Second, expected: engine.Accepted},
			{at: 1, order: "o", ts: 5 * time.Second, expected: engine.Stale},
			{at: 2, order: "o", ts: 10 * time.Second, expected: engine.Accepted},
			{at: 3, order: "o", ts: 20 * time.Second, expected: engine.Accepted},
			{at: 4, order: "o", ts: 15 * time.Second, expected: engine.Stale},
			{at: 5, order: "p", ts: 1 * time.Second, expected: engine.Accepted},
		}},
		{"order forgotten after the window", []in{
			{at: 0, order: "o", ts: 10 * time.Second, expected: engine.Accepted},
			{at: 2 * time.Hour, order: "o", ts: 5 * time.Second, expected: engine.Accepted},
		}},
		{"a stale entry does not remember its dedupe key", []in{
			{at: 0, order: "o", ts: 10 * time.Second, expected: engine.Accepted},
			{at: 1, dedupe: "d", order: "o", ts: 5 * time.Second, expected: engine.Stale},
			{at: 2, dedupe: "d", order: "o", ts: 11 * time.Second, expected: engine.Accepted},
			{at: 3, dedupe: "d", order: "o", ts: 12 * time.Second, expected: engine.Duplicate},
		}},
		{"order key without timestamp is never stale", []in{
			{at: 0, order: "o", ts: 10 * time.Second, expected: engine.Accepted},
			{at: 1, order: "o", expected: engine.Accepted},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilter(time.Hour)
			for i, e := range tc.entries {
				src := e.source
				if src == "" {
					src = "s"
				}
				m := message{Source: wireSource{Ruleset: "rs", Name: src}, Event: engine.Event{}, Accepted: t0.Add(e.at),
					DedupeKey: e.dedupe, DedupeWindow: int64(e.window), OrderKey: e.order}
				if e.ts != 0 {
					m.Timestamp = t0.Add(e.ts)
				}
				if got := f.decide(&m); got != e.expected {
					t.Fatalf("entry %d (%+v): %s, want %s", i, e, got, e.expected)
				}
			}
		})
	}
}

func TestFilterForgetsExpiredKeys(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := newFilter(time.Minute)
	for i := range 5000 {
		m := message{Source: wireSource{Ruleset: "rs", Name: "s"}, Accepted: t0.Add(time.Duration(i) * time.Second),
			DedupeKey: string(rune('a'+i%26)) + string(rune(i)), OrderKey: "o", Timestamp: t0.Add(time.Duration(i) * time.Second)}
		if got := f.decide(&m); got != engine.Accepted {
			t.Fatalf("entry %d: %s", i, got)
		}
	}
	// One minute of one-per-second keys, plus the order key.
	if n := f.size(); n > 62 {
		t.Fatalf("filter holds %d keys after expiry, want at most 62", n)
	}
	if len(f.queue) > 130 {
		t.Fatalf("expiry queue holds %d entries", len(f.queue))
	}
}
