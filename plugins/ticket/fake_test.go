package ticket

// Fakes of ServiceNow, Jira and GitHub that check every request the way
// the real APIs document it (path, method, auth, headers, required fields,
// ADF bodies for Jira v3) and answer with the documented shapes, including
// their error bodies. A test scripts failures with failNext.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type scripted struct {
	status int
	header map[string]string
	body   string
}

// fake is what the three fakes share.
type fake struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []string // "METHOD /path"
	failNx []scripted
	// auth is the Authorization header every request must carry.
	auth string
}

func (f *fake) URL() string { return f.srv.URL }

func (f *fake) failNext(s scripted) {
	f.mu.Lock()
	f.failNx = append(f.failNx, s)
	f.mu.Unlock()
}

func (f *fake) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// begin records the call and answers a scripted failure, if any.
func (f *fake) begin(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	var s *scripted
	if len(f.failNx) > 0 {
		s = &f.failNx[0]
		f.failNx = f.failNx[1:]
	}
	f.mu.Unlock()
	if s != nil {
		for k, v := range s.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		io.WriteString(w, s.body)
		return true
	}
	return false
}

func (f *fake) errorf(format string, args ...any) {
	f.t.Helper()
	f.t.Errorf(format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(f *fake, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.errorf("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		f.errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		return false
	}
	return true
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// ---------------------------------------------------------------- ServiceNow

type snRecord struct {
	SysID, Number, State, CorrelationID, ShortDescription, Description, CloseCode, CloseNotes string
	Journal                                                                                   []string
	Fields                                                                                    map[string]any
}

type fakeServiceNow struct {
	fake
	incidents []*snRecord
}

func newFakeServiceNow(t *testing.T, auth string) *fakeServiceNow {
	f := &fakeServiceNow{fake: fake{t: t, auth: auth}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func snError(w http.ResponseWriter, status int, msg, detail string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "detail": detail}, "status": "failure"})
}

func (f *fakeServiceNow) record(in *snRecord) map[string]any {
	return map[string]any{
		"sys_id": in.SysID, "number": in.Number, "state": in.State, "active": strconv.FormatBool(in.State != "7" && in.State != "8"),
		"correlation_id": in.CorrelationID, "short_description": in.ShortDescription,
		"close_code": in.CloseCode, "close_notes": in.CloseNotes,
	}
}

func (f *fakeServiceNow) serve(w http.ResponseWriter, r *http.Request) {
	if f.begin(w, r) {
		return
	}
	if r.Header.Get("Authorization") != f.auth {
		snError(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
		return
	}
	if r.Header.Get("Accept") != "application/json" {
		f.errorf("servicenow %s %s: Accept %q, want application/json", r.Method, r.URL.Path, r.Header.Get("Accept"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	const base = "/api/now/table/incident"
	switch {
	case r.URL.Path == base && r.Method == http.MethodPost:
		var body map[string]any
		if !readJSON(&f.fake, r, &body) {
			snError(w, 400, "Exception while reading request", "Invalid JSON")
			return
		}
		sd, _ := body["short_description"].(string)
		if sd == "" {
			f.errorf("servicenow create: short_description missing")
		}
		if body["correlation_id"] == nil {
			f.errorf("servicenow create: correlation_id missing")
		}
		in := &snRecord{
			SysID:  fmt.Sprintf("%032x", len(f.incidents)+1),
			Number: fmt.Sprintf("INC%07d", 10001+len(f.incidents)), State: "1",
			ShortDescription: sd, Fields: body,
		}
		in.CorrelationID, _ = body["correlation_id"].(string)
		in.Description, _ = body["description"].(string)
		f.incidents = append(f.incidents, in)
		writeJSON(w, http.StatusCreated, map[string]any{"result": f.record(in)})
	case r.URL.Path == base && r.Method == http.MethodGet:
		q := r.URL.Query()
		var corr string
		excluded := map[string]bool{}
		for _, cond := range strings.Split(q.Get("sysparm_query"), "^") {
			switch {
			case strings.HasPrefix(cond, "correlation_id="):
				corr = strings.TrimPrefix(cond, "correlation_id=")
			case strings.HasPrefix(cond, "stateNOT IN"):
				for _, s := range strings.Split(strings.TrimPrefix(cond, "stateNOT IN"), ",") {
					excluded[s] = true
				}
			case strings.HasPrefix(cond, "ORDERBY"):
			default:
				f.errorf("servicenow query: unexpected condition %q", cond)
			}
		}
		if corr == "" {
			f.errorf("servicenow query %q does not filter on correlation_id", q.Get("sysparm_query"))
		}
		if q.Get("sysparm_limit") == "" {
			f.errorf("servicenow query without sysparm_limit")
		}
		res := []any{}
		for i := len(f.incidents) - 1; i >= 0; i-- {
			in := f.incidents[i]
			if in.CorrelationID == corr && !excluded[in.State] {
				res = append(res, f.record(in))
			}
		}
		writeJSON(w, 200, map[string]any{"result": res})
	case strings.HasPrefix(r.URL.Path, base+"/"):
		id := strings.TrimPrefix(r.URL.Path, base+"/")
		var in *snRecord
		for _, x := range f.incidents {
			if x.SysID == id {
				in = x
			}
		}
		if in == nil {
			snError(w, 404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, map[string]any{"result": f.record(in)})
		case http.MethodPatch:
			var body map[string]any
			if !readJSON(&f.fake, r, &body) {
				return
			}
			for _, field := range []string{"work_notes", "comments"} {
				if s, ok := body[field].(string); ok {
					in.Journal = append(in.Journal, field+": "+s)
				}
			}
			if st, ok := body["state"]; ok {
				if st != "6" {
					f.errorf("servicenow resolve: state %v, want \"6\"", st)
				}
				cc, _ := body["close_code"].(string)
				cn, _ := body["close_notes"].(string)
				if cc == "" || cn == "" {
					snError(w, 403, "Operation Failed", "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes")
					return
				}
				in.State, in.CloseCode, in.CloseNotes = "6", cc, cn
			}
			writeJSON(w, 200, map[string]any{"result": f.record(in)})
		default:
			snError(w, 405, "Method not Supported", r.Method)
		}
	default:
		snError(w, 400, "Invalid table", r.URL.Path)
	}
}

// ---------------------------------------------------------------- Jira

type jiraRecord struct {
	ID, Key, Project, Summary, IssueType, Status string
	Labels                                       []string
	Description                                  any
	Comments                                     []any
}

type fakeJira struct {
	fake
	version int
	issues  []*jiraRecord
}

func newFakeJira(t *testing.T, version int, auth string) *fakeJira {
	f := &fakeJira{fake: fake{t: t, auth: auth}, version: version}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func jiraError(w http.ResponseWriter, status int, msgs []string, errs map[string]string) {
	if errs == nil {
		errs = map[string]string{}
	}
	writeJSON(w, status, map[string]any{"errorMessages": msgs, "errors": errs})
}

// checkBody checks a description or comment body: an ADF document for v3,
// a string for v2.
func (f *fakeJira) checkBody(where string, v any) {
	if f.version == 2 {
		if _, ok := v.(string); !ok {
			f.errorf("jira v2 %s: body is %T, want a string", where, v)
		}
		return
	}
	if err := validADF(v); err != nil {
		f.errorf("jira v3 %s: not Atlassian Document Format: %v", where, err)
	}
}

// validADF checks the parts of the ADF schema the plugin uses.
func validADF(v any) error {
	doc, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("document is %T", v)
	}
	if doc["type"] != "doc" || doc["version"] != 1.0 {
		return fmt.Errorf("type %v version %v, want doc 1", doc["type"], doc["version"])
	}
	content, ok := doc["content"].([]any)
	if !ok {
		return fmt.Errorf("content is %T", doc["content"])
	}
	for _, b := range content {
		p, _ := b.(map[string]any)
		if p["type"] != "paragraph" {
			return fmt.Errorf("block node %v", p["type"])
		}
		inl, ok := p["content"].([]any)
		if !ok || len(inl) == 0 {
			return fmt.Errorf("paragraph without content")
		}
		for _, n := range inl {
			m, _ := n.(map[string]any)
			switch m["type"] {
			case "text":
				if s, _ := m["text"].(string); s == "" {
					return fmt.Errorf("empty text node")
				}
			case "hardBreak":
			default:
				return fmt.Errorf("inline node %v", m["type"])
			}
		}
	}
	return nil
}

var jqlRe = regexp.MustCompile(`^project = "([^"]*)" AND labels = "([^"]*)" AND statusCategory != Done ORDER BY created DESC$`)

func (f *fakeJira) find(key string) *jiraRecord {
	for _, x := range f.issues {
		if x.Key == key {
			return x
		}
	}
	return nil
}

func (f *fakeJira) statusJSON(in *jiraRecord) map[string]any {
	cat := "new"
	if in.Status == "Done" {
		cat = "done"
	}
	return map[string]any{"name": in.Status, "statusCategory": map[string]any{"key": cat}}
}

var jiraTransitions = []map[string]any{{"id": "11", "name": "To Do"}, {"id": "21", "name": "In Progress"}, {"id": "31", "name": "Done"}}

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	if f.begin(w, r) {
		return
	}
	if r.Header.Get("Authorization") != f.auth {
		jiraError(w, 401, []string{"You are not authenticated. Authentication required to perform this operation."}, nil)
		return
	}
	if r.Header.Get("Accept") != "application/json" {
		f.errorf("jira %s %s: Accept %q", r.Method, r.URL.Path, r.Header.Get("Accept"))
	}
	prefix := fmt.Sprintf("/rest/api/%d", f.version)
	if !strings.HasPrefix(r.URL.Path, prefix+"/") {
		f.errorf("jira: %s %s is not under %s", r.Method, r.URL.Path, prefix)
		jiraError(w, 404, []string{"not found"}, nil)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, prefix)
	f.mu.Lock()
	defer f.mu.Unlock()
	searchPath := "/search"
	if f.version == 3 {
		searchPath = "/search/jql"
	}
	switch {
	case path == "/issue" && r.Method == http.MethodPost:
		var body struct {
			Fields map[string]any `json:"fields"`
		}
		if !readJSON(&f.fake, r, &body) {
			return
		}
		fl := body.Fields
		proj, _ := fl["project"].(map[string]any)
		it, _ := fl["issuetype"].(map[string]any)
		summary, _ := fl["summary"].(string)
		errs := map[string]string{}
		if proj == nil || proj["key"] == "" {
			errs["project"] = "Specify a valid project ID or key"
		}
		if it == nil || it["name"] == "" {
			errs["issuetype"] = "Specify an issue type"
		}
		if summary == "" {
			errs["summary"] = "You must specify a summary of the issue."
		}
		if len(errs) > 0 {
			jiraError(w, 400, nil, errs)
			return
		}
		if d, ok := fl["description"]; ok {
			f.checkBody("description", d)
		}
		var labels []string
		if ls, ok := fl["labels"].([]any); ok {
			for _, l := range ls {
				s, _ := l.(string)
				if s == "" || strings.ContainsAny(s, " \t") {
					jiraError(w, 400, nil, map[string]string{"labels": "The label '" + s + "' contains spaces which is invalid."})
					return
				}
				labels = append(labels, s)
			}
		}
		in := &jiraRecord{
			ID: strconv.Itoa(10000 + len(f.issues)), Key: fmt.Sprintf("%s-%d", proj["key"], len(f.issues)+1),
			Project: fmt.Sprint(proj["key"]), Summary: summary, IssueType: fmt.Sprint(it["name"]),
			Status: "To Do", Labels: labels, Description: fl["description"],
		}
		f.issues = append(f.issues, in)
		writeJSON(w, 201, map[string]any{"id": in.ID, "key": in.Key, "self": f.srv.URL + prefix + "/issue/" + in.ID})
	case path == searchPath && r.Method == http.MethodGet:
		m := jqlRe.FindStringSubmatch(r.URL.Query().Get("jql"))
		if m == nil {
			f.errorf("jira search: unexpected jql %q", r.URL.Query().Get("jql"))
			jiraError(w, 400, []string{"Error in the JQL Query"}, nil)
			return
		}
		issues := []any{}
		for i := len(f.issues) - 1; i >= 0; i-- {
			in := f.issues[i]
			if in.Project == m[1] && in.Status != "Done" && contains(in.Labels, m[2]) {
				issues = append(issues, map[string]any{"id": in.ID, "key": in.Key, "fields": map[string]any{"status": f.statusJSON(in)}})
			}
		}
		writeJSON(w, 200, map[string]any{"issues": issues, "isLast": true})
	case path == "/search" && f.version == 3:
		// Removed from Jira Cloud in favour of /search/jql.
		jiraError(w, 410, []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."}, nil)
	case strings.HasPrefix(path, "/issue/"):
		rest := strings.Split(strings.TrimPrefix(path, "/issue/"), "/")
		in := f.find(rest[0])
		if in == nil {
			jiraError(w, 404, []string{"Issue does not exist or you do not have permission to see it."}, nil)
			return
		}
		switch {
		case len(rest) == 1 && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"id": in.ID, "key": in.Key, "fields": map[string]any{"status": f.statusJSON(in)}})
		case len(rest) == 2 && rest[1] == "comment" && r.Method == http.MethodPost:
			var body map[string]any
			if !readJSON(&f.fake, r, &body) {
				return
			}
			f.checkBody("comment", body["body"])
			in.Comments = append(in.Comments, body["body"])
			writeJSON(w, 201, map[string]any{"id": strconv.Itoa(100 + len(in.Comments)), "body": body["body"]})
		case len(rest) == 2 && rest[1] == "transitions" && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"transitions": jiraTransitions})
		case len(rest) == 2 && rest[1] == "transitions" && r.Method == http.MethodPost:
			var body struct {
				Transition struct {
					ID string `json:"id"`
				} `json:"transition"`
			}
			if !readJSON(&f.fake, r, &body) {
				return
			}
			for _, tr := range jiraTransitions {
				if tr["id"] == body.Transition.ID {
					in.Status = tr["name"].(string)
					w.WriteHeader(204)
					return
				}
			}
			jiraError(w, 400, []string{fmt.Sprintf("Transition id '%s' is not valid for this issue.", body.Transition.ID)}, nil)
		default:
			jiraError(w, 405, []string{"method not allowed"}, nil)
		}
	default:
		f.errorf("jira: unexpected %s %s", r.Method, r.URL.Path)
		jiraError(w, 404, []string{"not found"}, nil)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- GitHub

type ghRecord struct {
	Number      int
	Title, Body string
	State       string
	StateReason string
	Labels      []string
	Comments    []string
}

type fakeGitHub struct {
	fake
	owner, repo string
	issues      []*ghRecord
}

func newFakeGitHub(t *testing.T, token string) *fakeGitHub {
	f := &fakeGitHub{fake: fake{t: t, auth: "Bearer " + token}, owner: "acme", repo: "ops"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func ghError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)})
}

func (f *fakeGitHub) issueJSON(in *ghRecord) map[string]any {
	labels := []any{}
	for _, l := range in.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	return map[string]any{
		"id": 1000 + in.Number, "number": in.Number, "title": in.Title, "body": in.Body, "state": in.State,
		"state_reason": in.StateReason, "labels": labels,
		"html_url": fmt.Sprintf("https://github.com/%s/%s/issues/%d", f.owner, f.repo, in.Number),
	}
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	if f.begin(w, r) {
		return
	}
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		ghError(w, 401, "Requires authentication")
		return
	case auth != f.auth:
		ghError(w, 401, "Bad credentials")
		return
	}
	if r.Header.Get("Accept") != "application/vnd.github+json" {
		f.errorf("github %s %s: Accept %q", r.Method, r.URL.Path, r.Header.Get("Accept"))
	}
	if r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" {
		f.errorf("github %s %s: X-GitHub-Api-Version %q", r.Method, r.URL.Path, r.Header.Get("X-GitHub-Api-Version"))
	}
	if r.Header.Get("User-Agent") == "" {
		ghError(w, 403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header")
		return
	}
	prefix := "/repos/" + f.owner + "/" + f.repo + "/issues"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		ghError(w, 404, "Not Found")
		return
	}
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	if rest == "" {
		switch r.Method {
		case http.MethodPost:
			var body map[string]any
			if !readJSON(&f.fake, r, &body) {
				return
			}
			title, _ := body["title"].(string)
			if title == "" {
				writeJSON(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "Issue", "field": "title", "code": "missing_field"}}})
				return
			}
			in := &ghRecord{Number: len(f.issues) + 1, Title: title, State: "open"}
			in.Body, _ = body["body"].(string)
			if ls, ok := body["labels"].([]any); ok {
				for _, l := range ls {
					s, _ := l.(string)
					if len(s) > 50 {
						writeJSON(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "Label", "field": "name", "code": "too_long"}}})
						return
					}
					in.Labels = append(in.Labels, s)
				}
			}
			f.issues = append(f.issues, in)
			writeJSON(w, 201, f.issueJSON(in))
		case http.MethodGet:
			q := r.URL.Query()
			state := q.Get("state")
			if state == "" {
				state = "open"
			}
			out := []any{
				// The issues endpoint lists pull requests too.
				map[string]any{"number": 999, "state": "open", "pull_request": map[string]any{"url": "x"}, "labels": []any{map[string]any{"name": q.Get("labels")}}},
			}
			for i := len(f.issues) - 1; i >= 0; i-- {
				in := f.issues[i]
				if (state == "all" || in.State == state) && (q.Get("labels") == "" || contains(in.Labels, q.Get("labels"))) {
					out = append(out, f.issueJSON(in))
				}
			}
			writeJSON(w, 200, out)
		default:
			ghError(w, 404, "Not Found")
		}
		return
	}
	parts := strings.Split(rest, "/")
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < 1 || n > len(f.issues) {
		ghError(w, 404, "Not Found")
		return
	}
	in := f.issues[n-1]
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		writeJSON(w, 200, f.issueJSON(in))
	case len(parts) == 1 && r.Method == http.MethodPatch:
		var body map[string]any
		if !readJSON(&f.fake, r, &body) {
			return
		}
		if st, ok := body["state"].(string); ok {
			if st != "open" && st != "closed" {
				writeJSON(w, 422, map[string]any{"message": "Validation Failed"})
				return
			}
			in.State = st
		}
		if sr, ok := body["state_reason"].(string); ok {
			if sr != "completed" && sr != "not_planned" && sr != "reopened" {
				writeJSON(w, 422, map[string]any{"message": "Validation Failed"})
				return
			}
			in.StateReason = sr
		}
		writeJSON(w, 200, f.issueJSON(in))
	case len(parts) == 2 && parts[1] == "comments" && r.Method == http.MethodPost:
		var body map[string]any
		if !readJSON(&f.fake, r, &body) {
			return
		}
		s, _ := body["body"].(string)
		if s == "" {
			writeJSON(w, 422, map[string]any{"message": "Validation Failed"})
			return
		}
		in.Comments = append(in.Comments, s)
		writeJSON(w, 201, map[string]any{"id": 5000 + len(in.Comments), "body": s,
			"html_url": fmt.Sprintf("https://github.com/%s/%s/issues/%d#issuecomment-%d", f.owner, f.repo, n, 5000+len(in.Comments))})
	default:
		ghError(w, 404, "Not Found")
	}
}
