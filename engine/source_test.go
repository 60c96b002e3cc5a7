package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fullThen answers BacklogError for its first `full` calls, then accepts.
type fullThen struct {
	mu    sync.Mutex
	full  int
	calls int
	retry time.Duration
}

func (f *fullThen) Emit(_ context.Context, _ SourceRef, es []Entry) ([]Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.full {
		return nil, &BacklogError{RetryAfter: f.retry}
	}
	return make([]Outcome, len(es)), nil
}

func (f *fullThen) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// EmitWait retries a full backlog after the advised wait on the source's
// clock (100 ms when the advice is missing or over a second), and gives up
// when ctx ends.
func TestEmitWaitRetriesOnTheClock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry time.Duration
		wait  time.Duration
	}{
		{"advised wait", 300 * time.Millisecond, 300 * time.Millisecond},
		{"no advice", 0, 100 * time.Millisecond},
		{"advice over a second", 5 * time.Second, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			out := &fullThen{full: 2, retry: tc.retry}
			done := make(chan error, 1)
			go func() {
				_, err := EmitWait(ctx, clock, out, SourceRef{Name: "s"}, []Entry{{Event: Event{}}})
				done <- err
			}()
			for want := 1; want <= 2; want++ {
				if err := clock.BlockUntil(ctx, 1); err != nil {
					t.Fatal(err)
				}
				if n := out.count(); n != want {
					t.Fatalf("%d emit calls before the wait %d, want %d", n, want, want)
				}
				clock.Advance(tc.wait - time.Nanosecond)
				if clock.Timers() != 1 {
					t.Fatalf("retried before the wait of %s had passed", tc.wait)
				}
				clock.Advance(time.Nanosecond)
			}
			if err := <-done; err != nil {
				t.Fatalf("EmitWait: %v", err)
			}
			if n := out.count(); n != 3 {
				t.Fatalf("%d emit calls, want 3", n)
			}
		})
	}

	t.Run("ctx ends while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		done := make(chan error, 1)
		go func() {
			_, err := EmitWait(ctx, clock, &fullThen{full: 1 << 30}, SourceRef{}, []Entry{{}})
			done <- err
		}()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := clock.BlockUntil(wctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("EmitWait after cancel: %v, want context.Canceled", err)
		}
	})
}

// pacing is an Emitter and Pacer that logs the calls it gets.
type pacing struct {
	calls   []string
	paceErr error
}

func (p *pacing) Pace(_ context.Context, n int) error {
	p.calls = append(p.calls, fmt.Sprintf("pace %d", n))
	return p.paceErr
}

func (p *pacing) Emit(_ context.Context, _ SourceRef, entries []Entry) ([]Outcome, error) {
	p.calls = append(p.calls, fmt.Sprintf("emit %d", len(entries)))
	return make([]Outcome, len(entries)), nil
}

// TestPace: Pace asks a Pacer and passes its answer on; an Emitter that
// does not pace never holds a source. EmitWait does not pace (action
// feedback uses it, and must not wait for the engine); EmitPaced does, and
// emits nothing when the pace ends with an error.
func TestPace(t *testing.T) {
	p := &pacing{}
	if err := Pace(context.Background(), p, 3); err != nil {
		t.Fatal(err)
	}
	p.paceErr = context.Canceled
	if err := Pace(context.Background(), p, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if _, err := EmitWait(context.Background(), nil, p, SourceRef{}, make([]Entry, 2)); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.calls) != "[pace 3 pace 4 emit 2]" {
		t.Fatalf("calls %v", p.calls)
	}
	p = &pacing{}
	if _, err := EmitPaced(context.Background(), nil, p, SourceRef{}, make([]Entry, 6)); err != nil {
		t.Fatal(err)
	}
	p.paceErr = context.Canceled
	if _, err := EmitPaced(context.Background(), nil, p, SourceRef{}, make([]Entry, 7)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if fmt.Sprint(p.calls) != "[pace 6 emit 6 pace 7]" {
		t.Fatalf("EmitPaced calls %v", p.calls)
	}
	if err := Pace(context.Background(), &fullThen{}, 5); err != nil {
		t.Fatalf("an Emitter that does not pace: %v", err)
	}
}
