package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name   string
		policy engine.Policy
		n      int
		r      float64
		want   time.Duration
	}{
		{"defaults first retry lowest", engine.Policy{}, 1, 0, 500 * time.Millisecond},
		{"defaults first retry middle", engine.Policy{}, 1, 0.5, 750 * time.Millisecond},
		{"doubles", engine.Policy{Delay: time.Second}, 3, 0, 2 * time.Second},
		{"capped by max_delay", engine.Policy{Delay: time.Second, MaxDelay: 3 * time.Second}, 5, 0, 1500 * time.Millisecond},
		{"default max_delay 5m", engine.Policy{Delay: time.Minute}, 10, 0.999999, 5*time.Minute - 150*time.Microsecond},
		{"huge n does not overflow", engine.Policy{Delay: time.Second, MaxDelay: time.Hour}, 1000, 0, 30 * time.Minute},
		{"max_delay below delay caps", engine.Policy{Delay: 10 * time.Second, MaxDelay: 2 * time.Second}, 1, 0, time.Second},
		{"out of range r acts as 0", engine.Policy{Delay: time.Second}, 1, 1.5, 500 * time.Millisecond},
		{"n below 1 is the first retry", engine.Policy{Delay: time.Second}, 0, 0, 500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Backoff(tc.policy, tc.n, tc.r)
			if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("Backoff(%+v, %d, %v) = %s, want %s", tc.policy, tc.n, tc.r, got, tc.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	retry := engine.RetryableFailure("503 from upstream")
	tests := []struct {
		name      string
		policy    engine.Policy
		results   []engine.Result
		want      engine.InvocationStatus
		attempts  int
		waits     []time.Duration
		lastError string
	}{
		{
			name:    "retryable twice then success",
			policy:  engine.Policy{Retries: 3, Delay: time.Second},
			results: []engine.Result{retry, retry, engine.Success("ok")},
			want:    engine.StatusSucceeded, attempts: 3,
			waits: []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond},
		},
		{
			name:    "dead letter after the last attempt",
			policy:  engine.Policy{Retries: 3, Delay: time.Second, MaxDelay: 2 * time.Second},
			results: []engine.Result{retry},
			want:    engine.StatusFailed, attempts: 4,
			waits:     []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond},
			lastError: "503 from upstream",
		},
		{
			name:    "permanent failure is not retried",
			policy:  engine.Policy{Retries: 3, Delay: time.Second},
			results: []engine.Result{engine.Failure("400 bad request")},
			want:    engine.StatusFailed, attempts: 1, lastError: "400 bad request",
		},
		{
			name:    "no retries configured",
			policy:  engine.Policy{},
			results: []engine.Result{retry},
			want:    engine.StatusFailed, attempts: 1, lastError: "503 from upstream",
		},
		{
			name:   "retry_after longer than backoff is honoured",
			policy: engine.Policy{Retries: 2, Delay: time.Second},
			results: []engine.Result{
				{Status: engine.Retryable, Error: "429", RetryAfter: 10 * time.Second, HTTPStatus: 429},
				engine.Success("ok"),
			},
			want: engine.StatusSucceeded, attempts: 2, waits: []time.Duration{10 * time.Second},
		},
		{
			name:   "retry_after shorter than backoff keeps backoff",
			policy: engine.Policy{Retries: 2, Delay: 4 * time.Second},
			results: []engine.Result{
				{Status: engine.Retryable, Error: "429", RetryAfter: time.Second},
				engine.Success("ok"),
			},
			want: engine.StatusSucceeded, attempts: 2, waits: []time.Duration{3 * time.Second},
		},
		{
			name:    "unknown result status is a permanent failure",
			policy:  engine.Policy{Retries: 2},
			results: []engine.Result{{Status: "maybe", Error: "hm"}},
			want:    engine.StatusFailed, attempts: 1, lastError: `action returned unknown status "maybe": hm`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			act := &script{results: tc.results}
			h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
			h.submit(newFiring("f", "rs", false, invSpec{action: "x", policy: tc.policy}))
			h.waitFinal("f/0")
			st := h.store.state("f/0")
			if st.Status != tc.want {
				t.Fatalf("status %s, want %s", st.Status, tc.want)
			}
			if len(st.Attempts) != tc.attempts || act.count() != tc.attempts {
				t.Fatalf("%d attempts recorded, %d runs, want %d", len(st.Attempts), act.count(), tc.attempts)
			}
			if got := h.clock.waits(); !slices.Equal(got, tc.waits) {
				t.Fatalf("backoff waits %v, want %v", got, tc.waits)
			}
			// Each attempt starts when the previous wait ended.
			at := t0
			for i, a := range st.Attempts {
				if !a.Start.Equal(at) || a.N != i+1 {
					t.Fatalf("attempt %d: n=%d start %s, want n=%d start %s", i, a.N, a.Start, i+1, at)
				}
				if i < len(tc.waits) {
					at = at.Add(tc.waits[i])
				}
			}
			if last := st.Attempts[len(st.Attempts)-1]; last.Error != tc.lastError {
				t.Fatalf("last error %q, want %q", last.Error, tc.lastError)
			}
			// The store saw running before every attempt and retrying with
			// NextAttempt between them.
			var seq []string
			for _, s := range h.store.history {
				seq = append(seq, string(s.Status))
				if s.Status == engine.StatusRetrying && s.NextAttempt.IsZero() {
					t.Fatal("retrying state without next_attempt")
				}
			}
			want := []string{}
			for i := 0; i < tc.attempts; i++ {
				want = append(want, "running")
				if i < tc.attempts-1 {
					want = append(want, "retrying")
				}
			}
			want = append(want, string(tc.want))
			if !slices.Equal(seq, want) {
				t.Fatalf("recorded statuses %v, want %v", seq, want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name    string
		policy  time.Duration
		def     time.Duration
		want    time.Duration
		wantErr string
	}{
		{"policy timeout", 30 * time.Millisecond, time.Hour, 30 * time.Millisecond, "timed out after 30ms"},
		{"default timeout", 0, 40 * time.Millisecond, 40 * time.Millisecond, "timed out after 40ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var left time.Duration
			act := actionFunc(func(ctx context.Context, inv *engine.Invocation) engine.Result {
				dl, ok := ctx.Deadline()
				if !ok {
					return engine.Failure("no deadline")
				}
				mu.Lock()
				left = time.Until(dl)
				mu.Unlock()
				<-ctx.Done()
				return engine.Result{Status: engine.Retryable}
			})
			h := start(t, newMemStore(), newFakeClock(), Config{DefaultTimeout: tc.def, Actions: ActionMap(map[string]engine.Action{"x": act})})
			h.submit(newFiring("f", "rs", false, invSpec{action: "x", policy: engine.Policy{Timeout: tc.policy}}))
			h.waitFinal("f/0")
			st := h.store.state("f/0")
			if st.Status != engine.StatusFailed || st.Attempts[0].Error != tc.wantErr {
				t.Fatalf("status %s error %q, want failed %q", st.Status, st.Attempts[0].Error, tc.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if left > tc.want || left < tc.want-5*time.Second {
				t.Fatalf("deadline %s away, want about %s", left, tc.want)
			}
		})
	}
}

func TestFiringOrderAndSkip(t *testing.T) {
	tests := []struct {
		name   string
		first  engine.Result
		want   []engine.InvocationStatus
		runs   int
		errors []string
	}{
		{
			name:  "all succeed in order",
			first: engine.Success("ok"),
			want:  []engine.InvocationStatus{engine.StatusSucceeded, engine.StatusSucceeded, engine.StatusSucceeded},
			runs:  3,
		},
		{
			name:   "failure skips the rest",
			first:  engine.Failure("boom"),
			want:   []engine.InvocationStatus{engine.StatusFailed, engine.StatusFailed, engine.StatusFailed},
			runs:   1,
			errors: []string{"boom", ErrTextSkipped, ErrTextSkipped},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var order []string
			inFlight := 0
			overlap := false
			act := actionFunc(func(ctx context.Context, inv *engine.Invocation) engine.Result {
				mu.Lock()
				inFlight++
				overlap = overlap || inFlight > 1
				order = append(order, inv.ID)
				mu.Unlock()
				defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
				if inv.Index == 0 {
					return tc.first
				}
				return engine.Success("ok")
			})
			h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
			h.submit(newFiring("f", "rs", false, invSpec{action: "x"}, invSpec{action: "x"}, invSpec{action: "x"}))
			h.waitFinal("f/0", "f/1", "f/2")
			for i, want := range tc.want {
				st := h.store.state(fmt.Sprintf("f/%d", i))
				if st.Status != want {
					t.Fatalf("f/%d: %s, want %s", i, st.Status, want)
				}
				if tc.errors != nil && st.Attempts[len(st.Attempts)-1].Error != tc.errors[i] {
					t.Fatalf("f/%d: error %q, want %q", i, st.Attempts[len(st.Attempts)-1].Error, tc.errors[i])
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if overlap {
				t.Fatal("actions of one firing overlapped")
			}
			if want := []string{"f/0", "f/1", "f/2"}[:tc.runs]; !slices.Equal(order, want) {
				t.Fatalf("ran %v, want %v", order, want)
			}
		})
	}
}

func TestInvocationWaitsForPrevious(t *testing.T) {
	g := newGate(func(*engine.Invocation) []string { return nil })
	h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": g})})
	h.submit(newFiring("f", "rs", false, invSpec{action: "x"}, invSpec{action: "x"}))
	waitFor(t, "first action running", func() bool { return g.running("*") == 1 })
	if got := h.store.status("f/1"); got != engine.StatusQueued {
		t.Fatalf("second invocation is %s while the first runs", got)
	}
	if ids := g.startedIDs(); !slices.Equal(ids, []string{"f/0"}) {
		t.Fatalf("started %v while the first runs", ids)
	}
	g.step(t)
	waitFor(t, "second action running", func() bool { return slices.Equal(g.startedIDs(), []string{"f/0", "f/1"}) })
	g.step(t)
	h.waitFinal("f/0", "f/1")
}

func TestExecutionStrategy(t *testing.T) {
	tests := []struct {
		name       string
		sequential bool
		rulesets   []string
		wantMax    int
	}{
		{"parallel firings run together", false, []string{"a", "a", "a"}, 3},
		{"sequential firings wait for each other", true, []string{"a", "a", "a"}, 1},
		{"sequential rulesets do not wait for each other", true, []string{"a", "b", "c"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(func(*engine.Invocation) []string { return nil })
			h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": g})})
			var ids []string
			for i, rs := range tc.rulesets {
				id := fmt.Sprintf("f%d", i)
				h.submit(newFiring(id, rs, tc.sequential, invSpec{action: "x"}, invSpec{action: "x"}))
				ids = append(ids, id+"/0", id+"/1")
			}
			waitFor(t, "actions running", func() bool { return g.running("*") == tc.wantMax })
			for range ids {
				g.step(t)
			}
			h.waitFinal(ids...)
			if got := g.maxOf("*"); got != tc.wantMax {
				t.Fatalf("at most %d ran at once, want %d", got, tc.wantMax)
			}
			if tc.wantMax == 1 {
				if got := g.startedIDs(); !slices.Equal(got, ids) {
					t.Fatalf("ran %v, want submit order %v", got, ids)
				}
			}
		})
	}
}

func TestConcurrencyLimits(t *testing.T) {
	type sub struct {
		action string
		lock   string
	}
	tests := []struct {
		name      string
		global    int
		perAction map[string]int
		subs      []sub
		// wantRunning is how many run at once at first, by key: "*" for
		// all, the action type, or "lock:"+key.
		wantRunning map[string]int
		wantMax     map[string]int
	}{
		{
			name:        "global limit",
			global:      3,
			subs:        []sub{{action: "a"}, {action: "a"}, {action: "b"}, {action: "b"}, {action: "a"}, {action: "b"}, {action: "a"}},
			wantRunning: map[string]int{"*": 3},
			wantMax:     map[string]int{"*": 3},
		},
		{
			name:        "per action limit leaves room for others",
			global:      10,
			perAction:   map[string]int{"a": 2},
			subs:        []sub{{action: "a"}, {action: "a"}, {action: "a"}, {action: "a"}, {action: "b"}, {action: "b"}},
			wantRunning: map[string]int{"*": 4, "a": 2, "b": 2},
			wantMax:     map[string]int{"a": 2, "b": 2, "*": 4},
		},
		{
			name:   "lock excludes, and a waiting holder takes no global slot",
			global: 2,
			subs: []sub{
				{action: "a", lock: "host1"}, {action: "a", lock: "host1"}, {action: "a", lock: "host1"},
				{action: "a", lock: "host2"},
			},
			wantRunning: map[string]int{"*": 2, "lock:host1": 1, "lock:host2": 1},
			wantMax:     map[string]int{"*": 2, "lock:host1": 1, "lock:host2": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(func(inv *engine.Invocation) []string {
				keys := []string{inv.Action}
				if inv.Policy.Lock != "" {
					keys = append(keys, "lock:"+inv.Policy.Lock)
				}
				return keys
			})
			h := start(t, newMemStore(), newFakeClock(), Config{
				MaxConcurrency: tc.global, PerAction: tc.perAction,
				Actions: ActionMap(map[string]engine.Action{"a": g, "b": g}),
			})
			var ids []string
			for i, s := range tc.subs {
				id := fmt.Sprintf("f%d", i)
				h.submit(newFiring(id, "rs", false, invSpec{action: s.action, policy: engine.Policy{Lock: s.lock}}))
				ids = append(ids, id+"/0")
			}
			waitFor(t, fmt.Sprintf("running %v", tc.wantRunning), func() bool {
				for k, n := range tc.wantRunning {
					if g.running(k) != n {
						return false
					}
				}
				return true
			})
			if st := h.d.Stats(); st != (Stats{Firings: len(tc.subs), Running: tc.wantRunning["*"]}) {
				t.Fatalf("stats %+v, want %d firings and %d running", st, len(tc.subs), tc.wantRunning["*"])
			}
			for range ids {
				g.step(t)
			}
			h.waitFinal(ids...)
			for _, k := range sortedKeys(tc.wantMax) {
				if got := g.maxOf(k); got != tc.wantMax[k] {
					t.Errorf("%s: at most %d at once, want %d", k, got, tc.wantMax[k])
				}
			}
		})
	}
}

func TestUnknownActionType(t *testing.T) {
	act := &script{results: []engine.Result{engine.Success("ok")}}
	h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
	h.submit(newFiring("f", "rs", false, invSpec{action: "nope", policy: engine.Policy{Retries: 5}}, invSpec{action: "x"}))
	h.waitFinal("f/0", "f/1")
	st := h.store.state("f/0")
	if st.Status != engine.StatusFailed || len(st.Attempts) != 1 || st.Attempts[0].Error != `unknown action type "nope"` {
		t.Fatalf("unknown type: %+v", st)
	}
	if h.store.status("f/1") != engine.StatusFailed || act.count() != 0 {
		t.Fatalf("later action: %s after %d runs, want failed and not run", h.store.status("f/1"), act.count())
	}
}

func TestRenderErrorFailsWithoutRunning(t *testing.T) {
	act := &script{results: []engine.Result{engine.Success("ok")}}
	h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
	f := newFiring("f", "rs", false, invSpec{action: "x", policy: engine.Policy{Retries: 3}}, invSpec{action: "x"})
	f.Invocations[0].RenderError = `url: unknown name "evnt"`
	h.submit(f)
	h.waitFinal("f/0", "f/1")
	st := h.store.state("f/0")
	if st.Status != engine.StatusFailed || len(st.Attempts) != 1 || st.Attempts[0].Error != `arguments did not render: url: unknown name "evnt"` {
		t.Fatalf("render error: %s %+v", st.Status, st.Attempts)
	}
	if h.store.status("f/1") != engine.StatusFailed || act.count() != 0 {
		t.Fatalf("later action %s after %d runs, want skipped", h.store.status("f/1"), act.count())
	}
}

func TestPanickingAction(t *testing.T) {
	act := actionFunc(func(context.Context, *engine.Invocation) engine.Result { panic("kaboom") })
	h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
	h.submit(newFiring("f", "rs", false, invSpec{action: "x", policy: engine.Policy{Retries: 3}}))
	h.waitFinal("f/0")
	st := h.store.state("f/0")
	if st.Status != engine.StatusFailed || len(st.Attempts) != 1 || st.Attempts[0].Error != "action panicked: kaboom" {
		t.Fatalf("panic: %+v", st)
	}
}

func TestSecrets(t *testing.T) {
	const secret = "s3cr3t-Value"
	t.Setenv("DISPATCH_TEST_TOKEN", secret)
	var mu sync.Mutex
	var seen []any
	echo := actionFunc(func(ctx context.Context, inv *engine.Invocation) engine.Result {
		mu.Lock()
		seen = append(seen, inv.Args["token"], inv.Args["headers"], inv.Args["literal"])
		mu.Unlock()
		tok := inv.Args["token"].(string)
		return engine.Result{
			Status:  engine.Retryable,
			Error:   "auth failed with " + tok,
			Output:  "token=" + tok + "\n",
			Details: map[string]any{"sent": []any{tok}, tok: "as key"},
		}
	})
	var onResult []string
	var orMu sync.Mutex
	h := start(t, newMemStore(), newFakeClock(), Config{
		Actions: ActionMap(map[string]engine.Action{"x": echo}),
		OnResult: func(st *engine.InvocationState) {
			orMu.Lock()
			defer orMu.Unlock()
			onResult = append(onResult, fmt.Sprintf("%+v", *st))
		},
	})
	args := map[string]any{
		"token":   "${env:DISPATCH_TEST_TOKEN}",
		"headers": map[string]any{"Authorization": "Bearer ${env:DISPATCH_TEST_TOKEN}"},
		"literal": "$${env:DISPATCH_TEST_TOKEN}",
	}
	h.submit(newFiring("f", "rs", false, invSpec{action: "x", args: args, policy: engine.Policy{Retries: 1}}))
	h.waitFinal("f/0")
	h.waitIdle()

	mu.Lock()
	if len(seen) != 6 || seen[0] != secret || seen[1].(map[string]any)["Authorization"] != "Bearer "+secret {
		t.Fatalf("action saw %v, want the resolved secret", seen)
	}
	if seen[2] != "${env:DISPATCH_TEST_TOKEN}" {
		t.Fatalf("action saw the escaped literal as %q, want ${env:DISPATCH_TEST_TOKEN}", seen[2])
	}
	mu.Unlock()
	st := h.store.state("f/0")
	if st.Invocation.Args["token"] != "${env:DISPATCH_TEST_TOKEN}" || st.Invocation.Args["literal"] != "${env:DISPATCH_TEST_TOKEN}" {
		t.Fatalf("stored args changed: %v", st.Invocation.Args)
	}
	a := st.Attempts[0]
	if a.Output != "token=******\n" || a.Error != "auth failed with ******" {
		t.Fatalf("stored output %q error %q, want masked", a.Output, a.Error)
	}
	if a.Details["sent"].([]any)[0] != "******" || a.Details["******"] != "as key" {
		t.Fatalf("stored details %v, want masked", a.Details)
	}
	if all := h.store.historyJSON(); strings.Contains(all, secret) {
		t.Fatalf("secret reached the store: %s", all)
	}
	orMu.Lock()
	defer orMu.Unlock()
	if len(onResult) == 0 {
		t.Fatal("OnResult never called")
	}
	for _, s := range onResult {
		if strings.Contains(s, secret) {
			t.Fatalf("secret reached OnResult: %s", s)
		}
	}
}

func TestUnresolvableSecretFailsPermanently(t *testing.T) {
	act := &script{results: []engine.Result{engine.Success("ok")}}
	h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
	h.submit(newFiring("f", "rs", false, invSpec{
		action: "x", policy: engine.Policy{Retries: 3},
		args: map[string]any{"token": "${env:DISPATCH_TEST_SURELY_UNSET_VAR}"},
	}))
	h.waitFinal("f/0")
	st := h.store.state("f/0")
	if st.Status != engine.StatusFailed || len(st.Attempts) != 1 || act.count() != 0 {
		t.Fatalf("state %+v after %d runs, want failed without running", st, act.count())
	}
	if !strings.Contains(st.Attempts[0].Error, "DISPATCH_TEST_SURELY_UNSET_VAR") || !strings.HasPrefix(st.Attempts[0].Error, "args: token: ") {
		t.Fatalf("error %q does not name the key and reference", st.Attempts[0].Error)
	}
}

// TestLegacyInvocationWithSecretRefIsNotRun: an invocation queued by a
// version that resolved every "${env:...}" in rendered text cannot tell the
// rulebook's references from an event's, so it fails without running rather
// than hand an event-chosen secret to the action. One without a reference
// runs as before.
func TestLegacyInvocationWithSecretRefIsNotRun(t *testing.T) {
	t.Setenv("DISPATCH_TEST_TOKEN", "s3cr3t-Value")
	act := &script{results: []engine.Result{engine.Success("ok")}}
	h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
	h.submit(newFiring("f", "rs", false, invSpec{action: "x", legacy: true, args: map[string]any{"text": "price=${env:DISPATCH_TEST_TOKEN}"}}))
	h.submit(newFiring("g", "rs", false, invSpec{action: "x", legacy: true, args: map[string]any{"text": "plain"}}))
	h.waitFinal("f/0")
	h.waitFinal("g/0")
	st := h.store.state("f/0")
	if st.Status != engine.StatusFailed || act.count() != 1 || !strings.Contains(st.Attempts[0].Error, "earlier version") {
		t.Fatalf("legacy invocation with a reference: %+v after %d runs, want failed without running", st, act.count())
	}
	if st := h.store.state("g/0"); st.Status != engine.StatusSucceeded {
		t.Fatalf("legacy invocation without a reference: %+v, want it run", st)
	}
}

func TestOutputLimit(t *testing.T) {
	long := strings.Repeat("é", 20) // 40 bytes
	act := &script{results: []engine.Result{{Status: engine.Succeeded, Output: long}}}
	h := start(t, newMemStore(), newFakeClock(), Config{OutputLimit: 9, Actions: ActionMap(map[string]engine.Action{"x": act})})
	h.submit(newFiring("f", "rs", false, invSpec{action: "x"}))
	h.waitFinal("f/0")
	if got, want := h.store.state("f/0").Attempts[0].Output, "éééé\n[... 32 more bytes]"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestFeedback(t *testing.T) {
	facts := []map[string]any{{"restarted": true}}
	events := []map[string]any{{"type": "done"}}
	tests := []struct {
		name   string
		result engine.Result
		want   int
	}{
		{"success feeds back", engine.Result{Status: engine.Succeeded, Facts: facts, Events: events}, 1},
		{"success without data does not", engine.Success("ok"), 0},
		{"failure does not", engine.Result{Status: engine.Failed, Error: "x", Facts: facts}, 0},
		{"to another ruleset", engine.Result{Status: engine.Succeeded, Facts: facts, Events: events, FeedbackRuleset: "db"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			act := &script{results: []engine.Result{tc.result}}
			h := start(t, newMemStore(), newFakeClock(), Config{
				Actions: ActionMap(map[string]engine.Action{"x": act}),
				Feedback: func(inv *engine.Invocation, f, e []map[string]any) {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, fmt.Sprintf("%s %s %v %v", inv.Ruleset, inv.ID, f, e))
				},
			})
			h.submit(newFiring("f", "web", false, invSpec{action: "x"}))
			h.waitFinal("f/0")
			h.waitIdle()
			mu.Lock()
			defer mu.Unlock()
			if len(got) != tc.want {
				t.Fatalf("feedback %v, want %d calls", got, tc.want)
			}
			ruleset := "web"
			if tc.result.FeedbackRuleset != "" {
				ruleset = tc.result.FeedbackRuleset
			}
			if tc.want == 1 && got[0] != ruleset+" f/0 [map[restarted:true]] [map[type:done]]" {
				t.Fatalf("feedback %q", got[0])
			}
		})
	}
}

// Feedback is handed over before the success is recorded: whoever waits
// for the invocation to finish (a run whose sources ended) then finds the
// feedback journaled, and a crash in between cannot lose it.
func TestFeedbackBeforeSuccessIsRecorded(t *testing.T) {
	store := newMemStore()
	act := &script{results: []engine.Result{{Status: engine.Succeeded, Events: []map[string]any{{"done": true}}}}}
	var statusAtFeedback engine.InvocationStatus
	h := start(t, store, newFakeClock(), Config{
		Actions: ActionMap(map[string]engine.Action{"x": act}),
		Feedback: func(inv *engine.Invocation, _, _ []map[string]any) {
			statusAtFeedback = store.status(inv.ID)
		},
	})
	h.submit(newFiring("f", "web", false, invSpec{action: "x"}))
	h.waitFinal("f/0")
	h.waitIdle()
	if statusAtFeedback != engine.StatusRunning {
		t.Fatalf("status when the feedback was handed over: %q, want %q", statusAtFeedback, engine.StatusRunning)
	}
}

func TestSubmit(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) { testSubmit(t, kind.wrap) })
	}
}

func testSubmit(t *testing.T, wrap func(*memStore) engine.ActionStore) {
	act := &script{results: []engine.Result{engine.Success("ok")}}
	store := newMemStore()
	cfg := Config{Store: wrap(store), Clock: newFakeClock(), Actions: ActionMap(map[string]engine.Action{"x": act})}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := newFiring("f", "rs", false, invSpec{action: "x"})
	if err := d.Submit(context.Background(), f); err == nil || !strings.Contains(err.Error(), "before start") {
		t.Fatalf("submit before start: %v", err)
	}
	h := start(t, store, newFakeClock(), Config{Store: cfg.Store, Actions: cfg.Actions})
	h.submit(f)
	h.waitFinal("f/0")
	h.waitIdle()
	n := len(store.history)
	rs, reader := cfg.Store.(*readerStore)
	if reader && rs.reads.Load() != 0 {
		t.Fatalf("%d firing reads for a new firing, want none", rs.reads.Load())
	}

	// Resubmitting a finished firing (the engine replays its event after a
	// crash, so the firing is marked redelivered) must not run it again nor
	// overwrite its record.
	f.Redelivered = true
	h.submit(f)
	h.submit(f)
	if act.count() != 1 || len(store.history) != n || store.status("f/0") != engine.StatusSucceeded {
		t.Fatalf("resubmit ran %d times, %d updates (want 1, %d)", act.count(), len(store.history), n)
	}
	if reader && rs.reads.Load() != 2 {
		t.Fatalf("%d firing reads, want one per redelivered submit", rs.reads.Load())
	}

	// A newer firing of the same rule and event does not hide the older
	// one from the lookup.
	g1 := newFiring("g1", "rs", false, invSpec{action: "x"})
	g2 := newFiring("g2", "rs", false, invSpec{action: "x"})
	g2.EventIDs = g1.EventIDs
	h.submit(g1)
	h.waitFinal("g1/0")
	h.submit(g2)
	h.waitFinal("g2/0")
	h.waitIdle()
	n = len(store.history)
	g1.Redelivered = true
	h.submit(g1)
	if act.count() != 3 || len(store.history) != n {
		t.Fatalf("resubmitting an older firing of the same event ran %d times, %d updates (want 3, %d)", act.count(), len(store.history), n)
	}

	bad := []struct {
		name string
		f    *engine.Firing
		want string
	}{
		{"no id", &engine.Firing{}, "firing has no id"},
		{"invocation without id", &engine.Firing{ID: "g", Invocations: []*engine.Invocation{{FiringID: "g"}}}, "invocation 0 has no id"},
		{"invocation of another firing", &engine.Firing{ID: "g", Invocations: []*engine.Invocation{{ID: "i", FiringID: "h"}}}, `names firing "h"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.d.Submit(context.Background(), tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}

	store.mu.Lock()
	store.failSubmit = errors.New("no space left")
	store.mu.Unlock()
	if err := h.d.Submit(context.Background(), newFiring("g", "rs", false, invSpec{action: "x"})); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("store failure: %v", err)
	}
	store.mu.Lock()
	store.failSubmit = nil
	store.mu.Unlock()

	if err := h.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Submit(context.Background(), newFiring("h", "rs", false, invSpec{action: "x"})); !errors.Is(err, ErrStopped) {
		t.Fatalf("submit after stop: %v", err)
	}
}

func TestStoreUpdateFailureIsRetried(t *testing.T) {
	act := &script{results: []engine.Result{engine.Success("ok")}}
	store := newMemStore()
	h := start(t, store, newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
	store.mu.Lock()
	store.failUpdates = 3
	store.mu.Unlock()
	h.submit(newFiring("f", "rs", false, invSpec{action: "x"}))
	h.waitFinal("f/0")
	if act.count() != 1 {
		t.Fatalf("ran %d times", act.count())
	}
	if got, want := h.clock.waits(), []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(got, want) {
		t.Fatalf("store retry waits %v, want %v", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	store := newMemStore()
	acts := ActionMap(nil)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Actions: acts}, "store is required"},
		{"no actions", Config{Store: store}, "actions is required"},
		{"negative concurrency", Config{Store: store, Actions: acts, MaxConcurrency: -1}, "max_concurrency -1 is negative"},
		{"zero per action", Config{Store: store, Actions: acts, PerAction: map[string]int{"http": 0}}, `per_action "http": limit 0 must be positive`},
		{"negative output limit", Config{Store: store, Actions: acts, OutputLimit: -5}, "output_limit -5 is negative"},
		{"negative timeout", Config{Store: store, Actions: acts, DefaultTimeout: -time.Second}, "default_timeout -1s is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	store := newMemStore()
	h := start(t, store, newFakeClock(), Config{Retention: 24 * time.Hour, CompactInterval: time.Hour, Actions: ActionMap(nil)})
	for i := 1; i <= 2; i++ {
		waitFor(t, "compaction timer", func() bool { return h.clock.pending() == 1 })
		h.clock.Advance(time.Hour)
		waitFor(t, "compaction", func() bool {
			store.mu.Lock()
			defer store.mu.Unlock()
			return len(store.compacted) == i
		})
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	want := []time.Time{t0.Add(time.Hour - 24*time.Hour), t0.Add(2*time.Hour - 24*time.Hour)}
	if !slices.EqualFunc(store.compacted, want, time.Time.Equal) {
		t.Fatalf("compacted before %v, want %v", store.compacted, want)
	}
}
