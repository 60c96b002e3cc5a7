package journal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// factList renders Facts as "ruleset/order:key=value ...".
func factList(t *testing.T, s *Store) string {
	t.Helper()
	facts, err := s.Facts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, f := range facts {
		out += fmt.Sprintf("%s/%d:%v ", f.Ruleset, f.Order, f.Fact["v"])
	}
	return out
}

// DoneWithFacts stores fact changes with Done, atomically; Facts returns
// what is stored, by ruleset in order, across a reopen.
func TestDoneWithFacts(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil, nil)
	ctx := context.Background()
	emit(t, s, srcA, engine.Entry{Event: ev(1)}, engine.Entry{Event: ev(2)})
	set := func(rs string, order uint64, v any) engine.FactChange {
		return engine.FactChange{Ruleset: rs, Order: order, Fact: map[string]any{"v": v}}
	}
	if err := s.DoneWithFacts(ctx, 1, []engine.FactChange{set("rs", 1, "b"), set("rs", 0, "a"), set("other", 7, "c"), set("rs", 300, "d")}); err != nil {
		t.Fatal(err)
	}
	if got, want := factList(t, s), "rs/0:a rs/1:b rs/300:d other/7:c "; got != want {
		t.Fatalf("facts %q, want %q", got, want)
	}
	if done, _ := s.LastDone(ctx); done != 1 {
		t.Fatalf("done %d, want 1", done)
	}

	// A retraction, a repeated done seq, and a fact JSON cannot hold.
	if err := s.DoneWithFacts(ctx, 1, []engine.FactChange{{Ruleset: "rs", Order: 0}, set("rs", 2, math.NaN())}); err != nil {
		t.Fatal(err)
	}
	if got, want := factList(t, s), "rs/1:b rs/300:d other/7:c "; got != want {
		t.Fatalf("after a retraction: facts %q, want %q", got, want)
	}

	// A done beyond the last record fails, and stores no fact.
	if err := s.DoneWithFacts(ctx, 9, []engine.FactChange{set("rs", 3, "x")}); err == nil {
		t.Fatal("done beyond the last record accepted")
	}
	if got, want := factList(t, s), "rs/1:b rs/300:d other/7:c "; got != want {
		t.Fatalf("after a failed done: facts %q, want %q", got, want)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, nil, nil)
	if got, want := factList(t, s), "rs/1:b rs/300:d other/7:c "; got != want {
		t.Fatalf("after a reopen: facts %q, want %q", got, want)
	}

	// Like every read, Facts on a closed store is ErrClosed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Facts(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Facts on a closed store: %v, want %v", err, engine.ErrClosed)
	}
}

func TestFactKey(t *testing.T) {
	for _, c := range []struct {
		rs    string
		order uint64
	}{{"", 0}, {"rs", 1}, {"a\x00b", math.MaxUint64}, {string(make([]byte, 300)), 42}} {
		rs, order, err := parseFactKey(factKey(c.rs, c.order))
		if err != nil || rs != c.rs || order != c.order {
			t.Errorf("factKey(%q, %d) parses as %q, %d, %v", c.rs, c.order, rs, order, err)
		}
	}
	if _, _, err := parseFactKey([]byte{pFact, 5, 'a'}); err == nil {
		t.Error("a truncated fact key parsed")
	}
}
