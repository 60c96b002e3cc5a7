package engine

import (
	"fmt"
	"time"
)

// FeedbackSourceType is the SourceRef.Type of a journal record that carries
// an action's feedback (facts and events from a playbook's set_stats)
// instead of an event. Journaled like events, feedback is applied in order
// with them, survives a crash, and is replayed with them when rule state is
// rebuilt after a restart.
const FeedbackSourceType = "action_feedback"

// Keys of a feedback record's event.
const (
	FeedbackFacts  = "facts"
	FeedbackEvents = "events"
	// FeedbackInvocation names the invocation the feedback comes from.
	FeedbackInvocation = "invocation_id"
)

// FeedbackEntry builds the journal entry of an invocation's feedback. Its
// dedupe key is the invocation's, so feedback delivered twice (a retried
// journal write) is applied once.
func FeedbackEntry(inv *Invocation, facts, events []map[string]any, at time.Time) Entry {
	list := func(ms []map[string]any) []any {
		out := make([]any, len(ms))
		for i, m := range ms {
			out[i] = m
		}
		return out
	}
	ev := NewEvent(map[string]any{
		FeedbackFacts:      list(facts),
		FeedbackEvents:     list(events),
		FeedbackInvocation: inv.ID,
	}, "feedback", FeedbackSourceType, at)
	return Entry{Event: ev, DedupeKey: "feedback/" + inv.ID}
}

// FeedbackSource is the SourceRef of the feedback records of a ruleset.
func FeedbackSource(ruleset string) SourceRef {
	return SourceRef{Ruleset: ruleset, Name: "feedback", Type: FeedbackSourceType}
}

// feedbackOf reads the facts and events of a feedback record.
func feedbackOf(ev Event) (facts, events []map[string]any, err error) {
	get := func(key string) ([]map[string]any, error) {
		raw, ok := ev[key]
		if !ok || raw == nil {
			return nil, nil
		}
		l, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("%s is %T, not a list", key, raw)
		}
		out := make([]map[string]any, 0, len(l))
		for i, v := range l {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s[%d] is %T, not a map", key, i, v)
			}
			out = append(out, m)
		}
		return out, nil
	}
	if facts, err = get(FeedbackFacts); err != nil {
		return nil, nil, err
	}
	events, err = get(FeedbackEvents)
	return facts, events, err
}
