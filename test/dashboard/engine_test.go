package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/metrics"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

const siteYAML = `- name: ops
  sources:
    - name: alerts
      generic:
        payload: [{}]
  rules:
    - name: restart on down
      condition: event.alert.status == "down"
      action:
        notify:
          host: "{{ event.alert.host }}"
    - name: page on down
      condition: event.alert.status == "down"
      action:
        none: {}
    - name: retired
      enabled: false
      condition: event.alert.status == "gone"
      action:
        none: {}
`

// notify is the test's action: it succeeds, naming its host.
type notify struct{}

func (notify) Run(_ context.Context, inv *engine.Invocation) engine.Result {
	return engine.Success(fmt.Sprintf("notified %v", inv.Args["host"]))
}

var _ engine.Action = notify{}

// TestDashboardEngine wires the admin server, the metrics and the live
// stream to a real engine, journal and dispatcher the way the CLI does, and
// follows one event accepted by the journal and one sent from the page's
// form through to the rule table, the feed, the action history and
// /metrics.
func TestDashboardEngine(t *testing.T) {
	br := StartBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	clock := engine.SystemClock{}

	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	reg.RegisterAction(engine.ActionSpec{Type: "notify", Check: func(map[string]any) error { return nil },
		New: func(engine.ActionEnv) (engine.Action, error) { return notify{}, nil }})
	rb, err := rulebooks.Parse("site.yml", []byte(siteYAML), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	store, err := journal.Open(journal.Options{Dir: t.TempDir(), Clock: clock, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	// The wiring: metrics and the stream see every firing and every
	// recorded action state.
	m := metrics.New()
	m.SetBacklogFunc(func() float64 { return float64(store.Backlog()) })
	stream := admin.NewStream(admin.StreamConfig{Clock: clock})
	disp, err := dispatch.New(dispatch.Config{
		Store: store.Actions(), Actions: dispatch.ActionMap(map[string]engine.Action{"notify": notify{}}),
		OnResult: func(st *engine.InvocationState) {
			m.ActionResult(st)
			stream.PublishResult(st)
		},
		Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(rb.Rulesets, engine.Options{
		Clock: clock, Dispatcher: disp, Stdout: io.Discard, Log: zerolog.Nop(),
		OnFiring: func(f *engine.Firing, acts []engine.RenderedAction) {
			m.ObserveFiring(f, acts)
			stream.PublishFiring(f, acts)
		},
	})
	m.SetEvaluationsFunc(eng.Stats)
	if err := disp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer disp.Stop(context.Background())

	srv, err := admin.New(admin.Config{
		Address: "127.0.0.1:0", Backend: &admin.EngineBackend{Engine: eng, Store: store.Actions()},
		Metrics: m.Handler(), Stream: stream, Clock: clock, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())

	// The runner publishes each record to the live feed before the engine
	// processes it.
	runner := &engine.Runner{Engine: eng, Log: zerolog.Nop(), Journal: store,
		OnRecord: func(rec engine.Record) {
			stream.PublishEvent(rec)
			m.Processed(rec.Source.Ruleset)
		}}
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(runCtx) }()
	defer func() {
		stopRun()
		if err := <-runDone; err != nil {
			t.Errorf("runner: %v", err)
		}
	}()

	p := OpenPage(t, ctx, br, srv.URL()+"/")
	wait := pageWaiter(t, ctx, p, nil)
	wait("rules", `document.querySelectorAll("#rules tbody tr").length === 3`)
	wait("no hits yet", hitsExpr("ops", "restart on down")+" === 0")
	wait("stream connected", `document.getElementById("conn").textContent === "live"`)

	// A source's event, through the journal.
	ev := engine.NewEvent(map[string]any{"alert": map[string]any{"host": "web1", "status": "down"}}, "alerts", "webhook", clock.Now())
	outcomes, err := store.Emit(ctx, engine.SourceRef{Ruleset: "ops", Name: "alerts", Type: "webhook"}, []engine.Entry{{Event: ev}})
	if err != nil || len(outcomes) != 1 || outcomes[0] != engine.Accepted {
		t.Fatalf("emit: %v %v", outcomes, err)
	}
	m.EventReceived("ops/alerts", metrics.OutcomeAccepted)
	wait("journal event in the feed", fmt.Sprintf(`!!document.querySelector('#feed .feed-item[data-event-id=%q]')`, engine.EventID(ev)))
	wait("hit count 1", hitsExpr("ops", "restart on down")+" === 1")
	wait("action history: web1", `[...document.querySelectorAll("#audit tbody tr")].some(tr => tr.textContent.includes("notified web1") && tr.textContent.includes("succeeded"))`)

	// A test event from the page's form.
	if err := p.Eval(ctx, `(() => {
		document.getElementById("send-ruleset").value = "ops";
		document.getElementById("send-event").value = '{"alert": {"host": "db1", "status": "down"}}';
		document.getElementById("send-button").click();
	})()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("sent", `document.getElementById("send-result").textContent.startsWith("Sent to ops")`)
	wait("hit count 2", hitsExpr("ops", "restart on down")+" === 2")
	wait("action history: db1", `[...document.querySelectorAll("#audit tbody tr")].some(tr => tr.textContent.includes("notified db1"))`)
	wait("firings in the feed", `document.querySelectorAll('#feed .feed-item[data-kind="firing"]').length === 2`)
	// "page on down" never saw either event: the rule before it consumed
	// both, and the table and the metric say so.
	wait("consumed by the earlier rule", cellsExpr("ops", "page on down")+` === "0 0 – 2"`)
	wait("matches of the consuming rule", cellsExpr("ops", "restart on down")+` === "2 2 – 0"`)

	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`rulebook_rule_firings_total{rule="restart on down",ruleset="ops"} 2`,
		`rulebook_rule_suppressed_total{reason="consumed",rule="page on down",ruleset="ops"} 2`,
		`rulebook_rule_suppressed_total{reason="consumed",rule="restart on down",ruleset="ops"} 0`,
		`rulebook_action_invocations_total{action="notify",result="succeeded"} 2`,
		`rulebook_action_attempt_duration_seconds_count{action="notify",result="succeeded"} 2`,
		`rulebook_events_accepted_total{source="ops/alerts"} 1`,
		`rulebook_events_processed_total{ruleset="ops"} 1`,
		`rulebook_journal_backlog 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_ = p.Eval(ctx, `window.scrollTo(0, 0)`, nil)
	SaveScreenshot(t, ctx, p, "dashboard-engine.png")
}
