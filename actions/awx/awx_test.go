package awx

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
	"github.com/rulebook-dev/rulebook/engine"
)

func newTemplate(t *testing.T, c *controller, base string, workflow bool, dataDir string) *Template {
	t.Helper()
	if base == "" {
		base = c.srv.URL
	}
	a, err := New(Controller{URL: base, Token: c.token, PollInterval: time.Millisecond}, workflow, engine.ActionEnv{DataDir: dataDir, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func invocation(args map[string]any) *engine.Invocation {
	ev := engine.Event{"alert": map[string]any{"name": "disk full"}, "meta": map[string]any{"uuid": "e-1"}}
	return &engine.Invocation{ID: "f1-0", FiringID: "f1", Action: JobTemplateType, Ruleset: "ops", Rule: "fix disk",
		Args: args, Event: ev, Events: map[string]engine.Event{"m": ev}, HostPattern: "all"}
}

func detailsJSON(t *testing.T, res engine.Result) string {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJobTemplateLaunchPollAndArtifacts(t *testing.T) {
	c := newController(t, "/api/v2/",
		tmpl{id: 7, name: "Fix disk", org: "Other", final: "successful"},
		tmpl{id: 8, name: "Fix disk", org: "Default", final: "successful", polls: 3, askLimit: true, askVars: true,
			artifacts: map[string]any{"freed_gb": 12.0, "host": "web1"}},
	)
	a := newTemplate(t, c, "", false, "")
	inv := invocation(map[string]any{
		"name": "Fix disk", "organization": "Default",
		"job_args":  map[string]any{"extra_vars": map[string]any{"threshold": 90}, "limit": []any{"web1", "web2"}, "job_tags": "cleanup"},
		"set_facts": true, "post_events": true, "ruleset": "capacity",
	})
	res := a.Run(context.Background(), inv)
	if res.Status != engine.Succeeded {
		t.Fatalf("result %+v", res)
	}
	launches, requests, _ := c.snapshot()
	if len(launches) != 1 {
		t.Fatalf("%d launches", len(launches))
	}
	l := launches[0]
	if l.path != "/api/v2/job_templates/8/launch/" || l.contentType != "application/json" {
		t.Fatalf("launch %s (%s)", l.path, l.contentType)
	}
	if l.body["limit"] != "web1,web2" || l.body["job_tags"] != "cleanup" {
		t.Fatalf("launch body %v", l.body)
	}
	ev, _ := l.body["extra_vars"].(map[string]any)
	eda, _ := ev["ansible_eda"].(map[string]any)
	if ev["threshold"] != 90.0 || eda["ruleset"] != "ops" || eda["rule"] != "fix disk" {
		t.Fatalf("extra_vars %v", ev)
	}
	if e, _ := eda["event"].(map[string]any); e["alert"] == nil || eda["events"] != nil {
		t.Fatalf("ansible_eda for one matched event: %v", eda)
	}
	if !strings.HasPrefix(requests[0], "GET /api/v2/job_templates/?") || !strings.Contains(requests[0], "name=Fix+disk") ||
		!strings.Contains(requests[0], "organization__name=Default") {
		t.Fatalf("lookup %q", requests[0])
	}
	// lookup, launch, then polls until successful (pending, running, running, successful)
	if polls := len(requests) - 2; polls != 4 {
		t.Fatalf("%d polls, want 4: %v", polls, requests)
	}
	if res.Details["job_id"] != 101 || res.Details["url"] != c.srv.URL+"/#/jobs/playbook/101/details" || res.Details["template_id"] != 8 {
		t.Fatalf("details %v", res.Details)
	}
	if res.Details["status"] != "successful" || !strings.Contains(res.Output, "job 101 successful") {
		t.Fatalf("status %v, output %q", res.Details["status"], res.Output)
	}
	want := map[string]any{"freed_gb": 12.0, "host": "web1"}
	if len(res.Facts) != 1 || len(res.Events) != 1 || res.Facts[0]["freed_gb"] != want["freed_gb"] || res.Events[0]["host"] != "web1" {
		t.Fatalf("facts %v events %v", res.Facts, res.Events)
	}
	if res.FeedbackRuleset != "capacity" {
		t.Fatalf("feedback ruleset %q", res.FeedbackRuleset)
	}
	if strings.Contains(detailsJSON(t, res), c.token) {
		t.Fatal("the token is in the result")
	}
}

func TestAnsibleEDAVars(t *testing.T) {
	c := newController(t, "/api/v2/", tmpl{id: 1, name: "T", org: "O", final: "successful", askVars: true, askLimit: true})
	a := newTemplate(t, c, "", false, "")
	e1 := engine.Event{"i": 1.0, "meta": map[string]any{"hosts": []any{"db1"}}}
	e2 := engine.Event{"i": 2.0, "meta": map[string]any{"hosts": []any{"db2"}}}
	for _, tc := range []struct {
		name  string
		inv   *engine.Invocation
		check func(eda map[string]any, body map[string]any) string
	}{
		{"several matched events go in events", &engine.Invocation{ID: "a", Ruleset: "rs", Rule: "r", Args: map[string]any{"name": "T", "organization": "O"},
			Event: e2, Events: map[string]engine.Event{"m_0": e1, "m_1": e2}, Hosts: []string{"db1", "db2"}},
			func(eda, body map[string]any) string {
				evs, _ := eda["events"].(map[string]any)
				if len(evs) != 2 || evs["m_0"] == nil || eda["event"] != nil {
					return "events"
				}
				if body["limit"] != "db1,db2" {
					return "limit from meta.hosts"
				}
				return ""
			}},
		{"include_events false sends none", &engine.Invocation{ID: "b", Ruleset: "rs", Rule: "r", Args: map[string]any{"name": "T", "organization": "O", "include_events": false},
			Event: e1, Events: map[string]engine.Event{"m": e1}, HostPattern: "all"},
			func(eda, body map[string]any) string {
				if eda["event"] != nil || eda["events"] != nil || eda["rule"] != "r" {
					return "ansible_eda"
				}
				if body["limit"] != "all" {
					return "limit from the ruleset's hosts"
				}
				return ""
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := a.Run(context.Background(), tc.inv); res.Status != engine.Succeeded {
				t.Fatalf("result %+v", res)
			}
			launches, _, _ := c.snapshot()
			body := launches[len(launches)-1].body
			ev, _ := body["extra_vars"].(map[string]any)
			eda, _ := ev["ansible_eda"].(map[string]any)
			if what := tc.check(eda, body); what != "" {
				t.Fatalf("%s: %v", what, body)
			}
		})
	}
	// A host pattern in an event's meta.hosts is refused, never launched.
	before, _, _ := c.snapshot()
	bad := &engine.Invocation{ID: "c", Ruleset: "rs", Rule: "r", Args: map[string]any{"name": "T", "organization": "O"},
		Event: e1, Hosts: []string{"all"}}
	if res := a.Run(context.Background(), bad); res.Status != engine.Failed || !strings.Contains(res.Error, `"all" is not a host name`) {
		t.Fatalf("result %+v", res)
	}
	if after, _, _ := c.snapshot(); len(after) != len(before) {
		t.Fatal("launched with a pattern from an event")
	}
}

func TestJobOutcomes(t *testing.T) {
	for _, tc := range []struct {
		final  string
		status engine.Status
	}{
		{"failed", engine.Retryable}, // EDA relaunches a failed job while retries remain
		{"error", engine.Failed},
		{"canceled", engine.Failed},
	} {
		t.Run(tc.final, func(t *testing.T) {
			c := newController(t, "/api/v2/", tmpl{id: 3, name: "T", org: "O", final: tc.final, polls: 1})
			res := newTemplate(t, c, "", false, "").Run(context.Background(), invocation(map[string]any{"name": "T", "organization": "O", "set_facts": true}))
			if res.Status != tc.status || !strings.Contains(res.Error, "job 101") || res.Details["job_id"] != 101 {
				t.Fatalf("result %+v", res)
			}
			if res.Facts != nil {
				t.Fatal("facts fed back from a job that did not succeed")
			}
		})
	}
}

func TestControllerErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(c *controller)
		token   string
		args    map[string]any
		status  engine.Status
		has     string
		launchs int
	}{
		{"bad token", nil, "wrong", nil, engine.Failed, "401: Authentication credentials were not provided.", 0},
		{"template missing", nil, "", map[string]any{"name": "Nope", "organization": "O"}, engine.Failed, `job template "Nope" in organization "O" does not exist`, 0},
		{"wrong organization", nil, "", map[string]any{"name": "T", "organization": "Elsewhere"}, engine.Failed, "does not exist", 0},
		{"lookup 500", func(c *controller) { c.fail("GET /api/v2/job_templates/", 500) }, "", nil, engine.Retryable, "500", 0},
		{"launch 500", func(c *controller) { c.fail("POST /api/v2/job_templates/", 500) }, "", nil, engine.Retryable, "launch job template \"T\": controller answered 500", 0},
		{"launch 400", func(c *controller) { c.fail("POST /api/v2/job_templates/", 400) }, "", nil, engine.Failed, "400: injected 400", 0},
		{"launch 404", func(c *controller) { c.fail("POST /api/v2/job_templates/", 404) }, "", nil, engine.Failed, "404", 0},
		{"poll 500 is polled again, not relaunched", func(c *controller) { c.fail("GET /api/v2/jobs/", 500, 502) }, "", nil, engine.Succeeded, "", 1},
		{"job gone", func(c *controller) { c.fail("GET /api/v2/jobs/", 404) }, "", nil, engine.Failed, "job 101: controller answered 404", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newController(t, "/api/v2/", tmpl{id: 3, name: "T", org: "O", final: "successful", polls: 1})
			if tc.setup != nil {
				tc.setup(c)
			}
			a := newTemplate(t, c, "", false, "")
			if tc.token != "" {
				a.token = tc.token
			}
			args := tc.args
			if args == nil {
				args = map[string]any{"name": "T", "organization": "O"}
			}
			res := a.Run(context.Background(), invocation(args))
			if res.Status != tc.status || !strings.Contains(res.Error, tc.has) {
				t.Fatalf("result %s %q, want %s with %q", res.Status, res.Error, tc.status, tc.has)
			}
			if launches, _, _ := c.snapshot(); len(launches) != tc.launchs {
				t.Fatalf("%d launches, want %d", len(launches), tc.launchs)
			}
			if strings.Contains(detailsJSON(t, res), c.token) {
				t.Fatal("the token is in the result")
			}
		})
	}
}

func TestLookupFollowsPages(t *testing.T) {
	var ts []tmpl
	for i := 0; i < 5; i++ {
		ts = append(ts, tmpl{id: 10 + i, name: "T", org: "Org" + string(rune('A'+i)), final: "successful"})
	}
	c := newController(t, "/api/v2/", ts...)
	c.pageSize = 1
	// Only the organization filter on the server side is ignored here: the
	// action must still pick the template of the right organization,
	// whatever page it is on.
	a := newTemplate(t, c, "", false, "")
	found, err := a.find(context.Background(), "T", "OrgD")
	if err != nil || found == nil || found.ID != 13 {
		t.Fatalf("found %+v, %v", found, err)
	}
}

func TestWorkflowTemplate(t *testing.T) {
	c := newController(t, "/api/v2/",
		tmpl{id: 5, name: "Remediate", org: "O", workflow: true, final: "successful", polls: 2},
		tmpl{id: 6, name: "Remediate", org: "O", final: "successful"}, // a job template of the same name
	)
	a := newTemplate(t, c, "", true, "")
	res := a.Run(context.Background(), invocation(map[string]any{"name": "Remediate", "organization": "O",
		"job_args": map[string]any{"extra_vars": map[string]any{"x": 1}, "limit": "web1"}}))
	if res.Status != engine.Succeeded || res.Details["url"] != c.srv.URL+"/#/jobs/workflow/101/details" {
		t.Fatalf("result %+v", res)
	}
	launches, requests, _ := c.snapshot()
	if len(launches) != 1 || launches[0].path != "/api/v2/workflow_job_templates/5/launch/" {
		t.Fatalf("launches %+v", launches)
	}
	// As EDA: a workflow that does not prompt for variables and limit is
	// launched without them.
	if _, ok := launches[0].body["extra_vars"]; ok {
		t.Fatalf("extra_vars sent to a workflow that does not prompt for them: %v", launches[0].body)
	}
	if _, ok := launches[0].body["limit"]; ok {
		t.Fatalf("limit sent to a workflow that does not prompt for it: %v", launches[0].body)
	}
	if last := requests[len(requests)-1]; !strings.HasPrefix(last, "GET /api/v2/workflow_jobs/101/") {
		t.Fatalf("polled %q", last)
	}
}

func TestGatewayPath(t *testing.T) {
	c := newController(t, "/api/controller/v2/", tmpl{id: 3, name: "T", org: "O", final: "successful"})
	a := newTemplate(t, c, c.srv.URL+"/api/controller/", false, "")
	res := a.Run(context.Background(), invocation(map[string]any{"name": "T", "organization": "O"}))
	if res.Status != engine.Succeeded {
		t.Fatalf("result %+v", res)
	}
	if _, requests, _ := c.snapshot(); !strings.HasPrefix(requests[0], "GET /api/controller/v2/job_templates/") {
		t.Fatalf("lookup %q", requests[0])
	}
	if res.Details["url"] != c.srv.URL+"/#/jobs/playbook/101/details" {
		t.Fatalf("url %v", res.Details["url"])
	}
}

// After a shutdown (or a crash) during the wait, the next attempt follows
// the job already launched instead of launching a second one.
func TestResumeAfterShutdown(t *testing.T) {
	c := newController(t, "/api/v2/", tmpl{id: 3, name: "T", org: "O", final: "successful", polls: 1 << 30})
	dir := t.TempDir()
	a := newTemplate(t, c, "", false, dir)
	a.poll = time.Hour
	inv := invocation(map[string]any{"name": "T", "organization": "O"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan engine.Result, 1)
	go func() { done <- a.Run(ctx, inv) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, requests, _ := c.snapshot(); len(requests) >= 3 {
			break // lookup, launch, first poll
		}
		if time.Now().After(deadline) {
			t.Fatal("no poll")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	res := <-done
	if res.Status != engine.Retryable {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "awx", "run_job_template-f1-0.json")); err != nil {
		t.Fatalf("the launched job is not kept: %v", err)
	}
	// The job finishes on the controller; the next attempt follows it.
	c.mu.Lock()
	c.jobs[101].tmpl.polls = 0
	c.templates[0].polls = 0
	c.mu.Unlock()
	a.poll = time.Millisecond
	res = a.Run(context.Background(), inv)
	if res.Status != engine.Succeeded || res.Details["job_id"] != 101 || res.Details["resumed"] != true {
		t.Fatalf("result %+v", res)
	}
	if launches, _, _ := c.snapshot(); len(launches) != 1 {
		t.Fatalf("%d launches; the restart launched again", len(launches))
	}
	if _, err := os.Stat(filepath.Join(dir, "awx", "run_job_template-f1-0.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the finished job is still kept: %v", err)
	}
	// A new attempt after a finished one (a failed job retried) launches.
	if res := a.Run(context.Background(), inv); res.Status != engine.Succeeded {
		t.Fatalf("result %+v", res)
	}
	if launches, _, _ := c.snapshot(); len(launches) != 2 {
		t.Fatalf("%d launches, want 2", len(launches))
	}
}

// An attempt that runs out of time asks the controller to cancel its job.
func TestTimeoutCancelsTheJob(t *testing.T) {
	c := newController(t, "/api/v2/", tmpl{id: 3, name: "T", org: "O", final: "successful", polls: 1 << 30})
	a := newTemplate(t, c, "", false, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := a.Run(ctx, invocation(map[string]any{"name": "T", "organization": "O"}))
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "did not finish in time") {
		t.Fatalf("result %+v", res)
	}
	if _, _, cancels := c.snapshot(); len(cancels) != 1 || cancels[0] != 101 {
		t.Fatalf("cancels %v", cancels)
	}
}

func TestNewNeedsAController(t *testing.T) {
	for _, tc := range []struct {
		c   Controller
		has string
	}{
		{Controller{}, "--controller-url"},
		{Controller{URL: "awx.example.com", Token: "x"}, "want http(s)://HOST"},
		{Controller{URL: "https://awx.example.com"}, "--controller-token"},
		{Controller{URL: "https://awx.example.com", Token: "x", SSLVerify: "/no/such/ca.pem"}, "want yes, no or a CA file"},
	} {
		_, err := New(tc.c, false, engine.ActionEnv{})
		if err == nil || !strings.Contains(err.Error(), tc.has) {
			t.Errorf("New(%+v) = %v, want %q", tc.c, err, tc.has)
		}
		if err != nil && tc.c.Token != "" && strings.Contains(err.Error(), tc.c.Token+"\"") {
			t.Errorf("token in error %v", err)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		args      string
		path, has string
	}{
		{`{"name":"T","organization":"O","job_args":{"extra_vars":{"a":1},"limit":["h1"],"inventory":3},"set_facts":true,"post_events":"{{ vars.p }}","ruleset":"rs","include_events":false}`, "", ""},
		{`{"name":"{{ event.t }}","organization":"O","job_args":"{{ vars.args }}"}`, "", ""},
		{`{"organization":"O"}`, "name", "is required"},
		{`{"name":"T"}`, "organization", "is required"},
		{`{"name":"","organization":"O"}`, "name", "must not be empty"},
		{`{"name":"T","organization":"O","retry":true}`, "retry", "retries: 1"},
		{`{"name":"T","organization":"O","job_args":{"extra_vars":{"ansible_eda":{}}}}`, "job_args.extra_vars.ansible_eda", "set by rulebook"},
		{`{"name":"T","organization":"O","job_args":{"extra_vars":[1]}}`, "job_args.extra_vars", "must be a map"},
		{`{"name":"T","organization":"O","job_args":{"limit":[]}}`, "job_args.limit", "must not be empty"},
		{`{"name":"T","organization":"O","job_args":[]}`, "job_args", "must be a map"},
		{`{"name":"T","organization":"O","set_facts":"maybe"}`, "set_facts", "true or false"},
		{`{"name":"T","organization":"O","typo":1}`, "typo", "unknown key"},
	} {
		var args map[string]any
		if err := json.Unmarshal([]byte(tc.args), &args); err != nil {
			t.Fatal(err)
		}
		checktest.ArgError(t, Check(args), tc.path, tc.has)
	}
}

func TestSchemaAgreesWithCheck(t *testing.T) {
	checktest.SchemaAgrees(t, Schema(JobTemplateType, "d"), Check,
		`{"name":"T","organization":"O","job_args":{"extra_vars":{"a":1},"limit":["h1"]},"set_facts":true,"ruleset":"rs"}`,
		`{"name":"T","organization":"O","job_args":{"extra_vars":{"ansible_eda":1}}}`,
		`{"name":"T"}`,
		`{"name":"T","organization":"O","include_events":"yes please"}`,
	)
}

// Without a token, EDA's username and password authenticate (basic).
func TestBasicAuth(t *testing.T) {
	c := newController(t, "/api/v2/", tmpl{id: 3, name: "T", org: "O", final: "successful"})
	a, err := New(Controller{URL: c.srv.URL, Username: "eda", Password: c.token + "-pw", PollInterval: time.Millisecond}, false, engine.ActionEnv{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	res := a.Run(context.Background(), invocation(map[string]any{"name": "T", "organization": "O"}))
	if res.Status != engine.Succeeded {
		t.Fatalf("result %+v", res)
	}
	if strings.Contains(detailsJSON(t, res), c.token+"-pw") {
		t.Fatal("the password is in the result")
	}
	a.password = "wrong"
	if res := a.Run(context.Background(), invocation(map[string]any{"name": "T", "organization": "O"})); res.Status != engine.Failed || !strings.Contains(res.Error, "401") {
		t.Fatalf("wrong password: %+v", res)
	}
}
