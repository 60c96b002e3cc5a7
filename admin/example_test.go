package admin_test

import (
	"context"
	"os"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/metrics"
)

// Example shows the wiring in `rulebook run`: the stream and the metrics
// exist first, so the dispatcher's and the engine's hooks can feed them;
// the runner hands each record to them (OnRecord) before the engine
// processes it; the admin server serves them all. (Not run: it needs a data directory and rulesets.)
func Example() {
	ctx := context.Background()
	log := zerolog.New(os.Stderr)
	var rulesets []*engine.Ruleset // from rulebooks.Load
	actions := map[string]engine.Action{}

	store, err := journal.Open(journal.Options{Dir: "/var/lib/rulebook", Log: log})
	if err != nil {
		panic(err)
	}
	m := metrics.New()
	m.SetBacklogFunc(func() float64 { return float64(store.Backlog()) })
	stream := admin.NewStream(admin.StreamConfig{})

	disp, _ := dispatch.New(dispatch.Config{
		Store: store.Actions(), Actions: dispatch.ActionMap(actions), Log: log,
		OnResult: func(st *engine.InvocationState) {
			m.ActionResult(st)
			stream.PublishResult(st)
		},
	})
	eng := engine.New(rulesets, engine.Options{
		Dispatcher: disp, Log: log,
		OnFiring: func(f *engine.Firing, acts []engine.RenderedAction) {
			m.ObserveFiring(f, acts)
			stream.PublishFiring(f, acts)
		},
	})
	runner := &engine.Runner{Engine: eng, Log: log, Journal: store,
		OnRecord: func(rec engine.Record) {
			stream.PublishEvent(rec)
			m.Processed(rec.Source.Ruleset)
		}}

	srv, err := admin.New(admin.Config{
		Address: admin.DefaultAddress,
		Backend: &admin.EngineBackend{
			Engine: eng, Store: store.Actions(),
			ReloadFunc: func(ctx context.Context) error { return nil /* load, validate, eng.Replace */ },
			ReadyFunc:  func() (bool, []string) { return true, nil /* sources listening, ... */ },
		},
		Metrics: m.Handler(), Stream: stream, Log: log,
	})
	if err != nil {
		panic(err)
	}
	_ = srv.Start(ctx)
	go runner.Run(ctx)

	// On SIGTERM: not ready any more, then stop intake, drain, and last
	// the admin listener.
	srv.SetDraining(true)
	_ = srv.Stop(ctx)
}
