package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// restartRules: a throttled rule and a not_all rule whose timeout fires.
const restartRules = `    - name: once
      condition: event.kind == "disk"
      throttle: {once_within: 10m}
      action: {notify: {}}
    - name: slow
      condition:
        not_all:
          - events.start << event.kind == "start"
          - event.kind == "end" && event.id == events.start.id
        timeout: 5m
      action: {notify: {}}
`

// restartNode is one run of rulebook on a data directory that outlives it:
// a fresh engine and Runner over the same journal, as after a restart.
type restartNode struct {
	t      *testing.T
	clock  *engine.FakeClock
	store  *journal.Store
	eng    *engine.Engine
	cancel context.CancelFunc
	done   chan error
}

func openRestartStore(t *testing.T, clock *engine.FakeClock) *journal.Store {
	t.Helper()
	s, err := journal.Open(journal.Options{Dir: t.TempDir(), Clock: clock, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// parseWithNotify parses a ruleset "r" of rules (as rulebook) with a
// registry that knows the generic source and "notify", an action that
// leaves the engine for the dispatcher. clock drives now() in conditions
// (nil: the system clock).
func parseWithNotify(t testing.TB, rules string, clock engine.Clock) []*engine.Ruleset {
	t.Helper()
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	reg.RegisterAction(engine.ActionSpec{Type: "notify", Check: func(map[string]any) error { return nil },
		New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil }})
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook(rules)), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return rb.Rulesets
}

// startNode builds a new engine on store and runs it with a Runner that
// replays lookback of history first.
func startNode(t *testing.T, clock *engine.FakeClock, store *journal.Store, lookback time.Duration) *restartNode {
	t.Helper()
	return startNodeWith(t, restartRules, clock, store, lookback)
}

// startNodeWith is startNode with other rules.
func startNodeWith(t *testing.T, rules string, clock *engine.FakeClock, store *journal.Store, lookback time.Duration) *restartNode {
	t.Helper()
	rulesets := parseWithNotify(t, rules, clock)
	// The action store is the dispatcher: what matters is what is stored.
	eng := engine.New(rulesets, engine.Options{Clock: clock, Dispatcher: store.Actions().(engine.BatchDispatcher)})
	ctx, cancel := context.WithCancel(context.Background())
	n := &restartNode{t: t, clock: clock, store: store, eng: eng, cancel: cancel, done: make(chan error, 1)}
	r := &engine.Runner{Engine: eng, Journal: store, Clock: clock, Lookback: lookback, Log: zerolog.Nop()}
	go func() { n.done <- r.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

// stop ends the run as SIGTERM would: the runner stops, the engine and its
// state are gone; the journal stays.
func (n *restartNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	if err := <-n.done; err != nil {
		n.t.Errorf("runner: %v", err)
	}
}

// emit appends an event to the journal (at the clock's time) and, when a
// node runs, waits until it is processed and its firings stored.
func emitEvent(t *testing.T, store *journal.Store, kv ...any) {
	t.Helper()
	ev := engine.NewEvent(ev(kv...), "src", "generic", time.Time{})
	if _, err := store.Emit(context.Background(), engine.SourceRef{Ruleset: "r", Name: "src"}, []engine.Entry{{Event: ev}}); err != nil {
		t.Fatal(err)
	}
}

func waitProcessed(t *testing.T, store *journal.Store) {
	t.Helper()
	waitFor(t, "the journal to be processed", func() bool {
		done, _ := store.LastDone(context.Background())
		return done == store.LastSeq()
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// stored returns the IDs of the stored firings of rule, oldest first.
func stored(t *testing.T, store *journal.Store, rule string) []string {
	t.Helper()
	entries, err := store.Actions().Query(context.Background(), engine.AuditFilter{Rule: rule})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := len(entries) - 1; i >= 0; i-- {
		ids = append(ids, fmt.Sprintf("%s@%s", entries[i].Firing.ID[:8], entries[i].Firing.Time.Sub(t0)))
	}
	return ids
}

func wantStored(t *testing.T, store *journal.Store, rule string, n int) {
	t.Helper()
	if got := stored(t, store, rule); len(got) != n {
		t.Fatalf("rule %q: %d firings stored %v, want %d", rule, len(got), got, n)
	}
}

// fired is the engine's count of rule's firings (replayed ones included).
func fired(eng *engine.Engine, rule string) int64 {
	for _, st := range eng.Stats() {
		if st.Rule == rule {
			return st.Fired
		}
	}
	return -1
}

const lookback = 10 * time.Minute // the longest window of restartRules

func TestRestartKeepsThrottleWindow(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	store := openRestartStore(t, clock)

	n := startNode(t, clock, store, lookback)
	emitEvent(t, store, "kind", "disk")
	waitProcessed(t, store)
	wantStored(t, store, "once", 1)
	n.stop()

	clock.Set(t0.Add(5 * time.Minute))
	startNode(t, clock, store, lookback)
	emitEvent(t, store, "kind", "disk")
	waitProcessed(t, store)
	wantStored(t, store, "once", 1) // within the window of the first run's firing

	clock.Set(t0.Add(10*time.Minute + time.Second))
	emitEvent(t, store, "kind", "disk")
	waitProcessed(t, store)
	wantStored(t, store, "once", 2) // the window has ended
}

// Records after LastDone were perhaps never processed: they are processed
// live, not replayed (a replayed one would open the throttle window and
// swallow its own firing).
func TestRestartProcessesRecordsAfterDone(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	store := openRestartStore(t, clock)

	n := startNode(t, clock, store, lookback)
	emitEvent(t, store, "kind", "disk")
	waitProcessed(t, store)
	n.stop()

	clock.Set(t0.Add(11 * time.Minute))
	emitEvent(t, store, "kind", "disk") // accepted while down
	startNode(t, clock, store, lookback)
	waitProcessed(t, store)
	wantStored(t, store, "once", 2)
}

func TestRestartDoesNotRefireTimeout(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	store := openRestartStore(t, clock)

	n := startNode(t, clock, store, lookback)
	emitEvent(t, store, "kind", "start", "id", "A")
	waitProcessed(t, store)
	clock.Set(t0.Add(6 * time.Minute)) // the timeout (5m) fires
	waitFor(t, "the timeout to fire", func() bool { return len(stored(t, store, "slow")) == 1 })
	n.stop()

	// The record that opened the window is replayed, its timeout is due
	// and fires again: under the same ID, so it is not stored twice.
	clock.Set(t0.Add(7 * time.Minute))
	n = startNode(t, clock, store, lookback)
	waitFor(t, "the replayed timeout to fire", func() bool { return fired(n.eng, "slow") == 1 })
	if _, pending := n.eng.NextDeadline(); pending {
		t.Error("the timed-out window is still pending")
	}
	wantStored(t, store, "slow", 1)
}

func TestRestartFiresTimeoutDueWhileDown(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	store := openRestartStore(t, clock)

	n := startNode(t, clock, store, lookback)
	emitEvent(t, store, "kind", "start", "id", "B")
	waitProcessed(t, store)
	n.stop()

	// The timeout (5m) passes while nothing runs.
	clock.Set(t0.Add(8 * time.Minute))
	n = startNode(t, clock, store, lookback)
	waitFor(t, "the timeout to fire", func() bool { return len(stored(t, store, "slow")) == 1 })
	got := stored(t, store, "slow")
	if want := "@5m0s"; got[0][8:] != want {
		t.Errorf("firing %s, want one at %s (its deadline)", got[0], want)
	}
	n.stop()

	// And once only, however often the process restarts.
	clock.Set(t0.Add(9 * time.Minute))
	n = startNode(t, clock, store, lookback)
	waitFor(t, "the timeout to fire again", func() bool { return fired(n.eng, "slow") == 1 })
	wantStored(t, store, "slow", 1)
}

// Without Lookback (or with a journal that keeps no history) a restart
// starts empty, as before.
func TestRestartWithoutLookback(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	store := openRestartStore(t, clock)
	n := startNode(t, clock, store, 0)
	emitEvent(t, store, "kind", "disk")
	waitProcessed(t, store)
	n.stop()
	clock.Set(t0.Add(time.Minute))
	startNode(t, clock, store, 0)
	emitEvent(t, store, "kind", "disk")
	waitProcessed(t, store)
	wantStored(t, store, "once", 2)
}

const factRules = `    - name: maintenance on
      condition: event.kind == "maintenance"
      action: {set_fact: {fact: {maintenance: "{{ event.host }}"}}}
    - name: maintenance off
      condition: event.kind == "done"
      action: {retract_fact: {fact: {maintenance: "{{ event.host }}"}}}
    - name: alert in maintenance
      condition:
        all:
          - events.alert << event.kind == "alert"
          - fact.maintenance == events.alert.host
      action: {notify: {}}
`

// maintenanceFacts returns the hosts of the engine's maintenance facts.
func maintenanceFacts(eng *engine.Engine) []string {
	var hosts []string
	for _, f := range eng.Facts("r") {
		hosts = append(hosts, fmt.Sprint(f["maintenance"]))
	}
	return hosts
}

// Facts survive a restart however old they are: the journal stores them
// with each Done, and the runner restores them after rebuilding rule state
// from the lookback window. A fact the replay sets again is not doubled, a
// retracted one stays retracted, and one set by Inject (in no record) is
// stored too.
func TestRestartKeepsFacts(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	store := openRestartStore(t, clock)
	const lookback = 10 * time.Minute

	n := startNodeWith(t, factRules, clock, store, lookback)
	emitEvent(t, store, "kind", "maintenance", "host", "h1")
	emitEvent(t, store, "kind", "maintenance", "host", "h2")
	emitEvent(t, store, "kind", "done", "host", "h2")
	waitProcessed(t, store)
	if err := n.eng.Inject(context.Background(), "r", []map[string]any{{"maintenance": "h3"}}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the injected fact to be stored", func() bool {
		facts, err := store.Facts(context.Background())
		return err == nil && len(facts) == 2
	})
	n.stop()

	// restart starts a node at `at` and checks its facts once it is live.
	restart := func(at time.Duration, want string) {
		t.Helper()
		clock.Set(t0.Add(at))
		n = startNodeWith(t, factRules, clock, store, lookback)
		// A record after the replay is processed live, so after the
		// restore (the facts seen during the replay are not all yet).
		emitEvent(t, store, "kind", "noop")
		waitProcessed(t, store)
		if got := strings.Join(maintenanceFacts(n.eng), ","); got != want {
			t.Fatalf("facts after a restart at +%s: %s, want %s", at, got, want)
		}
	}
	restart(5*time.Minute, "h1,h3") // within the lookback: the replay sets h1 again, not doubled
	n.stop()

	restart(3*time.Hour, "h1,h3") // long after: nothing replayed, the facts come from the store
	for _, host := range []string{"h1", "h2", "h3"} {
		emitEvent(t, store, "kind", "alert", "host", host)
	}
	waitProcessed(t, store)
	wantStored(t, store, "alert in maintenance", 2) // h1 and h3; h2's fact was retracted

	emitEvent(t, store, "kind", "done", "host", "h1")
	waitProcessed(t, store)
	n.stop()
	restart(6*time.Hour, "h3")
}

// An engine that no Runner stores facts for keeps no log of their changes
// (it would only grow).
func TestFactChangesKeptOnlyWhenStored(t *testing.T) {
	h := newHarness(t, rulebook(strings.ReplaceAll(factRules, "{notify: {}}", "{none: {}}")))
	h.run([]step{{0, "", ev("kind", "maintenance", "host", "h1")}, {0, "", ev("kind", "done", "host", "h1")}}, 0)
	if got := h.eng.TakeFactChanges(); got != nil {
		t.Fatalf("changes kept without a store: %v", got)
	}
	h.eng.RestoreFacts(nil)
	h.run([]step{{time.Minute, "", ev("kind", "maintenance", "host", "h2")}}, 0)
	if got := h.eng.TakeFactChanges(); len(got) != 1 || got[0].Fact["maintenance"] != "h2" {
		t.Fatalf("changes after RestoreFacts: %v, want h2 set", got)
	}
}

// A timer that set a fact before a restart fires again after it (its
// firing is Redelivered), and sets the fact again under the same derived
// ID: the restored fact is not doubled.
func TestRestartTimerFactNotDoubled(t *testing.T) {
	const rules = `    - name: hot for a minute
      condition: event.kind == "cpu"
      throttle: {once_after: 1m, group_by: [event.host]}
      action: {set_fact: {fact: {hot: "{{ event.host }}"}}}
`
	clock := engine.NewFakeClock(t0)
	store := openRestartStore(t, clock)
	hot := func(eng *engine.Engine) int {
		n := 0
		for _, f := range eng.Facts("r") {
			if f["hot"] == "h1" {
				n++
			}
		}
		return n
	}

	n := startNodeWith(t, rules, clock, store, lookback)
	emitEvent(t, store, "kind", "cpu", "host", "h1")
	waitProcessed(t, store)
	clock.Set(t0.Add(2 * time.Minute)) // the once_after window ends: the fact is set
	waitFor(t, "the timer's fact to be stored", func() bool {
		facts, err := store.Facts(context.Background())
		return err == nil && len(facts) == 1
	})
	n.stop()

	clock.Set(t0.Add(3 * time.Minute))
	n = startNodeWith(t, rules, clock, store, lookback)
	waitFor(t, "the timer to fire again", func() bool { return fired(n.eng, "hot for a minute") == 1 })
	emitEvent(t, store, "kind", "noop") // processed after the Tick that fired the timer
	waitProcessed(t, store)
	if got := hot(n.eng); got != 1 {
		t.Fatalf("%d facts for h1 after the restart, want 1: %v", got, n.eng.Facts("r"))
	}
}

// A journal written before facts were stored holds facts only in its
// records: the facts the replay sets are kept, in order after the stored
// ones, and stored.
func TestRestoreKeepsReplayedFactsTheStoreLacks(t *testing.T) {
	h := newHarness(t, rulebook(strings.ReplaceAll(factRules, "{notify: {}}", "{none: {}}")))
	for i, host := range []string{"h1", "h2"} {
		rec := engine.Record{Seq: uint64(i + 1), Source: engine.SourceRef{Ruleset: "r"},
			Event: engine.NewEvent(ev("kind", "maintenance", "host", host), "s", "t", t0)}
		if err := h.eng.Replay(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	stored := []engine.FactChange{{Ruleset: "r", Order: 7, Fact: map[string]any{"maintenance": "h0", "meta": map[string]any{"uuid": "old"}}}}
	h.eng.RestoreFacts(stored)
	if got := strings.Join(maintenanceFacts(h.eng), ","); got != "h0,h1,h2" {
		t.Fatalf("facts %s, want h0,h1,h2 (the stored one first)", got)
	}
	changes := h.eng.TakeFactChanges()
	if len(changes) != 2 || changes[0].Fact["maintenance"] != "h1" || changes[1].Fact["maintenance"] != "h2" ||
		changes[0].Order <= 7 || changes[1].Order <= changes[0].Order {
		t.Fatalf("changes %+v, want h1 then h2 set, numbered after the stored fact", changes)
	}
}
