package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

var testNow = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

func newTestServer(t *testing.T, b *fakeBackend, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{Address: "127.0.0.1:0", Backend: b, Log: zerolog.Nop(), Clock: engine.NewFakeClock(testNow)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// do runs one request through the handler, as from a loopback client.
func do(t *testing.T, h http.Handler, method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Host = "127.0.0.1:5080"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return m
}

func TestNewConfig(t *testing.T) {
	b := newFakeBackend()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default address", Config{Backend: b}, ""},
		{"loopback v4", Config{Address: "127.0.0.1:0", Backend: b}, ""},
		{"loopback v6", Config{Address: "[::1]:0", Backend: b}, ""},
		{"localhost", Config{Address: "localhost:5080", Backend: b}, ""},
		{"all interfaces need a token", Config{Address: ":5080", Backend: b}, `address ":5080" is not a loopback address: a token is required`},
		{"public ip needs a token", Config{Address: "0.0.0.0:5080", Backend: b}, "a token is required"},
		{"hostname needs a token", Config{Address: "admin.example:5080", Backend: b}, "a token is required"},
		{"token off loopback", Config{Address: "0.0.0.0:5080", Token: "s3cret", Backend: b}, ""},
		{"no backend", Config{}, "backend is required"},
		{"no port", Config{Address: "127.0.0.1", Backend: b}, `address "127.0.0.1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if tc.cfg.Address == "" && s.cfg.Address != DefaultAddress {
					t.Errorf("address %q, want %q", s.cfg.Address, DefaultAddress)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(fmt.Sprint(err), "s3cret") {
				t.Errorf("error contains the token")
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "rulebook_up 1")
	})
	tests := []struct {
		name     string
		setup    func(*fakeBackend, *Server)
		noMetric bool
		method   string
		target   string
		body     string
		header   map[string]string
		want     int
		contains []string
		check    func(t *testing.T, b *fakeBackend, s *Server, w *httptest.ResponseRecorder)
	}{
		{name: "healthz", method: "GET", target: "/healthz", want: 200, contains: []string{`"status":"alive"`}},
		{name: "readyz ready", method: "GET", target: "/readyz", want: 200, contains: []string{`"ready":true`}},
		{name: "readyz not ready", setup: func(b *fakeBackend, _ *Server) { b.ready, b.reasons = false, []string{`source "hook" not listening`} },
			method: "GET", target: "/readyz", want: 503, contains: []string{`"ready":false`, `source \"hook\" not listening`}},
		{name: "readyz draining", setup: func(_ *fakeBackend, s *Server) { s.SetDraining(true) },
			method: "GET", target: "/readyz", want: 503, contains: []string{"draining"}},
		{name: "readyz after draining ends", setup: func(_ *fakeBackend, s *Server) { s.SetDraining(true); s.SetDraining(false) },
			method: "GET", target: "/readyz", want: 200},
		{name: "metrics", method: "GET", target: "/metrics", want: 200, contains: []string{"rulebook_up 1"}},
		{name: "metrics disabled", noMetric: true, method: "GET", target: "/metrics", want: 404},
		{name: "rules", method: "GET", target: "/api/rules", want: 200,
			contains: []string{`"ruleset":"ops","rule":"restart nginx","enabled":true,"kind":"condition","fired":2,"last_fired":"2026-11-29T01:00:00Z"`,
				`"rule":"page","enabled":false,"kind":"all","fired":0,"matched":0,"suppressed":0,"consumed":0,"consumed_counted":false}`}},
		{name: "rules wrong method", method: "DELETE", target: "/api/rules", want: 405},
		{name: "facts of every ruleset", method: "GET", target: "/api/facts", want: 200,
			contains: []string{`"ops":[{"host":"web1","state":"down"}]`, `"security":[]`}},
		{name: "facts of one ruleset", method: "GET", target: "/api/facts?ruleset=ops", want: 200,
			check: func(t *testing.T, _ *fakeBackend, _ *Server, w *httptest.ResponseRecorder) {
				facts := decode(t, w)["facts"].(map[string]any)
				if len(facts) != 1 || facts["ops"] == nil {
					t.Errorf("facts %v, want ops only", facts)
				}
			}},
		{name: "facts of an unknown ruleset", method: "GET", target: "/api/facts?ruleset=nope", want: 404, contains: []string{`no ruleset named \"nope\"`}},
		{name: "recent events", setup: func(_ *fakeBackend, s *Server) {
			s.Stream().PublishEvent(engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "ops", Name: "hook"},
				Event: engine.Event{"payload": map[string]any{"n": 1}, "meta": map[string]any{"uuid": "e1"}}})
			s.Publish(KindFiring, FiringData{Ruleset: "ops", Rule: "r"})
			s.Stream().PublishEvent(engine.Record{Seq: 2, Source: engine.SourceRef{Ruleset: "ops", Name: "hook"},
				Event: engine.Event{"meta": map[string]any{"uuid": "e2"}}})
		}, method: "GET", target: "/api/events?limit=5", want: 200,
			check: func(t *testing.T, _ *fakeBackend, _ *Server, w *httptest.ResponseRecorder) {
				var got struct{ Events []Entry }
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Events) != 2 || got.Events[0].ID != 1 || got.Events[1].ID != 3 || got.Events[0].Kind != KindEvent {
					t.Fatalf("events %+v, want ids 1 and 3, oldest first", got.Events)
				}
				var d EventData
				if err := json.Unmarshal(got.Events[0].Data, &d); err != nil || d.EventID != "e1" || d.Source != "hook" || d.Seq != 1 {
					t.Errorf("data %s (%v)", got.Events[0].Data, err)
				}
			}},
		{name: "recent events bad limit", method: "GET", target: "/api/events?limit=-1", want: 400, contains: []string{"limit"}},
		{name: "inject", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{"alert":"down","count":3,"ratio":0.5}}`, want: 202,
			contains: []string{`"status":"injected"`},
			check: func(t *testing.T, b *fakeBackend, s *Server, w *httptest.ResponseRecorder) {
				id, _ := decode(t, w)["event_id"].(string)
				if len(b.injected) != 1 || b.injected[0].ruleset != "ops" {
					t.Fatalf("injected %+v", b.injected)
				}
				ev := b.injected[0].event
				if engine.EventID(ev) != id || id == "" {
					t.Errorf("event id %q, answered %q", engine.EventID(ev), id)
				}
				if ev["count"] != int64(3) || ev["ratio"] != 0.5 {
					t.Errorf("numbers %T %v, %T %v; want int64 3 and float64 0.5", ev["count"], ev["count"], ev["ratio"], ev["ratio"])
				}
				recent := s.Stream().Recent(KindEvent, 10)
				if len(recent) != 1 || !strings.Contains(string(recent[0].Data), id) {
					t.Errorf("injected event not in the stream: %+v", recent)
				}
			}},
		{name: "inject keeps a given uuid", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{"meta":{"uuid":"given"}}}`, want: 202,
			contains: []string{`"event_id":"given"`}},
		{name: "inject unknown ruleset", method: "POST", target: "/api/events", body: `{"ruleset":"nope","event":{}}`, want: 404,
			contains: []string{`ruleset: no ruleset named \"nope\"`}},
		{name: "inject without ruleset", method: "POST", target: "/api/events", body: `{"event":{}}`, want: 400, contains: []string{"ruleset: required"}},
		{name: "inject without event", method: "POST", target: "/api/events", body: `{"ruleset":"ops"}`, want: 400, contains: []string{"event: required"}},
		{name: "inject event not an object", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":[1]}`, want: 400, contains: []string{"body:"}},
		{name: "inject unknown key", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{},"evnt":{}}`, want: 400, contains: []string{"evnt"}},
		{name: "inject number out of range", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{"n":[1e400]}}`, want: 400,
			contains: []string{"event: number 1e400 is out of range"}},
		{name: "inject bad json", method: "POST", target: "/api/events", body: `{"ruleset":`, want: 400},
		{name: "inject two values", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{}} {}`, want: 400, contains: []string{"more than one"}},
		{name: "inject too large", method: "POST", target: "/api/events",
			body: `{"ruleset":"ops","event":{"x":"` + strings.Repeat("a", MaxInjectBytes) + `"}}`, want: 413},
		{name: "inject not json", method: "POST", target: "/api/events", body: `ruleset=ops`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: 415},
		{name: "inject cross origin", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{}}`,
			header: map[string]string{"Origin": "http://evil.example"}, want: 403,
			check: func(t *testing.T, b *fakeBackend, _ *Server, _ *httptest.ResponseRecorder) {
				if len(b.injected) != 0 {
					t.Errorf("cross-origin event injected")
				}
			}},
		{name: "inject same origin", method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{}}`,
			header: map[string]string{"Origin": "http://127.0.0.1:5080"}, want: 202},
		{name: "inject backend error", setup: func(b *fakeBackend, _ *Server) { b.injectErr = errBoom },
			method: "POST", target: "/api/events", body: `{"ruleset":"ops","event":{}}`, want: 500, contains: []string{"inject: boom"}},
		{name: "audit filters", method: "GET",
			target: "/api/audit?rule=restart+nginx&ruleset=ops&status=failed&since=2h&until=2026-11-29T02:30:00Z&event=e1&limit=7", want: 200,
			contains: []string{`"entries":[]`},
			check: func(t *testing.T, b *fakeBackend, _ *Server, _ *httptest.ResponseRecorder) {
				want := engine.AuditFilter{Ruleset: "ops", Rule: "restart nginx", Status: engine.StatusFailed, EventID: "e1",
					Since: testNow.Add(-2 * time.Hour), Until: time.Date(2026, 11, 29, 2, 30, 0, 0, time.UTC), Limit: 7}
				if len(b.filters) != 1 || b.filters[0] != want {
					t.Errorf("filter %+v, want %+v", b.filters, want)
				}
			}},
		{name: "audit default limit", method: "GET", target: "/api/audit", want: 200,
			check: func(t *testing.T, b *fakeBackend, _ *Server, _ *httptest.ResponseRecorder) {
				if b.filters[0].Limit != DefaultAuditLimit {
					t.Errorf("limit %d, want %d", b.filters[0].Limit, DefaultAuditLimit)
				}
			}},
		{name: "audit limit capped", method: "GET", target: "/api/audit?limit=100000", want: 200,
			check: func(t *testing.T, b *fakeBackend, _ *Server, _ *httptest.ResponseRecorder) {
				if b.filters[0].Limit != MaxAuditLimit {
					t.Errorf("limit %d, want %d", b.filters[0].Limit, MaxAuditLimit)
				}
			}},
		{name: "audit entries", setup: func(b *fakeBackend, _ *Server) {
			b.entries = []engine.AuditEntry{{
				Firing: engine.Firing{ID: "f1", Ruleset: "ops", Rule: "restart nginx", Time: testNow, EventIDs: []string{"e1"}},
				Invocations: []*engine.InvocationState{{
					Invocation: &engine.Invocation{ID: "i1", Action: "run_playbook"}, Status: engine.StatusSucceeded,
					Attempts: []engine.Attempt{{N: 1, Status: engine.Succeeded, Output: "ok=3", Duration: time.Second}},
				}},
			}}
		}, method: "GET", target: "/api/audit", want: 200,
			contains: []string{`"id":"f1"`, `"action":"run_playbook"`, `"status":"succeeded"`, `"output":"ok=3"`}},
		{name: "audit bad status", method: "GET", target: "/api/audit?status=done", want: 400,
			contains: []string{`status: unknown status \"done\"`}},
		{name: "audit bad since", method: "GET", target: "/api/audit?since=yesterday", want: 400, contains: []string{`since: cannot parse \"yesterday\"`}},
		{name: "audit until before since", method: "GET", target: "/api/audit?since=1h&until=2h", want: 400, contains: []string{"until:"}},
		{name: "audit bad limit", method: "GET", target: "/api/audit?limit=x", want: 400, contains: []string{"limit"}},
		{name: "audit backend error", setup: func(b *fakeBackend, _ *Server) { b.auditErr = errBoom },
			method: "GET", target: "/api/audit", want: 500, contains: []string{"audit: boom"}},
		{name: "reload", method: "POST", target: "/api/reload", body: `{}`, want: 200, contains: []string{`"status":"reloaded"`},
			check: func(t *testing.T, b *fakeBackend, s *Server, _ *httptest.ResponseRecorder) {
				if b.reloads != 1 {
					t.Errorf("reloads %d", b.reloads)
				}
				if r := s.Stream().Recent(KindReload, 1); len(r) != 1 || string(r[0].Data) != `{"time":"2026-11-29T03:00:00Z","ok":true}` {
					t.Errorf("reload entry %+v", r)
				}
			}},
		{name: "reload refused", setup: func(b *fakeBackend, _ *Server) {
			b.reloadErr = fmt.Errorf(`site.yml:4:9: rule "x": condition: unknown name "evnt"`)
		}, method: "POST", target: "/api/reload", body: `{}`, want: 422, contains: []string{`unknown name \"evnt\"`},
			check: func(t *testing.T, _ *fakeBackend, s *Server, _ *httptest.ResponseRecorder) {
				if r := s.Stream().Recent(KindReload, 1); len(r) != 1 || !strings.Contains(string(r[0].Data), `"ok":false`) {
					t.Errorf("reload entry %+v", r)
				}
			}},
		{name: "reload needs json", method: "POST", target: "/api/reload", header: map[string]string{"Content-Type": "text/plain"}, want: 415},
		{name: "stream bad last-event-id", method: "GET", target: "/api/stream", header: map[string]string{"Last-Event-ID": "x"}, want: 400,
			contains: []string{`Last-Event-ID: \"x\"`}},
		{name: "stream bad replay", method: "GET", target: "/api/stream?replay=-3", want: 400},
		{name: "dashboard", method: "GET", target: "/", want: 200, contains: []string{"<title>Rulebook</title>", `id="feed"`},
			check: func(t *testing.T, _ *fakeBackend, _ *Server, w *httptest.ResponseRecorder) {
				if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
					t.Errorf("CSP %q", csp)
				}
			}},
		{name: "dashboard script", method: "GET", target: "/static/app.js", want: 200, contains: []string{"EventSource"}},
		{name: "dashboard style", method: "GET", target: "/static/style.css", want: 200, contains: []string{".feed-item"}},
		{name: "unknown page", method: "GET", target: "/nope", want: 404},
		{name: "rebinding host refused", method: "GET", target: "/api/rules", header: map[string]string{"Host": "evil.example"}, want: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend()
			s := newTestServer(t, b, func(c *Config) {
				if !tc.noMetric {
					c.Metrics = metrics
				}
			})
			if tc.setup != nil {
				tc.setup(b, s)
			}
			h := s.Handler()
			if host := tc.header["Host"]; host != "" {
				req := httptest.NewRequest(tc.method, tc.target, nil)
				req.Host = host
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != tc.want {
					t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
				}
				return
			}
			w := do(t, h, tc.method, tc.target, tc.body, tc.header)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			for _, c := range tc.contains {
				if !strings.Contains(w.Body.String(), c) {
					t.Errorf("body %s lacks %s", w.Body, c)
				}
			}
			if tc.check != nil {
				b.mu.Lock()
				defer b.mu.Unlock()
				tc.check(t, b, s, w)
			}
		})
	}
}

func TestToken(t *testing.T) {
	const token = "s3cret-token"
	b := newFakeBackend()
	s := newTestServer(t, b, func(c *Config) {
		c.Address = "0.0.0.0:0"
		c.Token = token
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	})
	h := s.Handler()
	tests := []struct {
		name   string
		method string
		target string
		body   string
		header map[string]string
		want   int
	}{
		{"healthz needs no token", "GET", "/healthz", "", nil, 200},
		{"readyz needs no token", "GET", "/readyz", "", nil, 200},
		{"dashboard page needs no token", "GET", "/", "", nil, 200},
		{"rules without token", "GET", "/api/rules", "", nil, 401},
		{"rules with token", "GET", "/api/rules", "", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"lowercase scheme", "GET", "/api/rules", "", map[string]string{"Authorization": "bearer " + token}, 200},
		{"wrong token", "GET", "/api/rules", "", map[string]string{"Authorization": "Bearer s3cret-tokeN"}, 401},
		{"token prefix", "GET", "/api/rules", "", map[string]string{"Authorization": "Bearer s3cret"}, 401},
		{"basic scheme", "GET", "/api/rules", "", map[string]string{"Authorization": "Basic " + token}, 401},
		{"query token only on the stream", "GET", "/api/rules?token=" + token, "", nil, 401},
		{"metrics without token", "GET", "/metrics", "", nil, 401},
		{"metrics with token", "GET", "/metrics", "", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"audit without token", "GET", "/api/audit", "", nil, 401},
		{"facts without token", "GET", "/api/facts", "", nil, 401},
		{"events without token", "GET", "/api/events", "", nil, 401},
		{"inject without token", "POST", "/api/events", `{"ruleset":"ops","event":{}}`, nil, 401},
		{"inject with token", "POST", "/api/events", `{"ruleset":"ops","event":{}}`, map[string]string{"Authorization": "Bearer " + token}, 202},
		{"reload without token", "POST", "/api/reload", `{}`, nil, 401},
		{"stream without token", "GET", "/api/stream", "", nil, 401},
		{"stream with wrong query token", "GET", "/api/stream?token=nope", "", nil, 401},
		{"profiler without token", "GET", "/debug/pprof/", "", nil, 401},
		{"cpu profile without token", "GET", "/debug/pprof/profile?seconds=1", "", nil, 401},
		{"profiler index with token", "GET", "/debug/pprof/", "", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"heap profile with token", "GET", "/debug/pprof/heap", "", map[string]string{"Authorization": "Bearer " + token}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Any Host is fine once a token is required.
			host := "rulebook.internal:5080"
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, tc.target, body)
			req.Host = host
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if strings.Contains(w.Body.String(), token) {
				t.Errorf("answer contains the token")
			}
		})
	}

	// The stream accepts ?token= (EventSource cannot send headers).
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Publish(KindEvent, map[string]string{"n": "1"})
	_, port, _ := net.SplitHostPort(s.Addr().String())
	resp, r := openStream(t, ctx, "http://127.0.0.1:"+port+"/api/stream?after=0&token="+token, nil)
	defer resp.Body.Close()
	if got := readN(t, r, 1); got[0].id != "1" {
		t.Errorf("first message %+v", got[0])
	}
}

func TestLifecycle(t *testing.T) {
	s := newTestServer(t, newFakeBackend(), nil)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("start after stop succeeded")
	}

	s = newTestServer(t, newFakeBackend(), nil)
	if s.URL() != "" {
		t.Errorf("URL before start %q", s.URL())
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second start succeeded")
	}
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}

	// An open stream does not hold Stop up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sresp, _ := openStream(t, ctx, s.URL()+"/api/stream", nil)
	defer sresp.Body.Close()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := io.ReadAll(sresp.Body); err != nil {
		t.Logf("stream ended with %v", err)
	}
	if _, err := http.Get(s.URL() + "/healthz"); err == nil {
		t.Error("still serving after stop")
	}

	// A busy port is reported by Start.
	a := newTestServer(t, newFakeBackend(), nil)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	b := newTestServer(t, newFakeBackend(), func(c *Config) { c.Address = a.Addr().String() })
	if err := b.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("start on a busy port: %v", err)
	}
}

func FuzzParseInject(f *testing.F) {
	f.Add([]byte(`{"ruleset":"ops","event":{"a":1,"b":[1.5,{"c":"d"}]}}`))
	f.Add([]byte(`{"ruleset":"","event":null}`))
	f.Add([]byte(`{"ruleset":"x","event":{"n":1e400}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseInject(body)
		if err != nil {
			return
		}
		if req.Ruleset == "" || req.Event == nil {
			t.Fatalf("accepted %q without ruleset or event", body)
		}
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case json.Number:
				t.Fatalf("json.Number left in %q", body)
			case map[string]any:
				for _, vv := range x {
					walk(vv)
				}
			case []any:
				for _, vv := range x {
					walk(vv)
				}
			}
		}
		walk(req.Event)
		if _, err := json.Marshal(req.Event); err != nil {
			t.Fatalf("accepted event %q cannot be encoded again: %v", body, err)
		}
	})
}
