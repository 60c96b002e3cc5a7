package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
	"github.com/rulebook-dev/rulebook/sources/httpingest/httpingesttest"
)

var t0 = time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)

type harness struct {
	url string
	j   *httpingesttest.Journal
}

func start(t *testing.T, args map[string]any) *harness {
	t.Helper()
	h := &harness{j: &httpingesttest.Journal{}}
	srv := httpingesttest.Start(t, Spec, engine.SourceConfig{Name: "am", Type: Type, Ruleset: "rs", Clock: engine.NewFakeClock(t0), Log: zerolog.Nop()}, args, h.j)
	h.url = srv.URL()
	return h
}

// fromAlertmanager are the headers Alertmanager sends.
var fromAlertmanager = http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Alertmanager/0.25.0"}}

func (h *harness) post(t *testing.T, body string, headers ...string) httpingesttest.Reply {
	t.Helper()
	return httpingesttest.Send(t, http.MethodPost, h.url, body, fromAlertmanager, headers...)
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOneEventPerAlertInOneEmit(t *testing.T) {
	h := start(t, map[string]any{})
	r := h.post(t, fixture(t, "firing.json"))
	if r.Status != 200 || r.Body["status"] != "accepted" {
		t.Fatalf("answer %d %v", r.Status, r.Body)
	}
	if got := h.j.CallSizes(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("emit calls %v, want one call of 2 entries", got)
	}
	es := h.j.Accepted()
	wantHosts := []string{"10.0.0.5", "2001:db8::7"}
	wantKeys := []string{
		"alert/5e3a4f2b1c0d9e8f/firing/2026-11-29T01:00:00.123Z",
		"alert/0a1b2c3d4e5f6071/firing/2026-11-29T01:00:05Z",
	}
	for i, e := range es {
		ev := e.Event
		alert := ev["alert"].(map[string]any)
		group := ev["group"].(map[string]any)
		if alert["status"] != "firing" || alert["labels"].(map[string]any)["alertname"] != "NodeDown" {
			t.Errorf("event %d alert %v", i, alert)
		}
		if group["receiver"] != "rulebook" || group["groupKey"] != `{}:{alertname="NodeDown"}` || group["orgId"] != float64(7) {
			t.Errorf("event %d group %v (unknown orgId must be kept)", i, group)
		}
		if _, ok := group["alerts"]; ok {
			t.Errorf("event %d group repeats the alerts", i)
		}
		if hs := engine.EventHosts(ev); len(hs) != 1 || hs[0] != wantHosts[i] {
			t.Errorf("event %d hosts %v, want %s", i, hs, wantHosts[i])
		}
		if e.DedupeKey != wantKeys[i] {
			t.Errorf("event %d dedupe key %q, want %q", i, e.DedupeKey, wantKeys[i])
		}
		if e.DedupeWindow != DefaultDedupeWindow {
			t.Errorf("event %d window %s", i, e.DedupeWindow)
		}
		meta := engine.Meta(ev)
		src := meta[engine.MetaSource].(map[string]any)
		if src["name"] != "am" || src["type"] != Type || meta["endpoint"] != "/" {
			t.Errorf("event %d meta %v", i, meta)
		}
		if meta[engine.MetaReceivedAt] != t0.Format(time.RFC3339Nano) {
			t.Errorf("event %d received_at %v", i, meta[engine.MetaReceivedAt])
		}
	}
	if _, ok := es[1].Event["alert"].(map[string]any)["silencedBy"]; !ok {
		t.Error("unknown alert field silencedBy was dropped")
	}
	if len(r.Body["ids"].([]any)) != 2 {
		t.Errorf("answer ids %v", r.Body["ids"])
	}
}

func TestRepeatsAndResolution(t *testing.T) {
	h := start(t, map[string]any{"dedupe_window": "6h"})
	steps := []struct {
		name     string
		body     string
		status   string
		accepted int
	}{
		{"first firing", fixture(t, "firing.json"), "accepted", 2},
		{"repeat_interval repeat", fixture(t, "firing.json"), "duplicate", 2},
		{"one alert resolves", fixture(t, "resolved.json"), "accepted", 3},
		{"resolution repeated", fixture(t, "resolved.json"), "duplicate", 3},
		{"fires again", strings.ReplaceAll(fixture(t, "firing.json"), "2026-11-29T01:00:00.123Z", "2026-11-29T02:00:00Z"), "accepted", 4},
	}
	for _, s := range steps {
		r := h.post(t, s.body)
		if r.Status != 200 || r.Body["status"] != s.status {
			t.Errorf("%s: answer %d %v, want 200 %s", s.name, r.Status, r.Body, s.status)
		}
		if n := len(h.j.Accepted()); n != s.accepted {
			t.Errorf("%s: %d events accepted, want %d", s.name, n, s.accepted)
		}
	}
	es := h.j.Accepted()
	if es[2].Event["alert"].(map[string]any)["status"] != "resolved" || es[2].DedupeWindow != 6*time.Hour {
		t.Errorf("resolved event %v window %s", es[2].Event["alert"], es[2].DedupeWindow)
	}
}

func TestStaleFiringAfterResolution(t *testing.T) {
	// With a short dedupe window the old firing's key is forgotten; the
	// ordering by fingerprint still keeps it from running again.
	n1, err := Decode(mustJSON(t, fixture(t, "firing.json")))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := Decode(mustJSON(t, fixture(t, "resolved.json")))
	if err != nil {
		t.Fatal(err)
	}
	j := &httpingesttest.Journal{}
	emit := func(n *Notification) []engine.Outcome {
		es := Entries(n, EntryOptions{})
		for i := range es {
			es[i].DedupeKey = "" // as if the window had passed
		}
		out, err := j.Emit(context.Background(), engine.SourceRef{}, es)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	emit(n1)
	emit(n2)
	got := emit(n1)
	if got[0] != engine.Stale || got[1] != engine.Accepted {
		t.Fatalf("late firing outcomes %v, want [stale accepted] (the second alert never resolved)", got)
	}
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := httpingest.ParseBody("application/json", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNotificationEvent(t *testing.T) {
	h := start(t, map[string]any{"notification_event": true, "host_label": []any{"host", "instance"}})
	r := h.post(t, fixture(t, "firing.json"))
	if r.Status != 200 {
		t.Fatalf("answer %d %v", r.Status, r.Body)
	}
	if got := h.j.CallSizes(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("emit calls %v, want one call of 3 entries", got)
	}
	es := h.j.Accepted()
	n, ok := es[0].Event["notification"].(map[string]any)
	if !ok {
		t.Fatalf("first event is not the notification: %v", es[0].Event)
	}
	if len(n["alerts"].([]any)) != 2 || n["receiver"] != "rulebook" {
		t.Errorf("notification %v", n)
	}
	if hs := engine.EventHosts(es[0].Event); strings.Join(hs, ",") != "10.0.0.5,2001:db8::7" {
		t.Errorf("notification hosts %v", hs)
	}
	if es[0].DedupeKey == "" || es[0].OrderKey != "" {
		t.Errorf("notification keys %q %q", es[0].DedupeKey, es[0].OrderKey)
	}
	if r := h.post(t, fixture(t, "firing.json")); r.Body["status"] != "duplicate" {
		t.Errorf("repeat answered %v", r.Body)
	}
}

func TestHostLabel(t *testing.T) {
	body := `{"version":"4","status":"firing","alerts":[
		{"status":"firing","labels":{"alertname":"A","instance":"10.1.1.1:9100","host":"web1"},"startsAt":"2026-11-29T01:00:00Z"},
		{"status":"firing","labels":{"alertname":"B","instance":"db1:9100"},"startsAt":"2026-11-29T01:00:00Z"},
		{"status":"firing","labels":{"alertname":"C"},"startsAt":"2026-11-29T01:00:00Z"}]}`
	cases := []struct {
		name  string
		label any
		want  [][]string
	}{
		{"default instance", nil, [][]string{{"10.1.1.1"}, {"db1"}, {}}},
		{"one label", "host", [][]string{{"web1"}, {}, {}}},
		{"first present wins", []any{"host", "instance"}, [][]string{{"web1"}, {"db1"}, {}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := map[string]any{}
			if tc.label != nil {
				args["host_label"] = tc.label
			}
			h := start(t, args)
			if r := h.post(t, body); r.Status != 200 {
				t.Fatalf("answer %d %v", r.Status, r.Body)
			}
			for i, e := range h.j.Accepted() {
				hs := engine.EventHosts(e.Event)
				if strings.Join(hs, ",") != strings.Join(tc.want[i], ",") {
					t.Errorf("alert %d hosts %v, want %v", i, hs, tc.want[i])
				}
			}
		})
	}
}

func TestHostOf(t *testing.T) {
	cases := []struct{ in, want string }{
		{"10.0.0.5:9100", "10.0.0.5"},
		{"10.0.0.5", "10.0.0.5"},
		{"web1.example.com:443", "web1.example.com"},
		{"web1", "web1"},
		{"[2001:db8::1]:9100", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"::1", "::1"},
		{"fe80::1%eth0", "fe80::1%eth0"},
		{"https://shop.example.com/health", "shop.example.com"},
		{"http://[2001:db8::2]:8080/x", "2001:db8::2"},
		{"  db1:5432 ", "db1"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := HostOf(tc.in); got != tc.want {
			t.Errorf("HostOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFingerprintMatchesAlertmanager(t *testing.T) {
	sets := []map[string]string{
		{},
		{"alertname": "NodeDown"},
		{"alertname": "NodeDown", "instance": "10.0.0.5:9100", "job": "node"},
		{"a": "ÿ", "b": ""},
	}
	for _, ls := range sets {
		m := model.LabelSet{}
		for k, v := range ls {
			m[model.LabelName(k)] = model.LabelValue(v)
		}
		if got, want := Fingerprint(ls), m.Fingerprint().String(); got != want {
			t.Errorf("Fingerprint(%v) = %s, want %s", ls, got, want)
		}
	}
	n, err := Decode(mustJSON(t, `{"alerts":[{"status":"firing","labels":{"alertname":"X"},"startsAt":"2026-11-29T01:00:00Z"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := model.LabelSet{"alertname": "X"}.Fingerprint().String()
	if n.Alerts[0].Fingerprint != want {
		t.Errorf("computed fingerprint %s, want %s", n.Alerts[0].Fingerprint, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	ok := `"status":"firing","labels":{"alertname":"X"},"startsAt":"2026-11-29T01:00:00Z"`
	cases := []struct {
		name, body, want string
	}{
		{"array body", `[]`, "body is a list, not an alertmanager notification object"},
		{"text body", `"hi"`, "body is a string"},
		{"version 3", `{"version":"3","alerts":[]}`, `version: "3" is not supported (only "4")`},
		{"numeric version", `{"version":4,"alerts":[]}`, `version: a number is not supported`},
		{"no alerts", `{"version":"4"}`, "alerts: missing"},
		{"alerts object", `{"alerts":{}}`, "alerts: is an object, not a list"},
		{"alert not object", `{"alerts":[1]}`, "alerts[0]: is a number, not an alert object"},
		{"bad status", `{"alerts":[{` + ok + `},{"status":"pending","labels":{},"startsAt":"2026-11-29T01:00:00Z"}]}`, `alerts[1].status: must be "firing" or "resolved", not "pending"`},
		{"no status", `{"alerts":[{"labels":{},"startsAt":"2026-11-29T01:00:00Z"}]}`, `alerts[0].status: must be "firing" or "resolved", not missing`},
		{"no labels", `{"alerts":[{"status":"firing","startsAt":"2026-11-29T01:00:00Z"}]}`, "alerts[0].labels: missing"},
		{"numeric label", `{"alerts":[{"status":"firing","labels":{"code":500},"startsAt":"2026-11-29T01:00:00Z"}]}`, `alerts[0].labels: "code" is a number, not a string`},
		{"bad annotations", `{"alerts":[{` + ok + `,"annotations":[]}]}`, "alerts[0].annotations: is a list, not an object of strings"},
		{"no startsAt", `{"alerts":[{"status":"firing","labels":{}}]}`, "alerts[0].startsAt: must be an RFC 3339 time, not missing"},
		{"bad startsAt", `{"alerts":[{"status":"firing","labels":{},"startsAt":"yesterday"}]}`, `alerts[0].startsAt: "yesterday" is not an RFC 3339 time`},
		{"bad endsAt", `{"alerts":[{` + ok + `,"endsAt":5}]}`, "alerts[0].endsAt: must be an RFC 3339 time, not a number"},
		{"numeric fingerprint", `{"alerts":[{` + ok + `,"fingerprint":12}]}`, "alerts[0].fingerprint: must be a string, not a number"},
		{"bad status type", `{"status":1,"alerts":[]}`, "status: must be a string, not a number"},
		{"bad commonLabels", `{"commonLabels":"x","alerts":[]}`, "commonLabels: is a string, not an object of strings"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(mustJSON(t, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAnswers(t *testing.T) {
	cases := []struct {
		name       string
		args       map[string]any
		emitErr    error
		body       string
		headers    []string
		status     int
		retryAfter string
		errPart    string
	}{
		{"invalid payload is 400 with the reason", nil, nil, `{"alerts":[{"status":"pending"}]}`, nil, 400, "", `alerts[0].status: must be "firing" or "resolved"`},
		{"not json is 400", nil, nil, `{"alerts":`, nil, 400, "", ""},
		{"backlog full is 503 with Retry-After", nil, &engine.BacklogError{RetryAfter: 2500 * time.Millisecond}, "", nil, 503, "3", "backlog full"},
		{"shutting down is 503", nil, engine.ErrClosed, "", nil, 503, "", "shutting down"},
		{"storage failure is 500", nil, errors.New("disk full"), "", nil, 500, "", "storing the event failed"},
		{"missing token is 401", map[string]any{"token": "s3cret"}, nil, "", nil, 401, "", "unauthorized"},
		{"wrong token is 401", map[string]any{"token": "s3cret"}, nil, "", []string{"Authorization", "Bearer nope"}, 401, "", "unauthorized"},
		{"token accepted", map[string]any{"token": "s3cret"}, nil, "", []string{"Authorization", "Bearer s3cret"}, 200, "", ""},
		{"basic accepted", map[string]any{"basic": map[string]any{"username": "am", "password": "pw"}}, nil, "", []string{"Authorization", "Basic YW06cHc="}, 200, "", ""},
		{"json parsed whatever the content type", nil, nil, "", []string{"Content-Type", "text/plain"}, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = map[string]any{}
			}
			h := start(t, args)
			h.j.Fail(tc.emitErr)
			body := tc.body
			if body == "" {
				body = fixture(t, "firing.json")
			}
			r := h.post(t, body, tc.headers...)
			httpingesttest.WantAnswer(t, r, tc.status, tc.retryAfter, tc.errPart)
			if tc.status != 200 && tc.emitErr == nil && len(h.j.CallSizes()) != 0 {
				t.Errorf("a rejected request reached Emit")
			}
			if tc.status == 200 {
				for _, e := range h.j.Accepted() {
					if _, leaked := engine.Meta(e.Event)[engine.MetaHeaders].(map[string]any)["Authorization"]; leaked {
						t.Error("Authorization header reached the event")
					}
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		args map[string]any
		want string // "" means valid
	}{
		{"minimal", map[string]any{"host": "127.0.0.1", "port": 5001}, ""},
		{"all own keys", map[string]any{"host": "127.0.0.1", "port": 5001, "host_label": "host", "notification_event": true, "dedupe_window": "4h", "token": "${env:AM_TOKEN}"}, ""},
		{"unknown key", map[string]any{"host": "127.0.0.1", "port": 5001, "dedupe": map[string]any{"header": "X"}}, `dedupe: unknown key "dedupe"`},
		{"empty host_label", map[string]any{"host": "127.0.0.1", "port": 5001, "host_label": " "}, "host_label: must be a label name"},
		{"empty host_label list", map[string]any{"host": "127.0.0.1", "port": 5001, "host_label": []any{}}, "host_label: must name at least one label"},
		{"bad host_label item", map[string]any{"host": "127.0.0.1", "port": 5001, "host_label": []any{"a", 3}}, "host_label.1: must be a label name"},
		{"host_label number", map[string]any{"host": "127.0.0.1", "port": 5001, "host_label": 3}, "host_label: must be a label name or a list"},
		{"notification_event text", map[string]any{"host": "127.0.0.1", "port": 5001, "notification_event": "yes"}, "notification_event: must be true or false"},
		{"bad window", map[string]any{"host": "127.0.0.1", "port": 5001, "dedupe_window": "a day"}, `dedupe_window: duration "a day"`},
		{"negative window", map[string]any{"host": "127.0.0.1", "port": 5001, "dedupe_window": -5}, "dedupe_window: duration must be positive"},
		{"no port", map[string]any{}, "port"},
		{"every interface without authentication", map[string]any{"port": 5001}, `port: listening on "0.0.0.0:5001", not a loopback address, without authentication`},
		{"every interface with a token", map[string]any{"port": 5001, "token": "${env:AM_TOKEN}"}, ""},
		{"every interface, insecure", map[string]any{"port": 5001, "insecure": true}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			httpingesttest.WantArgError(t, Check(tc.args), tc.want)
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
	if len(props) != len(httpingest.SettingsKeys)+len(ownKeys) {
		t.Errorf("schema has %d properties, want %d", len(props), len(httpingest.SettingsKeys)+len(ownKeys))
	}
	if Spec(httpingest.NewHub(httpingest.HubConfig{})).Schema == nil {
		t.Error("Spec carries no schema")
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"firing.json", "resolved.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"alerts":[{"status":"firing","labels":{},"startsAt":"2026-11-29T01:00:00Z","endsAt":""}]}`))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		payload, err := httpingest.ParseBody("application/json", body)
		if err != nil {
			return
		}
		n, err := Decode(payload)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		es := Entries(n, EntryOptions{NotificationEvent: true, HostLabels: []string{"instance", "host"}})
		if len(es) != len(n.Alerts)+1 {
			t.Fatalf("%d entries for %d alerts", len(es), len(n.Alerts))
		}
		for i, a := range n.Alerts {
			if a.Status != "firing" && a.Status != "resolved" {
				t.Fatalf("alert %d status %q", i, a.Status)
			}
			if a.Fingerprint == "" || es[i+1].DedupeKey != a.DedupeKey() || es[i+1].OrderKey == "" {
				t.Fatalf("alert %d keys %+v", i, es[i+1])
			}
			if _, err := json.Marshal(es[i+1].Event); err != nil {
				t.Fatalf("event %d does not marshal: %v", i, err)
			}
		}
	})
}

func FuzzHostOf(f *testing.F) {
	for _, s := range []string{"10.0.0.5:9100", "[2001:db8::1]:9100", "::1", "https://shop.example.com/x", "web1", "[", "http://[::1", " a:b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := HostOf(in)
		if len(out) > len(in) {
			t.Fatalf("HostOf(%q) = %q grew", in, out)
		}
		if strings.TrimSpace(in) == "" && out != "" {
			t.Fatalf("HostOf(%q) = %q, want empty", in, out)
		}
	})
}
