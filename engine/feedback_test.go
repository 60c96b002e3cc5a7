package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// A journaled feedback record adds its facts and posts its events as Inject
// would; replayed, it rebuilds the facts without firing; a malformed one is
// dropped.
func TestFeedbackRecords(t *testing.T) {
	rules := `    - {name: fact joined, condition: {all: [fact.restarted == "web1", event.kind == "check"]}, action: {debug: {msg: joined}}}
    - {name: posted, condition: event.done == true, action: {debug: {msg: posted}}}
`
	feedback := func(seq uint64, inv string, facts, events []map[string]any) engine.Record {
		e := engine.FeedbackEntry(&engine.Invocation{ID: inv}, facts, events, t0)
		if e.DedupeKey != "feedback/"+inv {
			t.Fatalf("dedupe key %q", e.DedupeKey)
		}
		return engine.Record{Seq: seq, Source: engine.FeedbackSource("r"), Event: e.Event, Accepted: t0}
	}
	check := func(seq uint64) engine.Record {
		return engine.Record{Seq: seq, Source: engine.SourceRef{Ruleset: "r", Name: "s"}, Event: engine.NewEvent(ev("kind", "check"), "s", "t", t0), Accepted: t0}
	}
	ctx := context.Background()

	t.Run("live", func(t *testing.T) {
		h := newHarness(t, rulebook(rules))
		fb := feedback(1, "f-0", []map[string]any{{"restarted": "web1"}}, []map[string]any{{"done": true}})
		if err := h.eng.ProcessBatch(ctx, []engine.Record{fb, check(2)}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(h.fired, ","); got != "posted@0s:posted,fact joined@0s:joined" {
			t.Fatalf("fired %q", got)
		}
		if facts := h.eng.Facts("r"); len(facts) != 1 || facts[0]["restarted"] != "web1" {
			t.Fatalf("facts %v", facts)
		}
	})

	t.Run("replayed", func(t *testing.T) {
		h := newHarness(t, rulebook(rules))
		fb := feedback(1, "f-0", []map[string]any{{"restarted": "web1"}}, []map[string]any{{"done": true}})
		// Through the journal's JSON, as after a restart.
		if err := h.eng.Replay(ctx, roundTrip(t, fb)); err != nil {
			t.Fatal(err)
		}
		if len(h.fired) != 0 {
			t.Fatalf("replay fired %v", h.fired)
		}
		if err := h.eng.ProcessBatch(ctx, []engine.Record{check(2)}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(h.fired, ","); got != "fact joined@0s:joined" {
			t.Fatalf("after replay fired %q, want the fact joined", got)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		h := newHarness(t, rulebook(rules))
		// Its events are well formed: none of a malformed record applies.
		bad := engine.Record{Seq: 1, Source: engine.FeedbackSource("r"), Event: engine.Event{
			"facts": "not a list", "events": []any{map[string]any{"done": true}}}}
		if err := h.eng.ProcessBatch(ctx, []engine.Record{bad, check(2)}); err != nil {
			t.Fatal(err)
		}
		if len(h.fired) != 0 || len(h.eng.Facts("r")) != 0 {
			t.Fatalf("malformed feedback applied: fired %v, facts %v", h.fired, h.eng.Facts("r"))
		}
	})
}

// roundTrip returns rec with its event as encoding/json gives it back.
func roundTrip(t *testing.T, rec engine.Record) engine.Record {
	t.Helper()
	b, err := json.Marshal(rec.Event)
	if err != nil {
		t.Fatal(err)
	}
	var ev engine.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	rec.Event = ev
	return rec
}
