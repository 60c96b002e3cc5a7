package dynatrace

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
	"github.com/rulebook-dev/rulebook/sources/httpingest/httpingesttest"
)

var t0 = time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)

const token = "dt-s3cret-token"

type harness struct {
	url string
	j   *httpingesttest.Journal
}

// start runs a dynatrace source on a loopback port; every Emit fails with
// emitErr when it is not nil.
func start(t *testing.T, args map[string]any, emitErr error) *harness {
	t.Helper()
	h := &harness{j: &httpingesttest.Journal{}}
	h.j.Fail(emitErr)
	srv := httpingesttest.Start(t, Spec, engine.SourceConfig{Name: "dt", Type: Type, Ruleset: "rs", Clock: engine.NewFakeClock(t0), Log: zerolog.Nop()}, args, h.j)
	h.url = srv.URL()
	return h
}

var jsonBody = http.Header{"Content-Type": {"application/json"}}

func (h *harness) post(t *testing.T, body string, headers ...string) httpingesttest.Reply {
	t.Helper()
	return httpingesttest.Send(t, http.MethodPost, h.url, body, jsonBody, headers...)
}

func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var bearer = []string{"Authorization", "Bearer " + token}

func TestProblemEvent(t *testing.T) {
	h := start(t, map[string]any{"token": token}, nil)
	r := h.post(t, fixture(t, "open.json"), bearer...)
	if r.Status != 200 || r.Body["status"] != "accepted" {
		t.Fatalf("answer %d %v", r.Status, r.Body)
	}
	es := h.j.Accepted()
	if len(es) != 1 {
		t.Fatalf("%d events", len(es))
	}
	ev := es[0].Event
	p := ev["problem"].(map[string]any)
	want := map[string]any{
		"PID":             "-4624306584474474451_1732842000000V2",
		"ProblemID":       "P-2611",
		"State":           "OPEN",
		"ProblemTitle":    "CPU saturation",
		"ProblemSeverity": "RESOURCE_CONTENTION",
		"ProblemImpact":   "INFRASTRUCTURE",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("problem.%s = %v, want %v", k, p[k], v)
		}
	}
	if tags, _ := json.Marshal(p["Tags"]); string(tags) != `["env:prod","team:web","[AWS]owner:ops"]` {
		t.Errorf("Tags %s", tags)
	}
	if d, ok := p["ProblemDetailsJSON"].(map[string]any); !ok || d["displayId"] != "P-2611" {
		t.Errorf("ProblemDetailsJSON %v", p["ProblemDetailsJSON"])
	}
	if hs := engine.EventHosts(ev); strings.Join(hs, ",") != "web1.example.com,web2.example.com" {
		t.Errorf("hosts %v", hs)
	}
	if es[0].DedupeKey != "problem/-4624306584474474451_1732842000000V2/OPEN" || es[0].DedupeWindow != DefaultDedupeWindow {
		t.Errorf("dedupe %q %s", es[0].DedupeKey, es[0].DedupeWindow)
	}
	meta := engine.Meta(ev)
	if _, leaked := meta[engine.MetaHeaders].(map[string]any)["Authorization"]; leaked {
		t.Error("the token reached the event")
	}
	if src := meta[engine.MetaSource].(map[string]any); src["type"] != Type || src["name"] != "dt" {
		t.Errorf("meta.source %v", src)
	}
}

func TestOpenResolvedDuplicate(t *testing.T) {
	h := start(t, map[string]any{"header_token": map[string]any{"header": "X-Dynatrace-Token", "tokens": []any{token}}, "dedupe_window": "1h"}, nil)
	hdr := []string{"X-Dynatrace-Token", token}
	steps := []struct {
		file, status string
		accepted     int
	}{
		{"open.json", "accepted", 1},
		{"resolved.json", "accepted", 2},
		{"resolved.json", "duplicate", 2},
		{"open.json", "duplicate", 2},
	}
	for i, s := range steps {
		r := h.post(t, fixture(t, s.file), hdr...)
		if r.Status != 200 || r.Body["status"] != s.status {
			t.Errorf("step %d %s: %d %v, want %s", i, s.file, r.Status, r.Body, s.status)
		}
		if n := len(h.j.Accepted()); n != s.accepted {
			t.Errorf("step %d: %d accepted, want %d", i, n, s.accepted)
		}
	}
	if es := h.j.Accepted(); es[1].Event["problem"].(map[string]any)["State"] != "RESOLVED" || es[1].DedupeWindow != time.Hour {
		t.Errorf("second event %v", es[1])
	}
}

func TestDefaultTemplate(t *testing.T) {
	// Dynatrace's own "Send test notification" with its default payload:
	// ProblemDetailsJSON quoted, "Problem URL" with a space.
	p, err := Decode(mustJSON(t, fixture(t, "default-template.json")))
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != "99999" || p.State != "OPEN" || strings.Join(p.Hosts, ",") != "MyHost1" {
		t.Errorf("problem %+v", p)
	}
	if p.Fields["ProblemURL"] != "https://example.com" || p.Fields["Problem URL"] != "https://example.com" {
		t.Errorf("url fields %v %v", p.Fields["ProblemURL"], p.Fields["Problem URL"])
	}
	if d, ok := p.Fields["ProblemDetailsJSON"].(map[string]any); !ok || d["ID"] != float64(99999) {
		t.Errorf("ProblemDetailsJSON %v", p.Fields["ProblemDetailsJSON"])
	}
}

func mustJSON(t testing.TB, s string) any {
	t.Helper()
	v, err := httpingest.ParseBody("application/json", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		pid   string
		state string
		hosts string
		tags  string
		err   string
	}{
		{"numeric PID, lower-case state", `{"PID":12345,"State":"resolved"}`, "12345", "RESOLVED", "", `[]`, ""},
		{"quoted entities", `{"PID":"1","State":"OPEN","ImpactedEntities":"[{\"type\":\"HOST\",\"name\":\"db1\"}]"}`, "1", "OPEN", "db1", `[]`, ""},
		{"host entity type any case, dup once", `{"PID":"1","State":"OPEN","ImpactedEntities":[{"type":"host","name":"a"},{"type":"HOST","name":"a"},{"type":"PROCESS_GROUP","name":"b"},{"type":"HOST","name":" "}]}`, "1", "OPEN", "a", `[]`, ""},
		{"tags trimmed, empty dropped", `{"PID":"1","State":"OPEN","Tags":" a ,, b:c ,"}`, "1", "OPEN", "", `["a","b:c"]`, ""},
		{"tags as list", `{"PID":"1","State":"OPEN","Tags":["x"," y "]}`, "1", "OPEN", "", `["x","y"]`, ""},
		{"unfilled tags placeholder", `{"PID":"1","State":"OPEN","Tags":"{Tags}"}`, "1", "OPEN", "", `[]`, ""},
		{"array body", `[1]`, "", "", "", "", "body is a list, not a problem notification object"},
		{"no PID", `{"State":"OPEN"}`, "", "", "", "", `field "PID": missing`},
		{"unfilled PID", `{"PID":"{PID}","State":"OPEN"}`, "", "", "", "", `field "PID": missing`},
		{"PID object", `{"PID":{},"State":"OPEN"}`, "", "", "", "", `field "PID": must be a string or a number, not an object`},
		{"no State", `{"PID":"1"}`, "", "", "", "", `field "State": must be OPEN or RESOLVED, not missing`},
		{"State number", `{"PID":"1","State":1}`, "", "", "", "", `field "State": must be OPEN or RESOLVED, not a number`},
		{"title number", `{"PID":"1","State":"OPEN","ProblemTitle":5}`, "", "", "", "", `field "ProblemTitle": must be a string, not a number`},
		{"tags number", `{"PID":"1","State":"OPEN","Tags":5}`, "", "", "", "", `field "Tags": must be a comma-separated string, not a number`},
		{"tag item number", `{"PID":"1","State":"OPEN","Tags":["a",1]}`, "", "", "", "", `field "Tags": item 1 is a number, not a string`},
		{"entities object", `{"PID":"1","State":"OPEN","ImpactedEntities":{}}`, "", "", "", "", `field "ImpactedEntities": is an object, not a list of entities`},
		{"entities bad string", `{"PID":"1","State":"OPEN","ImpactedEntities":"web1"}`, "", "", "", "", `field "ImpactedEntities": is a string that is not a JSON list`},
		{"entity name number", `{"PID":"1","State":"OPEN","ImpactedEntities":[{"type":"HOST","name":3}]}`, "", "", "", "", `field "ImpactedEntities": item 0: name is a number, not a string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Decode(mustJSON(t, tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tags, _ := json.Marshal(p.Fields["Tags"])
			if p.PID != tc.pid || p.State != tc.state || strings.Join(p.Hosts, ",") != tc.hosts || string(tags) != tc.tags {
				t.Errorf("got pid %q state %q hosts %v tags %s", p.PID, p.State, p.Hosts, tags)
			}
			if p.Fields["PID"] != tc.pid || p.Fields["State"] != tc.state {
				t.Errorf("fields not normalized: %v %v", p.Fields["PID"], p.Fields["State"])
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
		{"no token is 401", map[string]any{"token": token}, nil, "", nil, 401, "", "unauthorized"},
		{"wrong token is 401", map[string]any{"token": token}, nil, "", []string{"Authorization", "Bearer x"}, 401, "", "unauthorized"},
		{"header token", map[string]any{"header_token": map[string]any{"header": "X-Token", "tokens": token}}, nil, "", []string{"X-Token", token}, 200, "", ""},
		{"basic", map[string]any{"basic": map[string]any{"username": "dt", "password": "pw"}}, nil, "", []string{"Authorization", "Basic ZHQ6cHc="}, 200, "", ""},
		{"insecure_no_auth accepts anyone", map[string]any{"insecure_no_auth": true}, nil, "", nil, 200, "", ""},
		{"invalid payload is 400 with the reason", map[string]any{"token": token}, nil, `{"State":"OPEN"}`, bearer, 400, "", `field "PID": missing`},
		{"backlog full is 503", map[string]any{"token": token}, &engine.BacklogError{RetryAfter: time.Second}, "", bearer, 503, "1", "backlog full"},
		{"storage failure is 500", map[string]any{"token": token}, errors.New("io"), "", bearer, 500, "", "storing the event failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.args, tc.emitErr)
			body := tc.body
			if body == "" {
				body = fixture(t, "open.json")
			}
			r := h.post(t, body, tc.headers...)
			httpingesttest.WantAnswer(t, r, tc.status, tc.retryAfter, tc.errPart)
			if tc.status >= 400 && tc.status < 500 && h.j.Calls() != 0 {
				t.Error("a rejected request reached Emit")
			}
		})
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		args map[string]any
		want string
	}{
		{"token", map[string]any{"port": 5002, "token": "${env:DT_TOKEN}"}, ""},
		{"header token", map[string]any{"port": 5002, "header_token": map[string]any{"header": "X-Token", "tokens": "${env:DT_TOKEN}"}}, ""},
		{"basic", map[string]any{"port": 5002, "basic": map[string]any{"username": "dt", "password": "${file:/run/dt}"}}, ""},
		{"explicitly open", map[string]any{"port": 5002, "insecure_no_auth": true}, ""},
		{"no credential", map[string]any{"port": 5002}, "token: dynatrace does not sign its requests: set token, header_token or basic"},
		{"insecure false", map[string]any{"port": 5002, "insecure_no_auth": false}, "token: dynatrace does not sign its requests"},
		{"allow_ips is not a credential", map[string]any{"port": 5002, "allow_ips": []any{"10.0.0.0/8"}}, "token: dynatrace does not sign"},
		{"both", map[string]any{"port": 5002, "token": "t", "insecure_no_auth": true}, "insecure_no_auth: cannot be combined"},
		{"insecure text", map[string]any{"port": 5002, "insecure_no_auth": "yes"}, "insecure_no_auth: must be true or false"},
		{"insecure is insecure_no_auth here", map[string]any{"port": 5002, "insecure": true}, "insecure: dynatrace requires credentials: set token, header_token or basic (or insecure_no_auth: true"},
		{"hmac refused", map[string]any{"port": 5002, "hmac": map[string]any{"preset": "github", "secret": "x"}}, "hmac: dynatrace does not sign its requests"},
		{"unknown key", map[string]any{"port": 5002, "token": "t", "tags_as": "list"}, `tags_as: unknown key "tags_as"`},
		{"bad window", map[string]any{"port": 5002, "token": "t", "dedupe_window": "soon"}, "dedupe_window: duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			httpingesttest.WantArgError(t, Check(tc.args), tc.want, "DT_TOKEN")
		})
	}
}

func TestSchema(t *testing.T) {
	props := Schema()["properties"].(map[string]any)
	for _, k := range append(settingsKeys(), ownKeys...) {
		if _, ok := props[k]; !ok {
			t.Errorf("schema lacks %q", k)
		}
	}
	for _, k := range []string{"hmac", "timestamp_tolerance"} {
		if _, ok := props[k]; ok {
			t.Errorf("schema offers %q, which Check refuses", k)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"open.json", "resolved.json", "default-template.json"} {
		f.Add([]byte(fixture(f, name)))
	}
	f.Add([]byte(`{"PID":1,"State":"open","Tags":["a"],"ImpactedEntities":"[{\"type\":\"HOST\",\"name\":\"x\"}]"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		payload, err := httpingest.ParseBody("application/json", body)
		if err != nil {
			return
		}
		p, err := Decode(payload)
		if err != nil {
			return
		}
		if p.PID == "" || p.State == "" || p.DedupeKey() != "problem/"+p.PID+"/"+p.State {
			t.Fatalf("problem %+v", p)
		}
		if _, ok := p.Fields["Tags"].([]any); !ok {
			t.Fatalf("Tags %T", p.Fields["Tags"])
		}
		for _, h := range p.Hosts {
			if strings.TrimSpace(h) == "" {
				t.Fatal("blank host")
			}
		}
		if _, err := json.Marshal(p.Fields); err != nil {
			t.Fatal(err)
		}
	})
}
