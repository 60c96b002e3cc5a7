package journal

import (
	"context"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// A source's position is stored with its events, per source, survives a
// restart, moves on duplicates too, and does not move when a call is
// refused.
func TestPositions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, engine.NewFakeClock(t0), func(o *Options) { o.MaxBacklog = 6 })
	pos := func(src engine.SourceRef) string {
		t.Helper()
		p, err := s.Position(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := pos(srcA); got != "" {
		t.Fatalf("fresh store: position %q, want none", got)
	}
	emit(t, s, srcA, engine.Entry{Event: ev(1), Position: "1"}, engine.Entry{Event: ev(2), Position: "2"}, engine.Entry{Event: ev(3)})
	emit(t, s, srcB, engine.Entry{Event: ev(4), Position: "b4"})
	if got := pos(srcA); got != "2" {
		t.Fatalf("position %q, want the last one carried, 2", got)
	}
	if got := pos(srcB); got != "b4" {
		t.Fatalf("other source: %q, want b4", got)
	}
	// A duplicate was delivered: its position counts.
	emit(t, s, srcA, engine.Entry{Event: ev(5), DedupeKey: "k", Position: "5"})
	if out := emit(t, s, srcA, engine.Entry{Event: ev(5), DedupeKey: "k", Position: "6"}); out[0] != engine.Duplicate {
		t.Fatalf("outcome %v, want duplicate", out[0])
	}
	if got := pos(srcA); got != "6" {
		t.Fatalf("after a duplicate: %q, want 6", got)
	}
	// An entry without a position leaves it alone.
	emit(t, s, srcA, engine.Entry{Event: ev(8)})
	if got := pos(srcA); got != "6" {
		t.Fatalf("after an entry without position: %q, want 6", got)
	}
	// Over the backlog bound nothing is stored, the position included.
	if _, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(7), Position: "7"}}); err == nil {
		t.Fatal("want a backlog error")
	}
	if got := pos(srcA); got != "6" {
		t.Fatalf("after a refused call: %q, want 6", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, engine.NewFakeClock(t0), nil)
	if got := pos(srcA); got != "6" {
		t.Fatalf("after reopening: %q, want 6", got)
	}
}
