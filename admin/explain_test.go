package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

const explainRulebook = `- name: ops
  sources:
    - generic: {payload: []}
  rules:
    - name: disk full
      condition: event.kind == "disk" && event.percent > 90
      throttle: {once_within: 10m, group_by: [event.host]}
      action: {none: {}}
    - name: any disk
      condition: event.kind == "disk"
      action: {none: {}}
`

// engineServer serves a real engine over EngineBackend.
func engineServer(t *testing.T) (*Server, *engine.Engine, *engine.FakeClock) {
	t.Helper()
	clock := engine.NewFakeClock(testNow)
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	rb, err := rulebooks.Parse("ops.yml", []byte(explainRulebook), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, Log: zerolog.Nop()})
	s, err := New(Config{Address: "127.0.0.1:0", Backend: &EngineBackend{Engine: eng}, Log: zerolog.Nop(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return s, eng, clock
}

func TestExplainEndpointUsesTheLiveState(t *testing.T) {
	s, eng, clock := engineServer(t)
	h := s.Handler()
	disk := map[string]any{"kind": "disk", "percent": 95, "host": "web1"}
	for range 2 {
		if err := eng.Inject(context.Background(), "ops", nil, []map[string]any{disk}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}

	w := do(t, h, "POST", "/api/explain", `{"ruleset":"ops","event":{"kind":"disk","percent":95,"host":"web1"}}`, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp ExplainResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Explanations) != 1 || len(resp.Explanations[0].Rules) != 2 {
		t.Fatalf("explanations %+v", resp.Explanations)
	}
	full, anyDisk := resp.Explanations[0].Rules[0], resp.Explanations[0].Rules[1]
	if full.Outcome != engine.OutcomeSuppressed || !full.WindowEnds.Equal(testNow.Add(10*time.Minute)) {
		t.Errorf("disk full: %+v, want suppressed by the window the first event opened", full)
	}
	if anyDisk.Outcome != engine.OutcomeConsumed || anyDisk.ConsumedBy != "disk full" {
		t.Errorf("any disk: %+v, want consumed by disk full", anyDisk)
	}

	// A missing field is named; no ruleset explains them all.
	w = do(t, h, "POST", "/api/explain", `{"event":{"kind":"disk"}}`, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"missing":["event.percent"]`) ||
		!strings.Contains(w.Body.String(), `"result":"unknown"`) {
		t.Errorf("missing field: %d %s", w.Code, w.Body)
	}

	// The rules table shows what happened: 2 matches, 1 firing, 1
	// suppressed; the later rule saw both events consumed.
	w = do(t, h, "GET", "/api/rules", "", nil)
	for _, want := range []string{
		`"rule":"disk full","enabled":true,"kind":"condition","fired":1,`,
		`"matched":2,"suppressed":1,"throttle":"once_within","consumed":0`,
		`"rule":"any disk","enabled":true,"kind":"condition","fired":0,"matched":0,"suppressed":0,"consumed":2,"consumed_counted":true`,
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("rules %s lack %s", w.Body, want)
		}
	}
	// Explaining changed nothing.
	if st := eng.Stats(); st[0].Matched != 2 || st[0].Fired != 1 {
		t.Errorf("stats after explain %+v", st)
	}
}

func TestExplainEndpointRejectsBadRequests(t *testing.T) {
	s, _, _ := engineServer(t)
	for _, tc := range []struct {
		name, body string
		want       int
		contains   string
	}{
		{"no event", `{"ruleset":"ops"}`, 400, "event: required"},
		{"event not an object", `{"event":[1]}`, 400, "body:"},
		{"unknown key", `{"event":{},"rules":"x"}`, 400, "unknown field"},
		{"unknown ruleset", `{"ruleset":"nope","event":{}}`, 404, `no ruleset named \"nope\"`},
		{"two values", `{"event":{}} {}`, 400, "more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, s.Handler(), "POST", "/api/explain", tc.body, nil)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, tc.want, tc.contains)
			}
		})
	}
	// A backend that cannot explain: 501.
	fs := newTestServer(t, newFakeBackend(), nil)
	if w := do(t, fs.Handler(), "POST", "/api/explain", `{"event":{}}`, nil); w.Code != http.StatusNotImplemented {
		t.Errorf("without an Explainer: %d %s", w.Code, w.Body)
	}
	if w := do(t, s.Handler(), "GET", "/api/explain", "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
}
