package dispatch_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
)

type greet struct{}

func (greet) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	return engine.Success(fmt.Sprintf("hello %v", inv.Args["host"]))
}

// The dispatcher over the embedded store: build, start, submit, stop, and
// read the audit trail.
func Example() {
	dir, err := os.MkdirTemp("", "dispatch-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	js, err := journal.Open(journal.Options{Dir: dir, Log: zerolog.Nop()})
	if err != nil {
		panic(err)
	}
	defer js.Close()

	d, err := dispatch.New(dispatch.Config{
		Store:     js.Actions(),
		Actions:   dispatch.ActionMap(map[string]engine.Action{"greet": greet{}}),
		PerAction: map[string]int{"greet": 2},
		Log:       zerolog.Nop(),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		panic(err)
	}
	f := &engine.Firing{ID: "f1", Time: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC), Ruleset: "web", Rule: "restart nginx"}
	f.Invocations = []*engine.Invocation{{
		ID: "f1-0", FiringID: "f1", Action: "greet", Ruleset: "web", Rule: "restart nginx",
		Args: map[string]any{"host": "web1"}, Policy: engine.Policy{Retries: 2, Lock: "web1"}, Created: f.Time,
	}}
	if err := d.Submit(ctx, f); err != nil { // durable once it returns
		panic(err)
	}
	for d.Stats().Firings > 0 {
		time.Sleep(time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		panic(err)
	}

	filter, err := dispatch.ParseFilter(dispatch.FilterFlags{Ruleset: "web", Status: "succeeded"}, time.Now())
	if err != nil {
		panic(err)
	}
	entries, err := js.Actions().Query(ctx, filter)
	if err != nil {
		panic(err)
	}
	st := entries[0].Invocations[0]
	fmt.Println(entries[0].Firing.Rule, st.Invocation.Action, st.Status, len(st.Attempts), st.Attempts[0].Output)
	// Output: restart nginx greet succeeded 1 hello web1
}
