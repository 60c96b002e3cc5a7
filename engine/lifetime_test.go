package engine

import (
	"context"
	"testing"
	"time"
)

func TestNextTimerFiringCountsOnlyTimersThatFire(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := NewFakeClock(t0)
	comp := &Compiler{Clock: clock}
	cond := func(src string) *Condition {
		c, err := comp.CompileCondition(src)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rs := &Ruleset{Name: "rs", Rules: []*Rule{
		{Name: "all", Enabled: true, Kind: All, Timeout: time.Hour, Conditions: []*Condition{cond(`event.k == "a"`), cond(`event.k == "b"`)}, Names: []string{"m_0", "m_1"}},
		{Name: "within", Enabled: true, Kind: Single, Conditions: []*Condition{cond(`event.k == "w"`)}, Names: []string{"m_0"},
			Throttle: &Throttle{Kind: OnceWithin, Window: time.Hour}},
		{Name: "not_all", Enabled: true, Kind: NotAll, Timeout: 10 * time.Minute, Conditions: []*Condition{cond(`event.k == "x"`), cond(`event.k == "y"`)}, Names: []string{"m_0", "m_1"}},
		{Name: "after", Enabled: true, Kind: Single, Conditions: []*Condition{cond(`event.k == "o"`)}, Names: []string{"m_0"},
			Throttle: &Throttle{Kind: OnceAfter, Window: 5 * time.Minute}},
	}}
	rs.MatchMultiple = true
	e := New([]*Ruleset{rs}, Options{Clock: clock})
	ctx := context.Background()
	send := func(seq uint64, k string) {
		if err := e.Process(ctx, Record{Seq: seq, Source: SourceRef{Ruleset: "rs"}, Event: NewEvent(map[string]any{"k": k}, "s", "t", clock.Now())}); err != nil {
			t.Fatal(err)
		}
	}
	send(1, "a")
	send(2, "w")
	if d, ok := e.NextTimerFiring(); ok {
		t.Fatalf("an all partial and a once_within window count as pending firings (%v)", d)
	}
	send(3, "x")
	clock.Advance(time.Minute)
	send(4, "o")
	d, ok := e.NextTimerFiring()
	if !ok || !d.Equal(t0.Add(6*time.Minute)) {
		t.Fatalf("next timer firing %v %v, want the once_after window's end at +6m", d, ok)
	}
	if err := e.AdvanceTo(ctx, clock, t0.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d, ok := e.NextTimerFiring(); !ok || !d.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("next timer firing %v %v, want the not_all window's end at +10m", d, ok)
	}
	if err := e.AdvanceTo(ctx, clock, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d, ok := e.NextTimerFiring(); ok {
		t.Fatalf("pending firing %v after every timer fired", d)
	}
}
