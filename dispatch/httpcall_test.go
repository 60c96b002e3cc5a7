package dispatch_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/httpcall"
	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
)

// TestHTTPActionRetries runs the real http action through the dispatcher and
// the journal against local servers: one that fails twice then succeeds is
// retried until it does; a 400 is not retried.
func TestHTTPActionRetries(t *testing.T) {
	var flakyCalls, badCalls atomic.Int32
	var keys []string
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if flakyCalls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("paged"))
	}))
	defer flaky.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badCalls.Add(1)
		http.Error(w, "no such team", http.StatusBadRequest)
	}))
	defer bad.Close()

	store, err := journal.Open(journal.Options{Dir: t.TempDir(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	act := httpcall.New(zerolog.Nop(), engine.SystemClock{})
	defer act.Close()
	d, err := dispatch.New(dispatch.Config{Store: store.Actions(), Log: zerolog.Nop(),
		Actions: dispatch.ActionMap(map[string]engine.Action{"http": act})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx)

	policy := engine.Policy{Retries: 3, Delay: 10 * time.Millisecond, MaxDelay: 40 * time.Millisecond, Timeout: 5 * time.Second}
	for _, f := range []struct{ id, url string }{{"flaky", flaky.URL}, {"bad", bad.URL}} {
		inv := &engine.Invocation{ID: f.id + "-0", FiringID: f.id, Action: "http", Ruleset: "rs", Rule: f.id, Policy: policy,
			Args: map[string]any{"url": f.url, "method": "POST", "body": map[string]any{"alert": "down"}}}
		if err := d.Submit(ctx, &engine.Firing{ID: f.id, Ruleset: "rs", Rule: f.id, Time: time.Now(), Invocations: []*engine.Invocation{inv}}); err != nil {
			t.Fatal(err)
		}
	}
	final := func(id string) *engine.InvocationState {
		entries, err := store.Actions().Query(ctx, engine.AuditFilter{Rule: id})
		if err != nil || len(entries) != 1 || len(entries[0].Invocations) != 1 {
			return nil
		}
		if st := entries[0].Invocations[0]; st.Status.Final() {
			return st
		}
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for final("flaky") == nil || final("bad") == nil {
		if time.Now().After(deadline) {
			t.Fatal("invocations did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := final("flaky")
	if st.Status != engine.StatusSucceeded || len(st.Attempts) != 3 || flakyCalls.Load() != 3 {
		t.Fatalf("flaky: %s after %d attempts (%d calls), want succeeded after 3", st.Status, len(st.Attempts), flakyCalls.Load())
	}
	for i, a := range st.Attempts[:2] {
		if a.Status != engine.Retryable || a.HTTPStatus != 503 {
			t.Errorf("attempt %d = %s/%d, want retryable 503", i+1, a.Status, a.HTTPStatus)
		}
	}
	if keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("Idempotency-Key differed between attempts: %q", keys)
	}
	st = final("bad")
	if st.Status != engine.StatusFailed || len(st.Attempts) != 1 || badCalls.Load() != 1 || st.Attempts[0].HTTPStatus != 400 {
		t.Fatalf("bad: %s after %d attempts (%d calls), want failed after 1 with 400", st.Status, len(st.Attempts), badCalls.Load())
	}
}
