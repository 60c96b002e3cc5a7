package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
	"github.com/rulebook-dev/rulebook/sources/httpingest/httpingesttest"
)

var t0 = time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)

type harness struct {
	url   string
	j     *httpingesttest.Journal
	clock *engine.FakeClock
	hub   *httpingest.Hub
}

// start runs a webhook source with args (address defaulted to 127.0.0.1:0)
// and returns where it listens.
func start(t *testing.T, args map[string]any) *harness {
	t.Helper()
	h := &harness{j: &httpingesttest.Journal{}, clock: engine.NewFakeClock(t0)}
	srv := httpingesttest.Start(t, Spec, engine.SourceConfig{Name: "hooks", Type: Type, Ruleset: "rs", Clock: h.clock, Log: zerolog.Nop()}, args, h.j)
	h.url, h.hub = srv.Addr, srv.Hub
	return h
}

type reply struct {
	status int
	body   map[string]any
	header http.Header
}

func (h *harness) send(t *testing.T, method, path, ct, body string, headers ...string) reply {
	t.Helper()
	var def http.Header
	if ct != "" {
		def = http.Header{"Content-Type": {ct}}
	}
	r := httpingesttest.Send(t, method, h.url+path, body, def, headers...)
	if r.Body == nil {
		t.Fatalf("answer %q is not a JSON object", r.Raw)
	}
	return reply{status: r.Status, body: r.Body, header: r.Header}
}

func TestEventShape(t *testing.T) {
	h := start(t, map[string]any{"path": "/hooks/github", "token": "tok", "dedupe": map[string]any{"header": "X-GitHub-Delivery"}})
	r := h.send(t, "POST", "/hooks/github?env=prod&tag=a&tag=b", "application/json", `{"action":"opened","n":1}`,
		"Authorization", "Bearer tok", "X-GitHub-Delivery", "d-1", "X-Hub-Signature-256", "sha256=00", "Cookie", "c=1", "User-Agent", "GitHub-Hookshot/1")
	if r.status != 200 || r.body["status"] != "accepted" {
		t.Fatalf("%d %v", r.status, r.body)
	}
	es := h.j.Accepted()
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	ev := es[0].Event
	if ids := r.body["ids"].([]any); len(ids) != 1 || ids[0] != engine.EventID(ev) {
		t.Fatalf("answer ids %v, event %s", ids, engine.EventID(ev))
	}
	if !jsonEqual(ev["payload"], `{"action":"opened","n":1}`) {
		t.Errorf("payload %v", ev["payload"])
	}
	meta := ev["meta"].(map[string]any)
	hs := meta["headers"].(map[string]any)
	for _, k := range []string{"Authorization", "X-Hub-Signature-256", "Cookie"} {
		if _, ok := hs[k]; ok {
			t.Errorf("meta.headers has %s", k)
		}
	}
	if hs["X-Github-Delivery"] != "d-1" || hs["User-Agent"] != "GitHub-Hookshot/1" || hs["Content-Type"] != "application/json" {
		t.Errorf("meta.headers %v", hs)
	}
	if !jsonEqual(meta["query"], `{"env":"prod","tag":["a","b"]}`) {
		t.Errorf("meta.query %v", meta["query"])
	}
	if meta["endpoint"] != "/hooks/github" || meta["method"] != "POST" || !strings.HasPrefix(meta["remote_addr"].(string), "127.0.0.1:") {
		t.Errorf("meta %v", meta)
	}
	if !jsonEqual(meta["source"], `{"name":"hooks","type":"webhook"}`) || meta["received_at"] != t0.Format(time.RFC3339Nano) {
		t.Errorf("meta source/received_at %v %v", meta["source"], meta["received_at"])
	}
	if es[0].DedupeKey != "d-1" || h.j.Refs()[0] != (engine.SourceRef{Ruleset: "rs", Name: "hooks", Type: "webhook"}) {
		t.Errorf("entry %+v ref %+v", es[0], h.j.Refs()[0])
	}

	// A redelivery is answered 200, says duplicate, and is not stored.
	r = h.send(t, "POST", "/hooks/github", "application/json", `{"action":"opened","n":1}`, "Authorization", "Bearer tok", "X-GitHub-Delivery", "d-1")
	if r.status != 200 || r.body["status"] != "duplicate" || len(h.j.Accepted()) != 1 {
		t.Fatalf("redelivery: %d %v, %d stored", r.status, r.body, len(h.j.Accepted()))
	}
	// Without the token nothing is stored.
	r = h.send(t, "POST", "/hooks/github", "application/json", `{}`, "X-GitHub-Delivery", "d-2")
	if r.status != 401 || r.body["error"] != "unauthorized" || len(h.j.Accepted()) != 1 {
		t.Fatalf("no token: %d %v", r.status, r.body)
	}
}

func jsonEqual(v any, want string) bool {
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		panic(err)
	}
	a, _ := json.Marshal(v)
	b, _ := json.Marshal(w)
	return bytes.Equal(a, b)
}

func TestBodies(t *testing.T) {
	h := start(t, map[string]any{"paths": []any{"/", "/other"}, "methods": []any{"POST", "PUT"}})
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		payload                      string // JSON of the expected payload
	}{
		{"json array is one event", "POST", "/", "application/json", `[{"n":1},{"n":2}]`, 200, `[{"n":1},{"n":2}]`},
		{"form", "PUT", "/other", "application/x-www-form-urlencoded", "a=1&b=2&b=3", 200, `{"a":"1","b":["2","3"]}`},
		{"xml", "POST", "/", "application/xml", `<alert sev="2"><host>a</host><host>b</host></alert>`, 200, `{"alert":{"@sev":"2","host":["a","b"]}}`},
		{"text", "POST", "/", "text/plain", "disk full", 200, `"disk full"`},
		{"raw", "POST", "/", "", "raw bytes", 200, `"raw bytes"`},
		{"unsupported", "POST", "/", "image/gif", "GIF89a", 415, ``},
		{"broken json", "POST", "/", "application/json", `{"a"`, 400, ``},
		{"get refused", "GET", "/", "", "", 405, ``},
		{"unknown path", "POST", "/nope", "text/plain", "x", 404, ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.j.Accepted())
			r := h.send(t, tc.method, tc.path, tc.ct, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%v)", r.status, tc.status, r.body)
			}
			es := h.j.Accepted()
			if tc.status != 200 {
				if len(es) != before {
					t.Fatal("a rejected request was stored")
				}
				if r.body["error"] == nil {
					t.Fatalf("no error in %v", r.body)
				}
				return
			}
			if len(es) != before+1 {
				t.Fatalf("%d stored, want %d", len(es), before+1)
			}
			if got := es[len(es)-1].Event["payload"]; !jsonEqual(got, tc.payload) {
				t.Fatalf("payload %#v, want %s", got, tc.payload)
			}
		})
	}
}

func TestContentTypeOverrideAndLimits(t *testing.T) {
	h := start(t, map[string]any{"content_type": "application/json", "max_body_bytes": 16, "allow_ips": []any{"127.0.0.0/8"}})
	if r := h.send(t, "POST", "/", "text/plain", `{"n":1}`); r.status != 200 {
		t.Fatalf("override: %d %v", r.status, r.body)
	}
	if got := h.j.Accepted()[0].Event["payload"]; !jsonEqual(got, `{"n":1}`) {
		t.Fatalf("payload %v", got)
	}
	if r := h.send(t, "POST", "/", "application/json", `{"n":"0123456789abcdef"}`); r.status != 413 {
		t.Fatalf("size: %d", r.status)
	}
	h2 := start(t, map[string]any{"allow_ips": []any{"10.0.0.0/8"}})
	if r := h2.send(t, "POST", "/", "text/plain", "x"); r.status != 403 || len(h2.j.Accepted()) != 0 {
		t.Fatalf("allow_ips: %d", r.status)
	}
}

func TestDedupeAndOrderExpressions(t *testing.T) {
	h := start(t, map[string]any{
		"dedupe": map[string]any{"expr": `headers["x-request-id"] ?? payload.id`, "window": "1h"},
		"order":  map[string]any{"key": "payload.object", "timestamp": "payload.at"},
	})
	send := func(body string, hdrs ...string) string {
		r := h.send(t, "POST", "/", "application/json", body, hdrs...)
		if r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
		return r.body["status"].(string)
	}
	steps := []struct {
		body, hdr, want string
	}{
		{`{"id":"a","object":"vm1","at":"2026-11-29T01:00:00Z"}`, "", "accepted"},
		{`{"id":"a","object":"vm1","at":"2026-11-29T01:05:00Z"}`, "", "duplicate"},
		{`{"id":"b","object":"vm1","at":"2026-11-29T00:59:00Z"}`, "", "stale"},
		{`{"id":"c","object":"vm2","at":1795914000}`, "", "accepted"},
		{`{"id":"d","object":"vm2","at":1795913999000}`, "", "stale"},
		{`{"id":"e","object":"vm1","at":"2026-11-29T01:10:00Z"}`, "r-1", "accepted"},
		{`{"id":"f","object":"vm1","at":"2026-11-29T01:11:00Z"}`, "r-1", "duplicate"},
		{`{"id":"g"}`, "", "accepted"}, // no order key: never stale
		{`{"id":"h","object":"vm3","at":"not a time"}`, "", "accepted"},
	}
	for i, s := range steps {
		var hdrs []string
		if s.hdr != "" {
			hdrs = []string{"X-Request-Id", s.hdr}
		}
		if got := send(s.body, hdrs...); got != s.want {
			t.Fatalf("step %d (%s): %s, want %s", i, s.body, got, s.want)
		}
	}
	// No key at all: refused with the reason, not processed.
	stored := len(h.j.Accepted())
	for _, body := range []string{`{"object":"vm4"}`, `{"id":{"nested":1}}`, `"text"`} {
		r := h.send(t, "POST", "/", "application/json", body)
		if r.status != 400 || !strings.Contains(r.body["error"].(string), "dedupe") || len(h.j.Accepted()) != stored {
			t.Fatalf("%s without a dedupe key: %d %v, %d stored", body, r.status, r.body, len(h.j.Accepted()))
		}
	}
	es := h.j.Accepted()
	if es[0].DedupeKey != "a" || es[0].OrderKey != "vm1" || !es[0].Timestamp.Equal(t0) || es[0].DedupeWindow != time.Hour {
		t.Fatalf("first entry %+v", es[0])
	}
	if last := es[len(es)-1]; last.OrderKey != "" || !last.Timestamp.IsZero() || last.DedupeKey != "h" {
		t.Fatalf("entry without a usable time/key %+v", last)
	}
}

func TestSignatureWithRotationAndReplay(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required")
		}
		t.Skip("openssl not installed; run test/setup.sh")
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	oldKey := []byte("fedcba9876543210")
	t.Setenv("RULEBOOK_TEST_WHSEC", "whsec_"+base64.StdEncoding.EncodeToString(key))
	h := start(t, map[string]any{
		"hmac":   map[string]any{"preset": "standard", "secrets": []any{"${env:RULEBOOK_TEST_WHSEC}", "whsec_" + base64.StdEncoding.EncodeToString(oldKey)}},
		"dedupe": map[string]any{"header": "webhook-id"},
	})
	sign := func(k []byte, id string, ts int64, body string) string {
		cmd := exec.Command("openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hexOf(k), "-binary")
		cmd.Stdin = strings.NewReader(id + "." + strconv.FormatInt(ts, 10) + "." + body)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return "v1," + base64.StdEncoding.EncodeToString(out)
	}
	body := `{"type":"invoice.paid"}`
	post := func(k []byte, id string, ts int64) reply {
		return h.send(t, "POST", "/", "application/json", body, "webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sign(k, id, ts, body))
	}
	now := t0.Unix()
	if r := post(key, "m1", now); r.status != 200 || r.body["status"] != "accepted" {
		t.Fatalf("current secret: %d %v", r.status, r.body)
	}
	if r := post(oldKey, "m2", now); r.status != 200 {
		t.Fatalf("rotated-out secret still listed: %d", r.status)
	}
	if r := post([]byte("wrong"), "m3", now); r.status != 401 {
		t.Fatalf("wrong secret: %d", r.status)
	}
	// The captured m1 replayed 6 minutes later: refused before dedupe.
	h.clock.Advance(6 * time.Minute)
	if r := post(key, "m1", now); r.status != 401 {
		t.Fatalf("replay outside tolerance: %d %v", r.status, r.body)
	}
	if r := post(key, "m1", h.clock.Now().Unix()); r.status != 200 || r.body["status"] != "duplicate" {
		t.Fatalf("fresh redelivery: %d %v", r.status, r.body)
	}
	es := h.j.Accepted()
	if len(es) != 2 {
		t.Fatalf("%d stored, want 2", len(es))
	}
	if _, ok := es[0].Event["meta"].(map[string]any)["headers"].(map[string]any)["Webhook-Signature"]; ok {
		t.Fatal("signature reached the event")
	}
}

// TestDedupeKeyRequired: with dedupe on a header, a request without that
// header is refused, not processed without a key (a resend would run its
// actions again).
func TestDedupeKeyRequired(t *testing.T) {
	h := start(t, map[string]any{"dedupe": map[string]any{"header": "X-GitHub-Delivery"}})
	for _, hdrs := range [][]string{nil, {"X-GitHub-Delivery", ""}} {
		r := h.send(t, "POST", "/", "application/json", `{"a":1}`, hdrs...)
		if r.status != 400 || r.body["error"] != "dedupe: header X-Github-Delivery is missing or empty: a delivery without its id cannot be deduplicated" {
			t.Fatalf("headers %q: %d %v", hdrs, r.status, r.body)
		}
	}
	if n := len(h.j.Accepted()); n != 0 {
		t.Fatalf("%d stored", n)
	}
	if r := h.send(t, "POST", "/", "application/json", `{"a":1}`, "X-GitHub-Delivery", "d-1"); r.status != 200 || r.body["status"] != "accepted" {
		t.Fatalf("with the header: %d %v", r.status, r.body)
	}
}

// TestStandardWebhooksDedupeAcrossHeaderFamilies: a Standard Webhooks
// message is signed over its id, and senders spell the headers webhook-* or
// svix-*. Resent under the other spelling it must be a duplicate, and a
// svix-signed request cannot pick its dedupe key with an unsigned
// webhook-id.
func TestStandardWebhooksDedupeAcrossHeaderFamilies(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	body := `{"type":"invoice.paid"}`
	sign := func(id string, ts int64) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
		return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	for _, dedupe := range []map[string]any{
		{"header": "webhook-id"},
		{"header": "svix-id"},
		{"expr": `headers["webhook-id"]`},
		{"expr": `headers["Svix-Id"] + ""`},
	} {
		t.Run(fmt.Sprint(dedupe), func(t *testing.T) {
			h := start(t, map[string]any{
				"hmac":   map[string]any{"preset": "standard", "secret": secret},
				"dedupe": dedupe,
			})
			now := h.clock.Now().Unix()
			ts := strconv.FormatInt(now, 10)
			post := func(hdrs ...string) reply {
				return h.send(t, "POST", "/", "application/json", body, hdrs...)
			}
			if r := post("webhook-id", "msg_1", "webhook-timestamp", ts, "webhook-signature", sign("msg_1", now)); r.status != 200 || r.body["status"] != "accepted" {
				t.Fatalf("webhook-*: %d %v", r.status, r.body)
			}
			if r := post("svix-id", "msg_1", "svix-timestamp", ts, "svix-signature", sign("msg_1", now)); r.status != 200 || r.body["status"] != "duplicate" {
				t.Fatalf("same message as svix-*: %d %v", r.status, r.body)
			}
			// svix-signed, with an unsigned webhook-id beside it: the key
			// is still the signed svix-id.
			if r := post("svix-id", "msg_1", "svix-timestamp", ts, "svix-signature", sign("msg_1", now), "webhook-id", "fresh-1"); r.status != 200 || r.body["status"] != "duplicate" {
				t.Fatalf("svix-* with a stray webhook-id: %d %v", r.status, r.body)
			}
			// An id from one family beside a signature from the other is
			// not verified.
			if r := post("webhook-id", "msg_2", "webhook-timestamp", ts, "svix-signature", sign("msg_2", now)); r.status != 401 {
				t.Fatalf("mixed families: %d %v", r.status, r.body)
			}
			if r := post("svix-id", "msg_3", "svix-timestamp", ts, "svix-signature", sign("msg_3", now)); r.status != 200 || r.body["status"] != "accepted" {
				t.Fatalf("new svix message: %d %v", r.status, r.body)
			}
			es := h.j.Accepted()
			if len(es) != 2 || es[0].DedupeKey != "msg_1" || es[1].DedupeKey != "msg_3" {
				t.Fatalf("stored %+v", es)
			}
		})
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestBackPressure(t *testing.T) {
	h := start(t, map[string]any{})
	h.j.Fail(&engine.BacklogError{RetryAfter: 30 * time.Second})
	r := h.send(t, "POST", "/", "text/plain", "x")
	if r.status != 503 || r.header.Get("Retry-After") != "30" {
		t.Fatalf("%d retry-after %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestSharedListener(t *testing.T) {
	hub := httpingest.NewHub(httpingest.HubConfig{Log: zerolog.Nop()})
	defer hub.Stop(context.Background())
	spec := Spec(hub)
	mk := func(name, path string) engine.Source {
		s, err := spec.New(engine.SourceConfig{Name: name, Type: Type, Args: map[string]any{"address": "127.0.0.1:0", "path": path}, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &httpingesttest.Journal{}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, s := range []engine.Source{mk("a", "/a"), mk("b", "/b")} {
		wg.Add(1)
		go func(s engine.Source) { defer wg.Done(); errs <- s.Run(ctx, j) }(s)
	}
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(hub.Paths("127.0.0.1:0")) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	a, ok := hub.Lookup("127.0.0.1:0", "/a")
	if !ok || len(hub.Paths("127.0.0.1:0")) != 2 {
		t.Fatalf("paths %v", hub.Paths("127.0.0.1:0"))
	}
	addr = a.String()
	for _, p := range []string{"/a", "/b"} {
		resp, err := http.Post("http://"+addr+p, "text/plain", strings.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	// A third source wanting /a on the same address cannot run.
	if err := mk("c", "/a").Run(ctx, j); err == nil || !strings.Contains(err.Error(), `webhook source "c"`) {
		t.Fatalf("conflicting source: %v", err)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if es := j.Accepted(); len(es) != 2 || j.Refs()[0].Name == j.Refs()[1].Name {
		t.Fatalf("entries %d refs %v", len(es), j.Refs())
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		args map[string]any
		want string
	}{
		{"ok with unresolved secrets", map[string]any{"host": "127.0.0.1", "port": 5000, "hmac": map[string]any{"preset": "github", "secret": "${env:RULEBOOK_TEST_NOT_SET}"}}, ""},
		{"unknown key", map[string]any{"host": "127.0.0.1", "port": 5000, "tokens": "x"}, `tokens: unknown key "tokens" (known: address, allow_ips, basic, content_type, dedupe, header_token, hmac, host, idle_timeout, insecure, max_body_bytes, methods, order, path, paths, port, read_header_timeout, read_timeout, timestamp_tolerance, tls, token, write_timeout)`},
		{"dedupe empty", map[string]any{"host": "127.0.0.1", "port": 5000, "dedupe": map[string]any{}}, "dedupe: needs header or expr"},
		{"dedupe both", map[string]any{"host": "127.0.0.1", "port": 5000, "dedupe": map[string]any{"header": "X", "expr": "payload.id"}}, "dedupe.expr: cannot be combined with header"},
		{"dedupe unknown key", map[string]any{"host": "127.0.0.1", "port": 5000, "dedupe": map[string]any{"header": "X", "ttl": "1h"}}, `dedupe.ttl: unknown key "ttl" (known: expr, header, window)`},
		{"dedupe bad window", map[string]any{"host": "127.0.0.1", "port": 5000, "dedupe": map[string]any{"header": "X", "window": "forever"}}, `dedupe.window: duration "forever" is not like "30s" or "5m"`},
		{"dedupe expr typo", map[string]any{"host": "127.0.0.1", "port": 5000, "dedupe": map[string]any{"expr": "paylod.id"}}, `dedupe.expr: expression "paylod.id": unknown name paylod (1:1)
 | paylod.id
 | ^`},
		{"order without timestamp", map[string]any{"host": "127.0.0.1", "port": 5000, "order": map[string]any{"key": "payload.id"}}, "order.timestamp: timestamp is required with order"},
		{"order key not string", map[string]any{"host": "127.0.0.1", "port": 5000, "order": map[string]any{"key": 5, "timestamp": "payload.t"}}, "order.key: must be an expression string"},
		{"no authentication on every interface", map[string]any{"port": 5000}, `port: listening on "0.0.0.0:5000", not a loopback address, without authentication: anyone who can reach it could send events; set token, basic, header_token, hmac or tls.client_ca, or insecure: true to accept that`},
		{"no authentication on a named host", map[string]any{"host": "hooks.example.com", "port": 5000}, `host: listening on "hooks.example.com:5000", not a loopback address, without authentication: anyone who can reach it could send events; set token, basic, header_token, hmac or tls.client_ca, or insecure: true to accept that`},
		{"no authentication on an address", map[string]any{"address": "10.1.2.3:5000"}, `address: listening on "10.1.2.3:5000", not a loopback address, without authentication: anyone who can reach it could send events; set token, basic, header_token, hmac or tls.client_ca, or insecure: true to accept that`},
		{"no authentication on all interfaces, empty host", map[string]any{"address": ":5000"}, `address: listening on ":5000", not a loopback address, without authentication: anyone who can reach it could send events; set token, basic, header_token, hmac or tls.client_ca, or insecure: true to accept that`},
		{"insecure not a boolean", map[string]any{"port": 5000, "insecure": "yes"}, "insecure: must be true or false"},
		{"insecure: true", map[string]any{"port": 5000, "insecure": true}, ""},
		{"loopback without authentication", map[string]any{"address": "127.0.0.1:5000"}, ""},
		{"localhost without authentication", map[string]any{"host": "localhost", "port": 5000}, ""},
		{"ipv6 loopback without authentication", map[string]any{"address": "[::1]:5000"}, ""},
		{"token", map[string]any{"port": 5000, "token": "${env:RULEBOOK_TEST_NOT_SET}"}, ""},
		{"basic", map[string]any{"port": 5000, "basic": map[string]any{"username": "u", "password": "p"}}, ""},
		{"header token", map[string]any{"port": 5000, "header_token": map[string]any{"header": "X-Gitlab-Token", "token": "t"}}, ""},
		{"mtls", map[string]any{"port": 5000, "tls": map[string]any{"cert": "c.pem", "key": "k.pem", "client_ca": "ca.pem"}}, ""},
		{"tls without client certificates", map[string]any{"port": 5000, "tls": map[string]any{"cert": "c.pem", "key": "k.pem"}}, `port: listening on "0.0.0.0:5000", not a loopback address, without authentication: anyone who can reach it could send events; set token, basic, header_token, hmac or tls.client_ca, or insecure: true to accept that`},
		{"allow_ips is no authentication", map[string]any{"port": 5000, "allow_ips": []any{"10.0.0.0/8"}}, `port: listening on "0.0.0.0:5000", not a loopback address, without authentication: anyone who can reach it could send events; set token, basic, header_token, hmac or tls.client_ca, or insecure: true to accept that`},
		{"http error passes through", map[string]any{"host": "127.0.0.1", "port": 5000, "hmac": map[string]any{"preset": "gitea", "secret": "x"}}, `hmac.preset: preset "gitea" is not one of github, shopify, slack, stripe, standard`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.args)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *engine.ArgError
			if !errors.As(err, &ae) || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSchemaListsEveryKey(t *testing.T) {
	props := Schema()["properties"].(map[string]any)
	for _, k := range append(append([]string{}, httpingest.SettingsKeys...), ownKeys...) {
		if _, ok := props[k]; !ok {
			t.Errorf("schema lacks %q", k)
		}
	}
	if _, err := json.Marshal(Schema()); err != nil {
		t.Fatal(err)
	}
}

func TestToTime(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want time.Time
	}{
		{"2026-11-29T01:00:00Z", t0},
		{"2026-11-29T02:00:00+01:00", t0},
		{1795914000.0, t0},
		{1795914000000.0, t0},
		{"1795914000", t0},
		{t0, t0},
	} {
		got, err := ToTime(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%v: %v %v", tc.in, got, err)
		}
	}
	if _, err := ToTime(true); err == nil {
		t.Error("a boolean became a time")
	}
}

// FuzzRequest drives the whole source handler with arbitrary bodies,
// content types, dedupe headers and query strings: it must answer one of
// the documented statuses, store exactly one event for a 200 and nothing
// otherwise, and every stored event must encode as JSON (the journal's
// format).
func FuzzRequest(f *testing.F) {
	f.Add("application/json", []byte(`{"id":"a","at":"2026-11-29T01:00:00Z","obj":"x"}`), "d1", "a=1&a=2")
	f.Add("application/xml", []byte(`<a x="1"><b>t</b><b/></a>`), "", "")
	f.Add("application/x-www-form-urlencoded", []byte("payload=%7B%7D&x=1"), "k", "q=%zz")
	f.Add("text/plain", []byte("\xff\xfe"), "", "")
	f.Add("image/png", []byte("x"), "", "")
	src, err := New(httpingest.NewHub(httpingest.HubConfig{Log: zerolog.Nop()}), engine.SourceConfig{
		Name: "fuzz", Type: Type, Log: zerolog.Nop(), Clock: engine.NewFakeClock(t0),
		Args: map[string]any{"host": "127.0.0.1", "port": 0, "max_body_bytes": 4096,
			"dedupe": map[string]any{"expr": `headers["x-id"] ?? payload?.id`},
			"order":  map[string]any{"key": "payload?.obj", "timestamp": "payload?.at"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte, id, query string) {
		j := &httpingesttest.Journal{}
		ep := src.Endpoint()
		ep.Out = j
		r, err := http.NewRequest("POST", "http://x/?"+query, bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Content-Type", ct)
		r.Header.Set("X-Id", id)
		w := &recorder{h: http.Header{}}
		ep.ServeHTTP(w, r)
		stored := j.Accepted()
		switch w.code {
		case 200:
			if len(stored) != 1 {
				t.Fatalf("200 with %d stored", len(stored))
			}
			if _, err := json.Marshal(stored[0].Event); err != nil {
				t.Fatalf("event does not encode: %v", err)
			}
		case 400, 413, 415:
			if len(stored) != 0 {
				t.Fatalf("%d but stored", w.code)
			}
		default:
			t.Fatalf("unexpected status %d", w.code)
		}
	})
}

// recorder is a minimal http.ResponseWriter (httptest.ResponseRecorder
// would do, but this keeps the fuzz loop cheap).
type recorder struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.buf.Write(b)
}
func (r *recorder) WriteHeader(c int) { r.code = c }

func TestSpec(t *testing.T) {
	spec := Spec(httpingest.NewHub(httpingest.HubConfig{Log: zerolog.Nop()}))
	if spec.Type != "webhook" || spec.Check == nil || spec.New == nil || spec.Schema == nil || spec.Description == "" {
		t.Fatalf("incomplete spec %+v", spec)
	}
	reg := engine.NewRegistry()
	reg.RegisterSource(spec)
	if _, err := spec.New(engine.SourceConfig{Name: "x", Args: map[string]any{"port": 1, "hmac": map[string]any{"preset": "standard", "secret": "not-whsec!"}}}); err == nil {
		t.Fatal("New accepted an unusable resolved secret")
	}
	if _, err := New(nil, engine.SourceConfig{Args: map[string]any{"port": 1}}); err == nil {
		t.Fatal("New without a hub")
	}
}

// TestCheckBoundsExpressions: the source's own expressions are bounded
// before expr parses them; 1.5 million nested parentheses overflowed the
// parser's stack and killed validate (and the engine, on a reload).
func TestCheckBoundsExpressions(t *testing.T) {
	huge := strings.Repeat("(", 1_500_000) + "payload.id" + strings.Repeat(")", 1_500_000)
	deep := strings.Repeat("(", 201) + "payload.id" + strings.Repeat(")", 201)
	cases := []struct {
		name string
		args map[string]any
		want string
	}{
		{"huge dedupe expr", map[string]any{"host": "127.0.0.1", "port": 5000, "dedupe": map[string]any{"expr": huge}}, "dedupe.expr: expression: too long: 3000010 bytes; the limit is 65536 (64 KiB)"},
		{"deep order key", map[string]any{"host": "127.0.0.1", "port": 5000, "order": map[string]any{"key": deep, "timestamp": "payload.t"}}, "order.key: expression: brackets nest deeper than 200 levels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.args)
			var ae *engine.ArgError
			if !errors.As(err, &ae) || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
