package httpingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// recorder is an engine.Emitter test double that records every call and
// answers with the outcomes (or error) it is told to.
type recorder struct {
	mu       sync.Mutex
	calls    [][]engine.Entry
	refs     []engine.SourceRef
	outcome  engine.Outcome
	err      error
	block    chan struct{} // when set, Emit waits for it to close
	entering chan struct{} // when set, receives once per Emit call
}

func (r *recorder) Emit(ctx context.Context, src engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	if r.entering != nil {
		r.entering <- struct{}{}
	}
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	r.calls = append(r.calls, entries)
	r.refs = append(r.refs, src)
	out := make([]engine.Outcome, len(entries))
	for i := range out {
		out[i] = r.outcome
	}
	return out, nil
}

func (r *recorder) entries() []engine.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []engine.Entry
	for _, c := range r.calls {
		out = append(out, c...)
	}
	return out
}

// payloadBuild makes one event per request with the payload.
func payloadBuild(req *Request) ([]engine.Entry, error) {
	if m, ok := req.Payload.(map[string]any); ok && m["reject"] == true {
		return nil, errors.New("payload says reject")
	}
	ev := engine.NewEvent(map[string]any{"payload": req.Payload}, "hook", "test", req.Received)
	return []engine.Entry{{Event: ev}}, nil
}

func newEndpoint(out engine.Emitter, mod func(*Endpoint)) *Endpoint {
	e := &Endpoint{
		Source: engine.SourceRef{Ruleset: "rs", Name: "hook", Type: "test"},
		Out:    out,
		Build:  payloadBuild,
		Now:    func() time.Time { return now },
		Log:    zerolog.Nop(),
	}
	if mod != nil {
		mod(e)
	}
	return e
}

func TestEndpointAnswers(t *testing.T) {
	tokenAuth := mustCompile(t, Auth{BearerTokens: []string{"secret-token"}})
	type req struct {
		method, ct, body string
		headers          http.Header
		chunked          bool
	}
	post := func(ct, body string) req { return req{method: "POST", ct: ct, body: body} }
	cases := []struct {
		name       string
		ep         func(*Endpoint)
		outcome    engine.Outcome
		emitErr    error
		req        req
		status     int
		body       string // exact JSON answer; "" skips
		emitted    int
		header     [2]string
		bodyPrefix string
	}{
		{name: "accepted", req: post("application/json", `{"n":1}`), status: 200, emitted: 1},
		{name: "accepted array", req: post("application/json", `[1,2]`), status: 200, emitted: 1},
		{name: "empty body accepted", req: post("application/json", ``), status: 200, emitted: 1},
		{name: "duplicate", outcome: engine.Duplicate, req: post("application/json", `{}`), status: 200, body: `{"status":"duplicate","ids":[],"duplicates":1}`, emitted: 1},
		{name: "stale", outcome: engine.Stale, req: post("application/json", `{}`), status: 200, body: `{"status":"stale","ids":[],"stale":1}`, emitted: 1},
		{name: "backlog full", emitErr: &engine.BacklogError{RetryAfter: 2100 * time.Millisecond}, req: post("application/json", `{}`), status: 503, body: `{"error":"backlog full, retry later"}`, header: [2]string{"Retry-After", "3"}},
		{name: "backlog full sub-second", emitErr: &engine.BacklogError{RetryAfter: time.Millisecond}, req: post("application/json", `{}`), status: 503, header: [2]string{"Retry-After", "1"}},
		{name: "shutting down", emitErr: engine.ErrClosed, req: post("application/json", `{}`), status: 503, body: `{"error":"shutting down, retry later"}`},
		{name: "refused by a filter", emitErr: &engine.FilterError{Index: 1, Name: "event_splitter", Err: errors.New(`splitter_key "a" is not in the event`)}, req: post("application/json", `{}`), status: 422, body: `{"error":"event refused by filters[1] (event_splitter): splitter_key \"a\" is not in the event"}`},
		{name: "storage failure", emitErr: errors.New("disk on fire"), req: post("application/json", `{}`), status: 500, body: `{"error":"storing the event failed"}`},
		{name: "method not allowed", req: req{method: "GET"}, status: 405, body: `{"error":"method \"GET\" not allowed"}`, header: [2]string{"Allow", "POST"}},
		{name: "methods configured", ep: func(e *Endpoint) { e.Methods = []string{"PUT", "POST"} }, req: req{method: "DELETE"}, status: 405, header: [2]string{"Allow", "PUT, POST"}},
		{name: "put allowed when configured", ep: func(e *Endpoint) { e.Methods = []string{"PUT"} }, req: req{method: "PUT", ct: "text/plain", body: "x"}, status: 200, emitted: 1},
		{name: "too large by content-length", ep: func(e *Endpoint) { e.MaxBodyBytes = 8 }, req: post("text/plain", "123456789"), status: 413, body: `{"error":"body larger than 8 bytes"}`},
		{name: "too large chunked", ep: func(e *Endpoint) { e.MaxBodyBytes = 8 }, req: req{method: "POST", ct: "text/plain", body: "123456789", chunked: true}, status: 413},
		{name: "exactly the limit", ep: func(e *Endpoint) { e.MaxBodyBytes = 8 }, req: post("text/plain", "12345678"), status: 200, emitted: 1},
		{name: "unauthorized", ep: func(e *Endpoint) { e.Auth = tokenAuth }, req: req{method: "POST", ct: "application/json", body: "{}", headers: hdr("Authorization", "Bearer nope")}, status: 401, body: `{"error":"unauthorized"}`, header: [2]string{"WWW-Authenticate", `Bearer realm="rulebook"`}},
		{name: "authorized", ep: func(e *Endpoint) { e.Auth = tokenAuth }, req: req{method: "POST", ct: "application/json", body: "{}", headers: hdr("Authorization", "Bearer secret-token")}, status: 200, emitted: 1},
		{name: "auth before content type", ep: func(e *Endpoint) { e.Auth = tokenAuth }, req: post("image/png", "x"), status: 401},
		{name: "unsupported type", req: post("image/png", "x"), status: 415, body: `{"error":"unsupported content type \"image/png\""}`},
		{name: "unparseable json", req: post("application/json", `{"n":`), status: 400, body: `{"error":"invalid json: unexpected end of JSON input"}`},
		{name: "content type override", ep: func(e *Endpoint) { e.ContentType = "application/json" }, req: post("text/plain", `{"n":1}`), status: 200, emitted: 1},
		{name: "override makes it unparseable", ep: func(e *Endpoint) { e.ContentType = "application/json" }, req: post("application/json", `n=1`), status: 400, bodyPrefix: `{"error":"invalid json`},
		{name: "build error", req: post("application/json", `{"reject":true}`), status: 400, body: `{"error":"payload says reject"}`},
		{name: "ip allowed", ep: func(e *Endpoint) { e.AllowIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} }, req: post("text/plain", "x"), status: 200, emitted: 1},
		{name: "ip refused", ep: func(e *Endpoint) { e.AllowIPs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, req: post("text/plain", "x"), status: 403, body: `{"error":"forbidden"}`},
		{name: "client names without tls", ep: func(e *Endpoint) { e.ClientNames = []string{"a"} }, req: post("text/plain", "x"), status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{outcome: tc.outcome, err: tc.emitErr}
			ep := newEndpoint(rec, tc.ep)
			var body io.Reader = strings.NewReader(tc.req.body)
			if tc.req.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			r := httptest.NewRequest(tc.req.method, "/hook", body)
			if tc.req.chunked {
				r.ContentLength = -1
			}
			if tc.req.ct != "" {
				r.Header.Set("Content-Type", tc.req.ct)
			}
			for k, v := range tc.req.headers {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			ep.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			got := strings.TrimSpace(w.Body.String())
			if tc.body != "" && got != tc.body {
				t.Errorf("body %s, want %s", got, tc.body)
			}
			if tc.bodyPrefix != "" && !strings.HasPrefix(got, tc.bodyPrefix) {
				t.Errorf("body %s, want prefix %s", got, tc.bodyPrefix)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
			if tc.header[0] != "" && w.Header().Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s = %q, want %q", tc.header[0], w.Header().Get(tc.header[0]), tc.header[1])
			}
			if n := len(rec.entries()); n != tc.emitted {
				t.Errorf("emitted %d entries, want %d", n, tc.emitted)
			}
			if tc.status == 200 && tc.outcome == engine.Accepted {
				var a Answer
				if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
					t.Fatal(err)
				}
				ents := rec.entries()
				if a.Status != "accepted" || len(a.IDs) != 1 || a.IDs[0] != engine.EventID(ents[0].Event) {
					t.Errorf("answer %+v does not name the emitted event %s", a, engine.EventID(ents[0].Event))
				}
				if rec.refs[0] != ep.Source {
					t.Errorf("emitted for %+v", rec.refs[0])
				}
			}
		})
	}
}

// TestEndpointAnswersOnlyAfterEmit: the 200 is written only once Emit has
// returned (the entry is durable).
func TestEndpointAnswersOnlyAfterEmit(t *testing.T) {
	rec := &recorder{block: make(chan struct{}), entering: make(chan struct{}, 1)}
	ep := newEndpoint(rec, nil)
	srv := httptest.NewServer(ep)
	defer srv.Close()
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	<-rec.entering // the handler is inside Emit
	select {
	case r := <-done:
		t.Fatalf("answered %+v before Emit returned", r)
	default:
	}
	close(rec.block)
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Fatalf("got %+v", r)
	}
}

func TestEndpointMixedOutcomes(t *testing.T) {
	out := emitterFunc(func(_ context.Context, _ engine.SourceRef, es []engine.Entry) ([]engine.Outcome, error) {
		return []engine.Outcome{engine.Accepted, engine.Duplicate, engine.Stale}, nil
	})
	ep := newEndpoint(out, func(e *Endpoint) {
		e.Build = func(req *Request) ([]engine.Entry, error) {
			var es []engine.Entry
			for i := 0; i < 3; i++ {
				es = append(es, engine.Entry{Event: engine.NewEvent(nil, "hook", "test", now)})
			}
			return es, nil
		}
	})
	w := httptest.NewRecorder()
	ep.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader("x")))
	var a Answer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || a.Status != "accepted" || len(a.IDs) != 1 || a.Duplicates != 1 || a.Stale != 1 {
		t.Fatalf("%d %+v", w.Code, a)
	}
	if ep.Counts.Accepted.Load() != 1 || ep.Counts.Duplicates.Load() != 1 || ep.Counts.Stale.Load() != 1 {
		t.Fatal("counts not kept")
	}
}

type emitterFunc func(context.Context, engine.SourceRef, []engine.Entry) ([]engine.Outcome, error)

func (f emitterFunc) Emit(ctx context.Context, s engine.SourceRef, e []engine.Entry) ([]engine.Outcome, error) {
	return f(ctx, s, e)
}

func TestSafeHeaders(t *testing.T) {
	v := mustCompile(t, Auth{HeaderToken: &HeaderToken{Header: "X-My-Token", Tokens: []string{"x"}}, HMAC: &HMAC{Header: "X-Sig", Secrets: []string{"s"}}})
	h := hdr("Authorization", "Bearer x", "Cookie", "a=b", "X-Hub-Signature-256", "sha256=00", "X-My-Token", "x", "X-Sig", "00",
		"X-Github-Delivery", "d1", "Accept", "a", "Accept", "b", "Stripe-Signature", "t=1")
	got := SafeHeaders(h, v.SensitiveHeaders())
	want := map[string]any{"X-Github-Delivery": "d1", "Accept": "a, b"}
	if len(got) != len(want) || got["X-Github-Delivery"] != "d1" || got["Accept"] != "a, b" {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// FuzzAnswerJSON: the hand-written encoding of Answer is byte for byte what
// encoding/json makes of it.
func FuzzAnswerJSON(f *testing.F) {
	f.Add("accepted", "6f1c2a9e-0000-4000-8000-000000000000", "x", uint8(0), uint8(0))
	f.Add("duplicate", "", "\"<&>\u2028\x01é", uint8(2), uint8(1))
	f.Fuzz(func(t *testing.T, status, id1, id2 string, dups, stale uint8) {
		// Counts are never negative.
		a := Answer{Status: status, IDs: []string{id1, id2}, Duplicates: int(dups), Stale: int(stale)}
		if id2 == "" {
			a.IDs = a.IDs[:1]
		}
		want, err := json.Marshal(a)
		if err != nil {
			t.Skip()
		}
		if got := a.append(nil); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

// TestFailureLogsAreLimited: a storm of 503s logs one warning per second
// of the endpoint's clock, with the number held back.
func TestFailureLogsAreLimited(t *testing.T) {
	var buf strings.Builder
	clock := engine.NewFakeClock(now)
	rec := &recorder{err: &engine.BacklogError{RetryAfter: time.Second}}
	ep := newEndpoint(rec, func(e *Endpoint) {
		e.Log = zerolog.New(&syncWriter{w: &buf})
		e.Now = clock.Now
	})
	post := func() {
		w := httptest.NewRecorder()
		ep.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader("x")))
		if w.Code != 503 {
			t.Fatalf("status %d", w.Code)
		}
	}
	for i := 0; i < 5; i++ {
		post()
	}
	clock.Advance(999 * time.Millisecond)
	post()
	clock.Advance(time.Millisecond)
	post()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], `"similar_not_logged":0`) || !strings.Contains(lines[1], `"similar_not_logged":5`) {
		t.Fatalf("log lines:\n%s", buf.String())
	}
	if got := ep.Counts.Failed.Load(); got != 7 {
		t.Fatalf("failed count %d", got)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
