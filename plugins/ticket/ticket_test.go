package ticket

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

// system is one ticket system under test, reached through its fake.
type system struct {
	name string
	fake *fake
	// args are the system's base arguments (system, url, credentials...).
	args map[string]any
	// tickets counts tickets; comments(i) counts comments on the i-th;
	// closed(i) says whether it is resolved; marker(i) is its correlation
	// marker (correlation_id or label).
	tickets  func() int
	comments func(i int) int
	closed   func(i int) bool
	marker   func(i int) string
}

func systems(t *testing.T) []func(t *testing.T) *system {
	return []func(t *testing.T) *system{
		func(t *testing.T) *system {
			f := newFakeServiceNow(t, basic("admin", "pw"))
			return &system{
				name: "servicenow basic", fake: &f.fake,
				args:     map[string]any{"system": "servicenow", "url": f.URL(), "username": "admin", "password": "pw"},
				tickets:  func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.incidents) },
				comments: func(i int) int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.incidents[i].Journal) },
				closed:   func(i int) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.incidents[i].State == "6" },
				marker:   func(i int) string { f.mu.Lock(); defer f.mu.Unlock(); return f.incidents[i].CorrelationID },
			}
		},
		func(t *testing.T) *system {
			f := newFakeServiceNow(t, "Bearer sn-oauth")
			return &system{
				name: "servicenow bearer", fake: &f.fake,
				args:     map[string]any{"system": "servicenow", "url": f.URL(), "token": "sn-oauth", "comment_field": "comments"},
				tickets:  func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.incidents) },
				comments: func(i int) int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.incidents[i].Journal) },
				closed:   func(i int) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.incidents[i].State == "6" },
				marker:   func(i int) string { f.mu.Lock(); defer f.mu.Unlock(); return f.incidents[i].CorrelationID },
			}
		},
		jiraSystem(2, "jira v2", basic("ops@example.com", "api-token"), map[string]any{"username": "ops@example.com", "password": "api-token", "api_version": 2}),
		jiraSystem(3, "jira v3", "Bearer jira-pat", map[string]any{"token": "jira-pat"}),
		func(t *testing.T) *system {
			f := newFakeGitHub(t, "ghp_test")
			return &system{
				name: "github", fake: &f.fake,
				args:     map[string]any{"system": "github", "url": f.URL(), "token": "ghp_test", "repo": "acme/ops"},
				tickets:  func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.issues) },
				comments: func(i int) int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.issues[i].Comments) },
				closed:   func(i int) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.issues[i].State == "closed" },
				marker:   func(i int) string { f.mu.Lock(); defer f.mu.Unlock(); return f.issues[i].Labels[0] },
			}
		},
	}
}

func jiraSystem(version int, name, auth string, creds map[string]any) func(t *testing.T) *system {
	return func(t *testing.T) *system {
		f := newFakeJira(t, version, auth)
		args := map[string]any{"system": "jira", "url": f.URL(), "project": "OPS"}
		for k, v := range creds {
			args[k] = v
		}
		return &system{
			name: name, fake: &f.fake, args: args,
			tickets:  func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.issues) },
			comments: func(i int) int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.issues[i].Comments) },
			closed:   func(i int) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.issues[i].Status == "Done" },
			marker:   func(i int) string { f.mu.Lock(); defer f.mu.Unlock(); return f.issues[i].Labels[0] },
		}
	}
}

func with(base map[string]any, kv ...any) map[string]any {
	m := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func invoke(t *testing.T, p *Plugin, action string, args map[string]any) sdk.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Invoke(ctx, &sdk.Request{ID: "inv-" + action, Action: action, Args: args, Log: sdk.Logger()})
}

func TestOpenCommentResolveLifecycle(t *testing.T) {
	for _, mk := range systems(t) {
		sys := mk(t)
		t.Run(sys.name, func(t *testing.T) {
			p := New(Options{StateDir: t.TempDir()})
			open := with(sys.args, "correlation_key", "fp-1234", "summary", "disk full on web1",
				"description", "Disk /var is 97% full.\n\nRunbook: https://runbooks.example/disk")

			r := invoke(t, p, ActionOpen, open)
			if r.Status != sdk.Succeeded || r.Details["action"] != "opened" {
				t.Fatalf("first open = %+v", r)
			}
			if n := sys.tickets(); n != 1 {
				t.Fatalf("tickets after first open = %d", n)
			}
			if m := sys.marker(0); m != "rulebook-fp-1234" {
				t.Errorf("correlation marker in the ticket = %q", m)
			}

			r = invoke(t, p, ActionOpen, open)
			if r.Status != sdk.Succeeded || r.Details["action"] != "commented" {
				t.Fatalf("second open = %+v", r)
			}
			if n, c := sys.tickets(), sys.comments(0); n != 1 || c != 1 {
				t.Fatalf("after second open: %d tickets, %d comments; want 1 and 1", n, c)
			}

			r = invoke(t, p, ActionComment, with(sys.args, "correlation_key", "fp-1234", "comment", "a human looked"))
			if r.Status != sdk.Succeeded || sys.comments(0) != 2 {
				t.Fatalf("comment = %+v, comments %d", r, sys.comments(0))
			}

			r = invoke(t, p, ActionResolve, with(sys.args, "correlation_key", "fp-1234", "note", "alert resolved"))
			if r.Status != sdk.Succeeded || r.Details["action"] != "resolved" {
				t.Fatalf("resolve = %+v", r)
			}
			if !sys.closed(0) {
				t.Fatal("ticket not closed after resolve")
			}

			r = invoke(t, p, ActionResolve, with(sys.args, "correlation_key", "fp-1234"))
			if r.Status != sdk.Succeeded || r.Details["action"] != "none" {
				t.Fatalf("second resolve = %+v", r)
			}

			// The alert fires again after resolution: a new ticket.
			r = invoke(t, p, ActionOpen, open)
			if r.Status != sdk.Succeeded || r.Details["action"] != "opened" || sys.tickets() != 2 {
				t.Fatalf("open after resolve = %+v, tickets %d", r, sys.tickets())
			}
		})
	}
}

func TestLostStateIsRebuiltFromTheSystem(t *testing.T) {
	for _, mk := range systems(t) {
		sys := mk(t)
		t.Run(sys.name, func(t *testing.T) {
			open := with(sys.args, "correlation_key", "alert/with spaces:and{odd}chars", "summary", "s")
			if r := invoke(t, New(Options{StateDir: t.TempDir()}), ActionOpen, open); r.Status != sdk.Succeeded {
				t.Fatal(r)
			}
			// Another plugin process with an empty state directory.
			p := New(Options{StateDir: t.TempDir()})
			r := invoke(t, p, ActionOpen, open)
			if r.Status != sdk.Succeeded || r.Details["action"] != "commented" || sys.tickets() != 1 {
				t.Fatalf("open with lost state = %+v, tickets %d", r, sys.tickets())
			}
			if m := sys.marker(0); !strings.HasPrefix(m, "rulebook-") || len(m) > 50 || strings.ContainsAny(m, " /:{}") {
				t.Errorf("marker %q is not a safe label", m)
			}
			r = invoke(t, New(Options{}), ActionResolve, with(sys.args, "correlation_key", "alert/with spaces:and{odd}chars"))
			if r.Status != sdk.Succeeded || !sys.closed(0) {
				t.Fatalf("resolve with no state = %+v", r)
			}
		})
	}
}

func TestTicketClosedByAHumanGetsANewOne(t *testing.T) {
	f := newFakeGitHub(t, "tok")
	p := New(Options{StateDir: t.TempDir()})
	args := map[string]any{"system": "github", "url": f.URL(), "token": "tok", "repo": "acme/ops", "correlation_key": "k", "summary": "s"}
	if r := invoke(t, p, ActionOpen, args); r.Status != sdk.Succeeded {
		t.Fatal(r)
	}
	f.mu.Lock()
	f.issues[0].State = "closed"
	f.mu.Unlock()
	r := invoke(t, p, ActionOpen, args)
	if r.Status != sdk.Succeeded || r.Details["action"] != "opened" || len(f.issues) != 2 {
		t.Fatalf("open after manual close = %+v (issues %d)", r, len(f.issues))
	}
}

func TestStateSurvivesARestart(t *testing.T) {
	f := newFakeServiceNow(t, basic("u", "p"))
	dir := t.TempDir()
	args := map[string]any{"system": "servicenow", "url": f.URL(), "username": "u", "password": "p", "correlation_key": "k1", "summary": "s"}
	if r := invoke(t, New(Options{StateDir: dir}), ActionOpen, args); r.Status != sdk.Succeeded {
		t.Fatal(r)
	}
	b, err := os.ReadFile(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tickets map[string]record `json:"tickets"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Tickets) != 1 {
		t.Fatalf("state file %s: %v", b, err)
	}
	before := len(f.callLog())
	if r := invoke(t, New(Options{StateDir: dir}), ActionOpen, args); r.Details["action"] != "commented" {
		t.Fatal(r)
	}
	// From the state file: check the incident, comment; no search.
	calls := f.callLog()[before:]
	for _, c := range calls {
		if c == "GET /api/now/table/incident" {
			t.Errorf("searched although the state file knew the ticket: %v", calls)
		}
	}
}

func TestCorruptStateFallsBackToSearch(t *testing.T) {
	f := newFakeGitHub(t, "tok")
	dir := t.TempDir()
	args := map[string]any{"system": "github", "url": f.URL(), "token": "tok", "repo": "acme/ops", "correlation_key": "k", "summary": "s"}
	if r := invoke(t, New(Options{StateDir: dir}), ActionOpen, args); r.Status != sdk.Succeeded {
		t.Fatal(r)
	}
	if err := os.WriteFile(filepath.Join(dir, StoreFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := invoke(t, New(Options{StateDir: dir}), ActionOpen, args)
	if r.Status != sdk.Succeeded || r.Details["action"] != "commented" || len(f.issues) != 1 {
		t.Fatalf("open with corrupt state = %+v", r)
	}
	// What the search found replaced the corrupt file: the next process
	// reads the ticket from it instead of searching again.
	b, err := os.ReadFile(filepath.Join(dir, StoreFile))
	if err != nil || !json.Valid(b) {
		t.Fatalf("state file after the search: %v %q", err, b)
	}
	before := len(f.callLog())
	if r := invoke(t, New(Options{StateDir: dir}), ActionOpen, args); r.Status != sdk.Succeeded || r.Details["action"] != "commented" {
		t.Fatalf("open after the state was rebuilt = %+v", r)
	}
	for _, c := range f.callLog()[before:] {
		if c == "GET /repos/acme/ops/issues" {
			t.Errorf("searched although the rebuilt state file knew the ticket: %v", f.callLog()[before:])
		}
	}
}

func TestConcurrentOpensOfOneKeyOpenOneTicket(t *testing.T) {
	f := newFakeJira(t, 3, "Bearer t")
	p := New(Options{StateDir: t.TempDir()})
	args := map[string]any{"system": "jira", "url": f.URL(), "token": "t", "project": "OPS", "correlation_key": "same", "summary": "s"}
	var wg sync.WaitGroup
	results := make([]sdk.Response, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = invoke(t, p, ActionOpen, args)
		}()
	}
	wg.Wait()
	opened := 0
	for _, r := range results {
		if r.Status != sdk.Succeeded {
			t.Fatal(r)
		}
		if r.Details["action"] == "opened" {
			opened++
		}
	}
	if opened != 1 || len(f.issues) != 1 || len(f.issues[0].Comments) != 4 {
		t.Fatalf("opened %d, issues %d", opened, len(f.issues))
	}
}

func TestAPIErrorsAreClassified(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		fail       scripted
		wantStatus sdk.Status
		wantAfter  time.Duration
		wantHTTP   int
		wantErr    string
	}{
		{"401", scripted{status: 401, body: `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`}, sdk.Failed, 0, 401, "User Not Authenticated"},
		{"403", scripted{status: 403, body: `{"errorMessages":["You do not have permission"],"errors":{}}`}, sdk.Failed, 0, 403, "You do not have permission"},
		{"400 with field errors", scripted{status: 400, body: `{"errorMessages":[],"errors":{"summary":"You must specify a summary of the issue."}}`}, sdk.Failed, 0, 400, "summary: You must specify"},
		{"429 retry-after seconds", scripted{status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"message":"rate limited"}`}, sdk.Retryable, 7 * time.Second, 429, "HTTP 429"},
		{"429 retry-after date", scripted{status: 429, header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(httpTimeFormat)}}, sdk.Retryable, 90 * time.Second, 429, "HTTP 429"},
		{"github secondary rate limit", scripted{status: 403, header: map[string]string{"Retry-After": "60"}, body: `{"message":"You have exceeded a secondary rate limit."}`}, sdk.Retryable, time.Minute, 403, "secondary rate limit"},
		{"github primary rate limit", scripted{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(now.Add(5 * time.Minute).Unix())}, body: `{"message":"API rate limit exceeded"}`}, sdk.Retryable, 5 * time.Minute, 403, "API rate limit exceeded"},
		{"500", scripted{status: 500, body: `{"error":{"message":"Internal error"}}`}, sdk.Retryable, 0, 500, "Internal error"},
		{"503 with retry-after", scripted{status: 503, header: map[string]string{"Retry-After": "30"}, body: `<html>maintenance</html>`}, sdk.Retryable, 30 * time.Second, 503, "HTTP 503"},
		{"200 with garbage", scripted{status: 200, body: `<html>login page</html>`}, sdk.Failed, 0, 200, "not the documented JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGitHub(t, "tok")
			f.failNext(tc.fail)
			p := New(Options{StateDir: t.TempDir(), Now: func() time.Time { return now }})
			r := invoke(t, p, ActionOpen, map[string]any{"system": "github", "url": f.URL(), "token": "tok", "repo": "acme/ops", "correlation_key": "k", "summary": "s"})
			if r.Status != tc.wantStatus || r.RetryAfter != tc.wantAfter || r.HTTPStatus != tc.wantHTTP || !strings.Contains(r.Error, tc.wantErr) {
				t.Fatalf("got %v after %s http %d error %q; want %v after %s http %d error containing %q",
					r.Status, r.RetryAfter, r.HTTPStatus, r.Error, tc.wantStatus, tc.wantAfter, tc.wantHTTP, tc.wantErr)
			}
			// Retrying after a retryable failure succeeds and opens one ticket.
			if r.Status == sdk.Retryable {
				if r := invoke(t, p, ActionOpen, map[string]any{"system": "github", "url": f.URL(), "token": "tok", "repo": "acme/ops", "correlation_key": "k", "summary": "s"}); r.Status != sdk.Succeeded || len(f.issues) != 1 {
					t.Fatalf("retry = %+v", r)
				}
			}
		})
	}
}

const httpTimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestWrongCredentialsFailWithoutLeakingThem(t *testing.T) {
	for _, mk := range systems(t) {
		sys := mk(t)
		t.Run(sys.name, func(t *testing.T) {
			args := with(sys.args, "correlation_key", "k", "summary", "s")
			for _, k := range []string{"password", "token"} {
				if _, ok := args[k]; ok {
					args[k] = "wrong-secret-value"
				}
			}
			r := invoke(t, New(Options{}), ActionOpen, args)
			if r.Status != sdk.Failed || r.HTTPStatus != 401 {
				t.Fatalf("wrong credentials = %+v", r)
			}
			if strings.Contains(r.Error, "wrong-secret-value") {
				t.Errorf("error leaks the secret: %q", r.Error)
			}
		})
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	f := newFakeServiceNow(t, basic("u", "p"))
	url := f.URL()
	f.srv.Close()
	r := invoke(t, New(Options{}), ActionOpen, map[string]any{"system": "servicenow", "url": url, "username": "u", "password": "p", "correlation_key": "k", "summary": "s"})
	if r.Status != sdk.Retryable {
		t.Fatalf("connection refused = %+v", r)
	}
}

func TestServiceNowRequests(t *testing.T) {
	f := newFakeServiceNow(t, basic("u", "p"))
	p := New(Options{})
	base := map[string]any{"system": "servicenow", "url": f.URL() + "/", "username": "u", "password": "p"}
	r := invoke(t, p, ActionOpen, with(base, "correlation_key", "k", "summary", "s", "description", "d",
		"fields", map[string]any{"urgency": "1", "assignment_group": "ops"}))
	if r.Status != sdk.Succeeded || r.Details["ticket"] != "INC0010001" || !strings.Contains(fmt.Sprint(r.Details["link"]), "sys_id=") {
		t.Fatalf("open = %+v", r)
	}
	in := f.incidents[0]
	if in.Fields["urgency"] != "1" || in.Fields["assignment_group"] != "ops" || in.Description != "d" || in.Fields["correlation_display"] != "rulebook" {
		t.Errorf("incident fields = %+v", in.Fields)
	}
	r = invoke(t, p, ActionResolve, with(base, "correlation_key", "k", "close_code", "Workaround provided"))
	if r.Status != sdk.Succeeded || in.State != "6" || in.CloseCode != "Workaround provided" || in.CloseNotes == "" {
		t.Fatalf("resolve = %+v, incident %+v", r, in)
	}
	if in.Journal != nil {
		t.Errorf("journal = %v", in.Journal)
	}
}

func TestJiraRequests(t *testing.T) {
	for _, v := range []int{2, 3} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			f := newFakeJira(t, v, "Bearer t")
			p := New(Options{})
			base := map[string]any{"system": "jira", "url": f.URL(), "token": "t", "project": "OPS", "api_version": fmt.Sprint(v)}
			r := invoke(t, p, ActionOpen, with(base, "correlation_key", "k", "summary", "s", "issue_type", "Bug",
				"description", "line one\nline two\n\nsecond paragraph", "labels", []any{"prod"}))
			if r.Status != sdk.Succeeded || r.Details["ticket"] != "OPS-1" || r.Details["link"] != f.URL()+"/browse/OPS-1" {
				t.Fatalf("open = %+v", r)
			}
			in := f.issues[0]
			if in.IssueType != "Bug" || strings.Join(in.Labels, ",") != "rulebook-k,prod" {
				t.Errorf("issue = %+v", in)
			}
			if v == 3 {
				want := `{"content":[{"content":[{"text":"line one","type":"text"},{"type":"hardBreak"},{"text":"line two","type":"text"}],"type":"paragraph"},{"content":[{"text":"second paragraph","type":"text"}],"type":"paragraph"}],"type":"doc","version":1}`
				if got, _ := json.Marshal(in.Description); string(got) != want {
					t.Errorf("ADF description = %s\nwant %s", got, want)
				}
			} else if in.Description != "line one\nline two\n\nsecond paragraph" {
				t.Errorf("v2 description = %#v", in.Description)
			}
			r = invoke(t, p, ActionResolve, with(base, "correlation_key", "k", "transition", "no such"))
			if r.Status != sdk.Failed || !strings.Contains(r.Error, `"Done"`) {
				t.Fatalf("unknown transition = %+v", r)
			}
			r = invoke(t, p, ActionResolve, with(base, "correlation_key", "k", "transition", "31"))
			if r.Status != sdk.Succeeded || in.Status != "Done" {
				t.Fatalf("resolve by id = %+v", r)
			}
		})
	}
}

func TestGitHubRequests(t *testing.T) {
	f := newFakeGitHub(t, "tok")
	p := New(Options{})
	base := map[string]any{"system": "github", "url": f.URL(), "token": "tok", "repo": "acme/ops"}
	r := invoke(t, p, ActionOpen, with(base, "correlation_key", "fp-9", "summary", "s", "description", "body text", "labels", []any{"sev1"}, "assignees", []any{"octocat"}))
	if r.Status != sdk.Succeeded || r.Details["ticket"] != "#1" || r.Details["link"] != "https://github.com/acme/ops/issues/1" {
		t.Fatalf("open = %+v", r)
	}
	in := f.issues[0]
	if !strings.HasPrefix(in.Body, "body text\n\n") || !strings.Contains(in.Body, "<!-- rulebook-correlation-key: fp-9 -->") {
		t.Errorf("body = %q", in.Body)
	}
	r = invoke(t, p, ActionResolve, with(base, "correlation_key", "fp-9", "state_reason", "not_planned", "note", "flapping"))
	if r.Status != sdk.Succeeded || in.State != "closed" || in.StateReason != "not_planned" || len(in.Comments) != 1 || in.Comments[0] != "flapping" {
		t.Fatalf("resolve = %+v, issue %+v", r, in)
	}
	// An explicit ticket number bypasses correlation.
	r = invoke(t, p, ActionComment, with(base, "ticket", "1", "comment", "post-mortem linked"))
	if r.Status != sdk.Succeeded || len(in.Comments) != 2 {
		t.Fatalf("comment by number = %+v", r)
	}
}

func TestArgumentErrors(t *testing.T) {
	tests := []struct {
		name   string
		action string
		args   map[string]any
		want   string
	}{
		{"unknown system", ActionOpen, map[string]any{"system": "remedy", "url": "https://x", "token": "t", "correlation_key": "k", "summary": "s"}, `"system": "remedy"`},
		{"no credentials", ActionOpen, map[string]any{"system": "servicenow", "url": "https://x", "correlation_key": "k", "summary": "s"}, "credentials missing"},
		{"no url", ActionOpen, map[string]any{"system": "jira", "token": "t", "project": "P", "correlation_key": "k", "summary": "s"}, `"url" is required`},
		{"not http", ActionOpen, map[string]any{"system": "jira", "url": "ftp://x", "token": "t", "project": "P", "correlation_key": "k", "summary": "s"}, "not an http(s) URL"},
		{"jira without project", ActionOpen, map[string]any{"system": "jira", "url": "https://x", "token": "t", "correlation_key": "k", "summary": "s"}, `"project" is required`},
		{"github bad repo", ActionOpen, map[string]any{"system": "github", "token": "t", "repo": "acme", "correlation_key": "k", "summary": "s"}, `"repo": "acme"`},
		{"github basic auth", ActionOpen, map[string]any{"system": "github", "username": "u", "password": "p", "repo": "a/b", "correlation_key": "k", "summary": "s"}, `"token" is required`},
		{"open without key", ActionOpen, map[string]any{"system": "github", "token": "t", "repo": "a/b", "summary": "s"}, `"correlation_key" is required`},
		{"open without summary", ActionOpen, map[string]any{"system": "github", "token": "t", "repo": "a/b", "correlation_key": "k"}, `"summary" is required`},
		{"comment without text", ActionComment, map[string]any{"system": "github", "token": "t", "repo": "a/b", "correlation_key": "k"}, `"comment" is required`},
		{"resolve without key", ActionResolve, map[string]any{"system": "github", "token": "t", "repo": "a/b"}, `"correlation_key" or "ticket"`},
		{"unknown key", ActionResolve, map[string]any{"system": "github", "token": "t", "repo": "a/b", "ticket": "1", "summary": "x"}, `unknown argument "summary"`},
		{"wrong type", ActionOpen, map[string]any{"system": "github", "token": "t", "repo": "a/b", "correlation_key": "k", "summary": "s", "labels": 3.0}, `"labels": got float64`},
		{"bad api version", ActionOpen, map[string]any{"system": "jira", "url": "https://x", "token": "t", "project": "P", "correlation_key": "k", "summary": "s", "api_version": "4"}, `"api_version"`},
		{"bad state reason", ActionResolve, map[string]any{"system": "github", "token": "t", "repo": "a/b", "ticket": "1", "state_reason": "wontfix"}, `"state_reason": "wontfix"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := invoke(t, New(Options{}), tc.action, tc.args)
			if r.Status != sdk.Failed || !strings.Contains(r.Error, tc.want) {
				t.Fatalf("got %v %q, want Failed containing %q", r.Status, r.Error, tc.want)
			}
			if strings.Contains(r.Error, `"t"`) || strings.Contains(r.Error, `"p"`) {
				t.Errorf("error may contain a credential: %q", r.Error)
			}
		})
	}
}

func TestMarker(t *testing.T) {
	tests := []struct{ key, want string }{
		{"d41d8cd98f00b204", "rulebook-d41d8cd98f00b204"},
		{"web-1.prod_east", "rulebook-web-1.prod_east"},
		{"has space", "rulebook-" + "hash"},
		{strings.Repeat("a", 41), "rulebook-" + "hash"},
	}
	for _, tc := range tests {
		got := marker(tc.key)
		if tc.want == "rulebook-hash" {
			if len(got) != len("rulebook-")+20 || got == marker(tc.key+"x") {
				t.Errorf("marker(%q) = %q, want a 20-hex hash", tc.key, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("marker(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func FuzzADF(f *testing.F) {
	f.Add("one line")
	f.Add("a\nb\n\nc\r\n\r\nd")
	f.Add("\n\n\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		doc := adf(s)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var back any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := validADF(back); err != nil {
			t.Fatalf("adf(%q) = %s: %v", s, b, err)
		}
		// Every non-blank line's text survives, in order.
		var texts []string
		for _, p := range doc["content"].([]any) {
			for _, n := range p.(map[string]any)["content"].([]any) {
				if txt, ok := n.(map[string]any)["text"].(string); ok {
					texts = append(texts, txt)
				}
			}
		}
		var want []string
		for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
			if strings.TrimSpace(line) != "" {
				want = append(want, line)
			}
		}
		if strings.Join(texts, "\n") != strings.Join(want, "\n") {
			t.Fatalf("adf(%q) texts %q, want %q", s, texts, want)
		}
	})
}
