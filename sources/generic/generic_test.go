package generic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

type recorder struct {
	mu     sync.Mutex
	events []engine.Event
	full   int   // answer BacklogError this many times first
	calls  []int // entries per accepted Emit; -n for a Pace(n)
}

func (r *recorder) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full > 0 {
		r.full--
		return nil, &engine.BacklogError{RetryAfter: time.Millisecond}
	}
	r.calls = append(r.calls, len(entries))
	out := make([]engine.Outcome, len(entries))
	for _, e := range entries {
		r.events = append(r.events, e.Event)
	}
	return out, nil
}

func TestGenericEmitsPayloadsInLoops(t *testing.T) {
	spec := Spec()
	src, err := spec.New(engine.SourceConfig{Name: "g", Type: "generic", Ruleset: "rs", Clock: engine.SystemClock{},
		Args: map[string]any{"payload": []any{map[string]any{"a": 1}, map[string]any{"a": 2}}, "loop_count": 2, "create_index": "i"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{full: 2}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 4 {
		t.Fatalf("emitted %d events, want 4 (backlog errors are retried, not dropped)", len(rec.events))
	}
	for i, ev := range rec.events {
		if ev["i"] != i || ev["a"] != 1+i%2 {
			t.Errorf("event %d = %v", i, ev)
		}
		if engine.EventID(ev) == "" || engine.Meta(ev)["source"].(map[string]any)["name"] != "g" {
			t.Errorf("event %d meta = %v", i, ev["meta"])
		}
	}
	// Each loop emits fresh copies.
	rec.events[0]["a"] = 99
	if rec.events[2]["a"] == 99 {
		t.Error("loops share payload maps")
	}
}

func TestGenericCheck(t *testing.T) {
	cases := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, `missing key "payload"`},
		{map[string]any{"payload": "x"}, "payload: want a list of mappings"},
		{map[string]any{"payload": []any{1}}, "payload.0: want a mapping"},
		{map[string]any{"payload": []any{}, "loop_count": -2}, "loop_count: want a whole number >= -1"},
		{map[string]any{"payload": []any{}, "delay": "soon"}, "delay: invalid duration"},
		{map[string]any{"payload": []any{}, "paylod": 1}, `paylod: unknown key "paylod"`},
	}
	for _, tc := range cases {
		err := Spec().Check(tc.args)
		var ae *engine.ArgError
		if err == nil || !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%v) = %v, want *ArgError with %q", tc.args, err, tc.want)
		}
	}
}

// TestGenericDelaysFollowTheClock: delay comes before every event but the
// first and loop_delay before every loop but the first, both on the
// source's clock; nothing is emitted before the clock has moved by them.
func TestGenericDelaysFollowTheClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := engine.NewFakeClock(t0)
	src, err := Spec().New(engine.SourceConfig{Name: "g", Type: "generic", Clock: clock, Args: map[string]any{
		"payload":    []any{map[string]any{"a": 1}, map[string]any{"a": 2}},
		"loop_count": 2, "delay": "1s", "loop_delay": "1m", "create_index": "i",
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make(sourcetest.Events)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()

	// waits are the timers Run arms before each event, in order.
	steps := []struct {
		waits []time.Duration
		a     int
	}{
		{nil, 1},
		{[]time.Duration{time.Second}, 2},
		{[]time.Duration{time.Minute, time.Second}, 1},
		{[]time.Duration{time.Second}, 2},
	}
	elapsed := time.Duration(0)
	for i, st := range steps {
		for _, w := range st.waits {
			if err := clock.BlockUntil(ctx, 1); err != nil {
				t.Fatalf("event %d: no timer armed for the %s wait: %v", i, w, err)
			}
			clock.Advance(w - time.Nanosecond)
			if clock.Timers() != 1 {
				t.Fatalf("event %d: the %s wait ended early", i, w)
			}
			select {
			case ev := <-out:
				t.Fatalf("event %v came before the %s wait passed", ev, w)
			default:
			}
			clock.Advance(time.Nanosecond)
			elapsed += w
		}
		select {
		case ev := <-out:
			if ev["i"] != i || ev["a"] != st.a {
				t.Fatalf("event %d = %v, want i=%d a=%d", i, ev, i, st.a)
			}
			if at, want := engine.Meta(ev)[engine.MetaReceivedAt], t0.Add(elapsed).Format(time.RFC3339Nano); at != want {
				t.Errorf("event %d received_at %v, want %v", i, at, want)
			}
		case <-ctx.Done():
			t.Fatalf("event %d never came", i)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after the last loop")
	}
	if n := clock.Timers(); n != 0 {
		t.Fatalf("%d timers left pending", n)
	}
}

// TestGenericStopsDuringADelay: a source cancelled while it waits returns
// at once and leaves no timer behind.
func TestGenericStopsDuringADelay(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src, err := Spec().New(engine.SourceConfig{Name: "g", Type: "generic", Clock: clock, Args: map[string]any{
		"payload": []any{map[string]any{"a": 1}}, "loop_count": -1, "loop_delay": "1h",
	}})
	if err != nil {
		t.Fatal(err)
	}
	wait, cancelWait := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelWait()
	ctx, cancel := context.WithCancel(wait)
	rec := &recorder{}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	if err := clock.BlockUntil(wait, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-wait.Done():
		t.Fatal("Run did not return when cancelled during loop_delay")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 1 || clock.Timers() != 0 {
		t.Fatalf("%d events, %d timers pending; want 1 and 0", len(rec.events), clock.Timers())
	}
}

// TestGenericEDAArguments: ansible.eda.generic's timing and shaping
// arguments, in virtual time.
func TestGenericEDAArguments(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := engine.NewFakeClock(t0)
	src, err := Spec().New(engine.SourceConfig{Name: "g", Type: "generic", Clock: clock, Args: map[string]any{
		"payload":       []any{map[string]any{"a": 1}, map[string]any{"a": 2}},
		"startup_delay": 2, "event_delay": 1, "repeat_count": 2, "repeat_delay": 0.5, "shutdown_after": 3,
		"timestamp": true, "time_format": "epoch", "blob_size": 3, "display": true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	src.(*Generic).stdout = &shown
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make(sourcetest.Events)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	steps := []struct {
		wait time.Duration
		a    int
	}{{2 * time.Second, 1}, {500 * time.Millisecond, 1}, {time.Second, 2}, {500 * time.Millisecond, 2}}
	for i, st := range steps {
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatalf("event %d: no timer: %v", i, err)
		}
		clock.Advance(st.wait - time.Nanosecond)
		select {
		case ev := <-out:
			t.Fatalf("event %v came before its %s wait", ev, st.wait)
		default:
		}
		clock.Advance(time.Nanosecond)
		select {
		case ev := <-out:
			if ev["a"] != st.a || ev["blob"] != "xxx" || ev["timestamp"] != clock.Now().Unix() {
				t.Fatalf("event %d = %v", i, ev)
			}
		case <-ctx.Done():
			t.Fatalf("event %d never came", i)
		}
	}
	// shutdown_after: the source ends 3s after the last event.
	if err := clock.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3*time.Second - time.Nanosecond)
	select {
	case <-done:
		t.Fatal("ended before shutdown_after")
	default:
	}
	clock.Advance(time.Nanosecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(shown.String(), "\n"); n != 4 {
		t.Errorf("display printed %d lines, want 4:\n%s", n, shown.String())
	}
}

func TestGenericPayloadMappingAndRandomize(t *testing.T) {
	g, err := parse(map[string]any{"payload": map[string]any{"x": 1}})
	if err != nil || len(g.payload) != 1 || g.payload[0]["x"] != 1 {
		t.Fatalf("one mapping payload: %v %v", g, err)
	}
	list := []any{}
	for i := 0; i < 20; i++ {
		list = append(list, map[string]any{"i": i})
	}
	src, err := Spec().New(engine.SourceConfig{Name: "g", Type: "generic", Clock: engine.SystemClock{}, Args: map[string]any{"payload": list, "randomize": true}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	seen, inOrder := map[any]bool{}, true
	for i, ev := range rec.events {
		seen[ev["i"]] = true
		if ev["i"] != i {
			inOrder = false
		}
	}
	if len(seen) != 20 || inOrder {
		t.Fatalf("randomize: %d distinct events, in order %v", len(seen), inOrder)
	}
	for _, bad := range []map[string]any{{"payload": []any{}, "time_format": "utc"}, {"payload": []any{}, "randomize": "yes"}, {"payload": []any{}, "repeat_count": -1}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// Without a delay the events go in batches of maxBatch, one durable write
// each, in order; without a loop_delay a batch spans loops.
func TestGenericBatchesWithoutDelay(t *testing.T) {
	payload := make([]any, 300)
	for i := range payload {
		payload[i] = map[string]any{"a": i}
	}
	src, err := Spec().New(engine.SourceConfig{Name: "g", Type: "generic", Clock: engine.SystemClock{},
		Args: map[string]any{"payload": payload, "loop_count": 2, "create_index": "i", "display": true}})
	if err != nil {
		t.Fatal(err)
	}
	src.(*Generic).stdout = io.Discard
	rec := &recorder{full: 1}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rec.calls) != "[256 256 88]" || len(rec.events) != 600 {
		t.Fatalf("calls %v, %d events; want [256 256 88], 600", rec.calls, len(rec.events))
	}
	for i, ev := range rec.events {
		if ev["i"] != i || ev["a"] != i%300 {
			t.Fatalf("event %d = %v: out of order", i, ev)
		}
	}
}

type paced struct{ recorder }

func (p *paced) Pace(_ context.Context, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, -n)
	return nil
}

// Each batch is paced (engine.Pacer) before it is emitted: the calls are
// -n for a Pace(n), n for an Emit of n. A loop_delay ends the batch.
func TestGenericIsPaced(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src, err := Spec().New(engine.SourceConfig{Name: "g", Type: "generic", Clock: clock,
		Args: map[string]any{"payload": []any{map[string]any{"a": 1}, map[string]any{"a": 2}}, "loop_count": 2, "loop_delay": "1s", "repeat_count": 2}})
	if err != nil {
		t.Fatal(err)
	}
	p := &paced{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, p) }()
	if err := clock.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.calls) != "[-4 4 -4 4]" {
		t.Fatalf("calls %v, want [-4 4 -4 4]", p.calls)
	}
}

// Any non-zero wait keeps one event per Emit: event_delay between items,
// repeat_delay between repeats, and each event leaves before the wait
// that follows it starts.
func TestGenericNoBatchingWithADelay(t *testing.T) {
	for _, args := range []map[string]any{
		{"event_delay": "1s"},
		{"repeat_delay": "1s", "repeat_count": 3},
	} {
		clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		args["payload"] = []any{map[string]any{"a": 1}, map[string]any{"a": 2}, map[string]any{"a": 3}}
		if _, ok := args["repeat_delay"]; ok {
			args["payload"] = []any{map[string]any{"a": 1}}
		}
		src, err := Spec().New(engine.SourceConfig{Name: "g", Type: "generic", Clock: clock, Args: args})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, rec) }()
		ones := []int{1, 1}
		for i := 1; i <= 2; i++ {
			if err := clock.BlockUntil(ctx, 1); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			got := fmt.Sprint(rec.calls)
			rec.mu.Unlock()
			if want := fmt.Sprint(ones[:i]); got != want {
				t.Fatalf("%v: before wait %d calls %v, want %s", args, i, got, want)
			}
			clock.Advance(time.Second)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		cancel()
		if fmt.Sprint(rec.calls) != "[1 1 1]" {
			t.Fatalf("%v: calls %v, want [1 1 1]", args, rec.calls)
		}
	}
}
