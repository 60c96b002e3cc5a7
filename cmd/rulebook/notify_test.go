package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// notifyRetry tries a retryable failure again as the notify action's
// policy says, waiting its backoff on the clock, and gives up on a
// failure that is not retryable, when the retries are spent, or before a
// wait that would end after the approval's deadline.
func TestRetryNotify(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	retryable := engine.Result{Status: engine.Retryable, Error: "502 for token s3cret"}
	// With no jitter a wait is half the base: 500 ms, 1 s, 2 s.
	policy := engine.Policy{Retries: 3, Delay: time.Second, MaxDelay: time.Minute}
	ms := time.Millisecond
	cases := []struct {
		name     string
		results  []engine.Result
		deadline time.Duration // after t0; 0: none
		waits    []time.Duration
		last     string
	}{
		{"succeeds after two retryable failures", []engine.Result{retryable, retryable, engine.Success("")}, 0, []time.Duration{500 * ms, time.Second}, "approval notify sent"},
		{"a failure that is not retryable", []engine.Result{engine.Failure("404")}, 0, nil, "approval notify failed"},
		{"the retries are spent", []engine.Result{retryable, retryable, retryable, retryable}, 0, []time.Duration{500 * ms, time.Second, 2 * time.Second}, "approval notify failed"},
		{"the deadline leaves no time", []engine.Result{retryable, retryable}, time.Second, []time.Duration{500 * ms}, "leaves no time to try again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := engine.NewFakeClock(t0)
			var logs rbtest.Buffer
			var deadline time.Time
			if tc.deadline > 0 {
				deadline = t0.Add(tc.deadline)
			}
			sent := make(chan time.Time, len(tc.results)+1)
			done := make(chan struct{})
			n := 0
			go func() {
				defer close(done)
				r := notifyRetry{policy: policy, deadline: deadline, clock: clock, jitter: func() float64 { return 0 },
					redact: func(s string) string { return strings.ReplaceAll(s, "s3cret", "***") }, log: zerolog.New(&logs)}
				r.run(func() engine.Result {
					sent <- clock.Now()
					n++
					return tc.results[n-1]
				})
			}()
			next := func(what string) time.Time {
				t.Helper()
				select {
				case at := <-sent:
					return at
				case <-time.After(10 * time.Second):
					t.Fatalf("no %s", what)
					return time.Time{}
				}
			}
			at := next("first attempt")
			for i, w := range tc.waits {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := clock.BlockUntil(ctx, 1); err != nil {
					t.Fatalf("retry %d: the notifier does not wait: %v", i+1, err)
				}
				cancel()
				// A wait shorter than w would end here (Advance fires
				// due timers before it returns), and one of w not.
				clock.Advance(w - time.Nanosecond)
				if clock.Timers() != 1 {
					t.Fatalf("retry %d: the wait ended before %v", i+1, w)
				}
				clock.Advance(time.Nanosecond)
				if got := next(fmt.Sprintf("retry %d after %v", i+1, w)); got.Sub(at) != w {
					t.Fatalf("retry %d %v after the attempt before, want %v", i+1, got.Sub(at), w)
				}
				at = clock.Now()
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the notifier did not return")
			}
			if n != len(tc.results) {
				t.Fatalf("%d attempts, want %d", n, len(tc.results))
			}
			out := logs.String()
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if !strings.Contains(lines[len(lines)-1], tc.last) {
				t.Errorf("last log line %s, want %q", lines[len(lines)-1], tc.last)
			}
			if strings.Contains(out, "s3cret") {
				t.Errorf("an error logged unredacted:\n%s", out)
			}
		})
	}
}

// A notification waiting to be tried again gives up when the run ends
// (stop is closed): the next start sends it again.
func TestRetryNotifyStopsWithTheRun(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var logs rbtest.Buffer
	stop := make(chan struct{})
	done := make(chan struct{})
	sends := 0
	go func() {
		defer close(done)
		r := notifyRetry{policy: engine.Policy{Retries: 5, Delay: time.Minute}, clock: clock, jitter: func() float64 { return 0 },
			redact: func(s string) string { return s }, stop: stop, log: zerolog.New(&logs)}
		r.run(func() engine.Result {
			sends++
			return engine.Result{Status: engine.Retryable, Error: "502"}
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clock.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("the notifier does not wait to try again: %v", err)
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the notifier still waits after the run ended")
	}
	if sends != 1 {
		t.Errorf("sent %d times, want 1", sends)
	}
	if !strings.Contains(logs.String(), "the run is ending") {
		t.Errorf("no log line says why it gave up:\n%s", logs.String())
	}
	if n := clock.Timers(); n != 0 {
		t.Errorf("%d timers left on the clock", n)
	}
}
