package dashboard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/engine"
)

// backend is an in-memory admin.Backend: rules with hit counts, an audit
// trail, and the events injected through the page.
type backend struct {
	mu       sync.Mutex
	rules    []admin.RuleInfo
	entries  []engine.AuditEntry
	injected []map[string]any
}

var _ admin.Backend = (*backend)(nil)

func newBackend() *backend {
	return &backend{rules: []admin.RuleInfo{
		{Ruleset: "ops", Rule: "restart nginx", Enabled: true, Kind: "condition", Fired: 4,
			LastFired: time.Now().Add(-time.Hour), Matched: 11, Suppressed: 7, Throttle: "once_within", Consumed: 3, ConsumedCounted: true},
		{Ruleset: "ops", Rule: "page on-call", Enabled: true, Kind: "all", Matched: 2},
		{Ruleset: "security", Rule: "block address", Enabled: false, Kind: "any"},
	}}
}

func (b *backend) Rules() []admin.RuleInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]admin.RuleInfo(nil), b.rules...)
}

func (b *backend) Facts(string) []map[string]any { return nil }

func (b *backend) Audit(_ context.Context, f engine.AuditFilter) ([]engine.AuditEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []engine.AuditEntry
	for _, e := range b.entries {
		if f.Rule == "" || f.Rule == e.Firing.Rule {
			out = append(out, e)
		}
	}
	return out, nil
}

func (b *backend) Inject(_ context.Context, ruleset string, event map[string]any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.injected = append(b.injected, event)
	return nil
}

func (b *backend) Reload(context.Context) error { return nil }

func (b *backend) Ready() (bool, []string) { return true, nil }

// fire records a firing of rule as the engine would: the hit count rises
// and an audit entry appears; it returns the firing for the stream.
func (b *backend) fire(ruleset, rule, eventID string, output string) (*engine.Firing, *engine.InvocationState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now().UTC()
	f := &engine.Firing{ID: "f-" + eventID, Time: now, Ruleset: ruleset, Rule: rule, EventIDs: []string{eventID}}
	exit := 0
	st := &engine.InvocationState{
		Invocation: &engine.Invocation{ID: "i-" + eventID, FiringID: f.ID, Ruleset: ruleset, Rule: rule, Action: "run_playbook"},
		Status:     engine.StatusSucceeded,
		Attempts: []engine.Attempt{{N: 1, Start: now, Duration: 2300 * time.Millisecond, Status: engine.Succeeded,
			Output: output, ExitCode: &exit}},
		Updated: now,
	}
	for i := range b.rules {
		if b.rules[i].Ruleset == ruleset && b.rules[i].Rule == rule {
			b.rules[i].Fired++
			b.rules[i].LastFired = now
		}
	}
	b.entries = append([]engine.AuditEntry{{Firing: *f, Invocations: []*engine.InvocationState{st}}}, b.entries...)
	return f, st
}

func (b *backend) hits(ruleset, rule string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.rules {
		if r.Ruleset == ruleset && r.Rule == rule {
			return r.Fired
		}
	}
	return -1
}

func startServer(t *testing.T, b admin.Backend, token string) *admin.Server {
	t.Helper()
	s, err := admin.New(admin.Config{Address: "127.0.0.1:0", Token: token, Backend: b, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	return s
}

// cellsExpr reads a rule's matches, fired, suppressed and consumed cells
// from the rules table, space-separated.
func cellsExpr(ruleset, rule string) string {
	return fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#rules tbody tr")].find(tr => tr.dataset.ruleset === %q && tr.dataset.rule === %q); return r ? ["matches", "hits", "suppressed", "consumed"].map(c => r.querySelector("td." + c).textContent).join(" ") : ""; })()`, ruleset, rule)
}

// hitsExpr reads a rule's hit count from the rules table.
func hitsExpr(ruleset, rule string) string {
	return fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#rules tbody tr")].find(tr => tr.dataset.ruleset === %q && tr.dataset.rule === %q); return r ? Number(r.querySelector("td.hits").textContent) : -1; })()`, ruleset, rule)
}

const describePage = `({conn: document.getElementById("conn").textContent, rules: document.querySelector("#rules tbody").innerText, feed: document.getElementById("feed").innerText.slice(0, 2000), audit: document.querySelector("#audit tbody").innerText.slice(0, 1000), sent: document.getElementById("send-result").textContent, dialog: document.getElementById("token-dialog").open})`

// pageWaiter returns wait(what, expr), which fails t unless expr turns
// true on p within 20 s; the failure shows the page's state and, when
// extra is set, what extra returns.
func pageWaiter(t *testing.T, ctx context.Context, p *Page, extra func() string) func(what, expr string) {
	return func(what, expr string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := p.WaitTrue(wctx, expr, describePage); err != nil {
			if extra != nil {
				t.Fatalf("%s: %v\n%s", what, err, extra())
			}
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// TestDashboard loads the page in headless Chromium, publishes an event, a
// firing and an action result to the live stream as the engine and
// dispatcher would, and checks that the feed shows them, the rule's hit
// count rises, the action history lists the result; then sends a test
// event through the page's form.
func TestDashboard(t *testing.T) {
	br := StartBrowser(t)
	b := newBackend()
	s := startServer(t, b, "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// An event that arrived before the page was opened: replayed from the
	// stream's ring on load, it shows when it arrived, not the load time.
	const earlyID = "early-event"
	arrived := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Stream().PublishEvent(engine.Record{Seq: 7, Source: engine.SourceRef{Ruleset: "ops", Name: "alerts"},
		Event: engine.Event{"meta": map[string]any{"uuid": earlyID}}, Accepted: arrived})
	p := OpenPage(t, ctx, br, s.URL()+"/")

	wait := pageWaiter(t, ctx, p, nil)
	wait("replayed event shows its arrival time", fmt.Sprintf(`(() => { const t = document.querySelector('#feed .feed-item[data-event-id=%q] .feed-time'); return !!t && t.dateTime === %q && t.textContent === new Date(%q).toLocaleString(); })()`,
		earlyID, arrived.Format(time.RFC3339), arrived.Format(time.RFC3339)))

	// The page loads: rules with their hit counts, the stream connected.
	wait("rules table", `document.querySelectorAll("#rules tbody tr").length === 3`)
	wait("initial hit count", hitsExpr("ops", "restart nginx")+" === 4")
	// Why a rule did not fire: its matches, what its throttle suppressed
	// and what an earlier rule consumed, beside its firings; "–" where a
	// count does not apply (no throttle; consumed not counted).
	wait("rule activity columns", cellsExpr("ops", "restart nginx")+` === "11 4 7 3"`)
	wait("columns that do not apply", cellsExpr("ops", "page on-call")+` === "2 0 – –"`)
	wait("column headers", `[...document.querySelectorAll("#rules thead th")].map(th => th.textContent).join("|") === "Ruleset|Rule|Kind|Matches|Fired|Suppressed by throttle|Consumed by earlier rule|Last fired"`)
	wait("stream connected", `document.getElementById("conn").textContent === "live"`)
	wait("disabled rule marked", `document.querySelector('#rules tbody tr[data-rule="block address"]').classList.contains("disabled")`)

	// An event reaches the live feed.
	const eventID = "0b7c2a4e-8d1f-4c3a-9e55-3f1d2b6a7c90"
	s.Stream().PublishEvent(engine.Record{Seq: 42, Source: engine.SourceRef{Ruleset: "ops", Name: "alerts"},
		Event: engine.Event{"payload": map[string]any{"host": "web1", "status": "down"},
			"meta": map[string]any{"uuid": eventID}}})
	wait("event in the live feed", fmt.Sprintf(`(() => { const li = document.querySelector('#feed .feed-item[data-event-id=%q]'); return li && li.textContent.includes("web1") && li.textContent.includes("ops · alerts"); })()`, eventID))

	// The rule fires: the hit count rises, the firing and the action
	// result appear in the feed, the action history lists the run.
	f, st := b.fire("ops", "restart nginx", eventID, "PLAY RECAP web1 ok=3 changed=1")
	s.Stream().PublishFiring(f, []engine.RenderedAction{{Type: "run_playbook"}})
	wait("firing in the feed", `[...document.querySelectorAll('#feed .feed-item[data-kind="firing"]')].some(li => li.textContent.includes("ops / restart nginx fired → run_playbook"))`)
	wait("hit count rose", hitsExpr("ops", "restart nginx")+" === 5")
	if got := b.hits("ops", "restart nginx"); got != 5 {
		t.Fatalf("backend hits %d", got)
	}
	s.Stream().PublishResult(st)
	wait("action result in the feed", `[...document.querySelectorAll('#feed .feed-item[data-kind="action"]')].some(li => li.dataset.status === "succeeded" && li.textContent.includes("run_playbook"))`)
	wait("action history row", `(() => { const tr = document.querySelector('#audit tbody tr[data-invocation="i-`+eventID+`"]'); return tr && tr.textContent.includes("succeeded") && tr.textContent.includes("ok=3 changed=1") && tr.textContent.includes("2.3s"); })()`)

	// The form sends a test event to the chosen ruleset.
	if err := p.Eval(ctx, `(() => {
		document.getElementById("send-ruleset").value = "security";
		document.getElementById("send-event").value = '{"src_ip": "203.0.113.9", "count": 7}';
		document.getElementById("send-button").click();
	})()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("send confirmed", `document.getElementById("send-result").textContent.startsWith("Sent to security")`)
	b.mu.Lock()
	injected := append([]map[string]any(nil), b.injected...)
	b.mu.Unlock()
	if len(injected) != 1 || injected[0]["src_ip"] != "203.0.113.9" || injected[0]["count"] != int64(7) {
		t.Fatalf("injected %v", injected)
	}
	injectedID := engine.EventID(injected[0])
	wait("test event in the feed", fmt.Sprintf(`!!document.querySelector('#feed .feed-item[data-event-id=%q]')`, injectedID))

	// Bad input is reported on the page, not sent.
	if err := p.Eval(ctx, `(() => {
		document.getElementById("send-event").value = '[1, 2]';
		document.getElementById("send-button").click();
	})()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("non-object refused", `document.getElementById("send-result").textContent === "The event must be a JSON object."`)

	// Scroll to the top so the screenshot shows the header.
	_ = p.Eval(ctx, `window.scrollTo(0, 0)`, nil)
	SaveScreenshot(t, ctx, p, "dashboard.png")

	// A burst: the feed keeps the newest 300 lines, newest first.
	var last uint64
	for i := 0; i < 1000; i++ {
		last = s.Stream().PublishEvent(engine.Record{Seq: uint64(100 + i), Source: engine.SourceRef{Ruleset: "ops", Name: "alerts"},
			Event: engine.Event{"n": i, "meta": map[string]any{"uuid": fmt.Sprintf("burst-%d", i)}}})
	}
	wait("burst shown", fmt.Sprintf(`document.querySelectorAll("#feed .feed-item").length === 300 && document.querySelector("#feed .feed-item").dataset.id === "%d"`, last))
}

// TestDashboardToken: with a token required, the page asks for it once,
// then loads the rules and follows the stream with it.
func TestDashboardToken(t *testing.T) {
	br := StartBrowser(t)
	b := newBackend()
	const token = "correct-horse-battery"
	s := startServer(t, b, token)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p := OpenPage(t, ctx, br, s.URL()+"/")
	wait := pageWaiter(t, ctx, p, nil)
	wait("token asked for", `document.getElementById("token-dialog").open`)
	submit := func(tok string) {
		t.Helper()
		if err := p.Eval(ctx, `(() => {
			document.getElementById("token-input").value = `+strconv.Quote(tok)+`;
			document.getElementById("token-form").requestSubmit();
		})()`, nil); err != nil {
			t.Fatal(err)
		}
	}
	submit("wrong")
	wait("wrong token refused", `document.getElementById("token-dialog").open && document.getElementById("token-error").textContent.includes("refused")`)
	submit(token)
	wait("rules with the token", `!document.getElementById("token-dialog").open && document.querySelectorAll("#rules tbody tr").length === 3`)
	wait("stream connected with the token", `document.getElementById("conn").textContent === "live"`)
	s.Publish(admin.KindEvent, admin.EventData{Ruleset: "ops", Source: "hook", EventID: "tok-1", Event: engine.Event{"x": 1}})
	wait("event through the token stream", `!!document.querySelector('#feed .feed-item[data-event-id="tok-1"]')`)
	var stored string
	if err := p.Eval(ctx, `sessionStorage.getItem("rulebook-admin-token")`, &stored); err != nil || stored != token {
		t.Errorf("sessionStorage token %q (%v)", stored, err)
	}
	// A reload of the page keeps the token: no second prompt.
	if err := p.Navigate(ctx, s.URL()+"/"); err != nil {
		t.Fatal(err)
	}
	wait("reloaded page has rules", `document.querySelectorAll("#rules tbody tr").length === 3 && !document.getElementById("token-dialog").open`)
	if strings.Contains(s.URL(), token) {
		t.Fatal("token in the URL")
	}
}
