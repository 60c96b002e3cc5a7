package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// approvalBackend is the engine backend plus the dispatcher's approvals,
// as the CLI wires them.
type approvalBackend struct {
	*admin.EngineBackend
	disp *dispatch.Dispatcher
}

func (b approvalBackend) Pending(context.Context) ([]*engine.InvocationState, error) {
	return b.disp.Pending(), nil
}

func (b approvalBackend) Decide(ctx context.Context, id, decision, by, reason string) (*engine.InvocationState, error) {
	st, err := b.disp.Decide(ctx, id, decision, by, reason)
	if errors.Is(err, dispatch.ErrNotPending) {
		return nil, fmt.Errorf("%w: %v", admin.ErrNotPending, err)
	}
	return st, err
}

// countingNotify counts its runs.
type countingNotify struct{ runs *atomic.Int64 }

func (c countingNotify) Run(_ context.Context, inv *engine.Invocation) engine.Result {
	c.runs.Add(1)
	return engine.Success(fmt.Sprintf("restarted %v", inv.Args["host"]))
}

const approveYAML = `- name: ops
  sources:
    - name: alerts
      generic:
        payload: [{}]
  rules:
    - name: restart on down
      mode: approve
      condition: event.alert.status == "down"
      action:
        notify:
          host: "{{ event.alert.host }}"
`

// TestDashboardApproval: an approve-mode action shows in the dashboard's
// approvals panel with its rendered arguments and triggering event; a
// click on Approve runs it once, a click on Reject runs nothing, and the
// action history shows both decisions.
func TestDashboardApproval(t *testing.T) {
	br := StartBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	clock := engine.SystemClock{}
	var runs atomic.Int64
	act := countingNotify{runs: &runs}

	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	reg.RegisterAction(engine.ActionSpec{Type: "notify", Check: func(map[string]any) error { return nil },
		New: func(engine.ActionEnv) (engine.Action, error) { return act, nil }})
	rb, err := rulebooks.Parse("site.yml", []byte(approveYAML), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	rule := rb.Rulesets[0].Rules[0]
	store, err := journal.Open(journal.Options{Dir: t.TempDir(), Clock: clock, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stream := admin.NewStream(admin.StreamConfig{Clock: clock})
	disp, err := dispatch.New(dispatch.Config{
		Store: store.Actions(), Actions: dispatch.ActionMap(map[string]engine.Action{"notify": act}),
		OnResult: func(st *engine.InvocationState) { stream.PublishResult(st) },
		Mode:     func(string, string) (string, *engine.ApprovalPolicy) { return rule.Mode, rule.Approval },
		Log:      zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, Dispatcher: disp, Stdout: io.Discard, Log: zerolog.Nop()})
	if err := disp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer disp.Stop(context.Background())
	srv, err := admin.New(admin.Config{
		Address: "127.0.0.1:0", Backend: approvalBackend{EngineBackend: &admin.EngineBackend{Engine: eng, Store: store.Actions()}, disp: disp},
		Stream: stream, Clock: clock, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())

	for _, host := range []string{"web1", "db1"} {
		if err := eng.Inject(ctx, "ops", nil, []map[string]any{{"alert": map[string]any{"host": host, "status": "down"}}}); err != nil {
			t.Fatal(err)
		}
	}
	p := OpenPage(t, ctx, br, srv.URL()+"/")
	wait := pageWaiter(t, ctx, p, nil)
	row := func(host string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("#approvals tbody tr")].find(tr => tr.textContent.includes('"host":"%s"') && tr.textContent.includes('"status":"down"'))`, host)
	}
	wait("two approvals with args and events", `document.querySelectorAll("#approvals tbody tr").length === 2 && !!`+row("web1")+` && !!`+row("db1"))
	if runs.Load() != 0 {
		t.Fatal("an action ran before approval")
	}
	SaveScreenshot(t, ctx, p, "dashboard-approvals.png")
	if err := p.Eval(ctx, row("web1")+`.querySelector("button.approve").click()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("web1 ran", `[...document.querySelectorAll("#audit tbody tr")].some(tr => tr.textContent.includes("restarted web1") && tr.textContent.includes("succeeded"))`)
	if err := p.Eval(ctx, row("db1")+`.querySelector("button.reject").click()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("db1 rejected", `[...document.querySelectorAll("#audit tbody tr")].some(tr => tr.textContent.includes("rejected"))`)
	wait("nothing waits", `document.querySelectorAll("#approvals tbody tr").length === 0`)
	if n := runs.Load(); n != 1 {
		t.Errorf("the action ran %d times, want once (web1 only)", n)
	}
	entries, err := store.Actions().Query(ctx, engine.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	decided := map[string]string{}
	for _, e := range entries {
		for _, st := range e.Invocations {
			if st.Approval != nil {
				decided[fmt.Sprint(st.Invocation.Args["host"])] = st.Approval.Decision + " by " + st.Approval.By
			}
		}
	}
	if decided["web1"] != "approved by admin (loopback, no token)" || decided["db1"] != "rejected by admin (loopback, no token)" {
		t.Errorf("decisions recorded: %v", decided)
	}
}
