package awx

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// controller is a double of the AWX / Automation Platform controller API,
// written from AWX's API documentation: token authentication (401 with a
// detail without it), list endpoints answering {count, next, previous,
// results} filtered by name and organization__name, a launch endpoint that
// takes a JSON body and answers 201 with the new job, jobs whose status
// moves pending → running → successful/failed as they are polled, their
// artifacts, and a cancel endpoint.
type controller struct {
	t      *testing.T
	srv    *httptest.Server
	token  string
	prefix string // "/api/v2/", or "/api/controller/v2/" behind a gateway

	mu        sync.Mutex
	templates []tmpl
	jobs      map[int]*fakeJob
	nextJob   int
	launches  []launchReq
	requests  []string
	pageSize  int
	// failures: answer the next requests whose "METHOD path" starts with
	// the key with these statuses, in order.
	failures map[string][]int
	cancels  []int
}

type tmpl struct {
	id       int
	name     string
	org      string
	workflow bool
	askLimit bool
	askVars  bool
	// outcome of its jobs: the final status and artifacts.
	final     string
	artifacts map[string]any
	// polls before the job is final (pending, running...).
	polls int
}

type fakeJob struct {
	id       int
	tmpl     tmpl
	polls    int
	canceled bool
}

type launchReq struct {
	path        string
	contentType string
	body        map[string]any
}

func newController(t *testing.T, prefix string, templates ...tmpl) *controller {
	c := &controller{t: t, token: "s3cr3t-token-value", prefix: prefix, templates: templates, jobs: map[int]*fakeJob{},
		nextJob: 100, pageSize: 2, failures: map[string][]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

// fail makes the next requests matching key ("POST /api/v2/job_templates/")
// answer the statuses.
func (c *controller) fail(key string, statuses ...int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[key] = append(c.failures[key], statuses...)
}

func (c *controller) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (c *controller) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	c.requests = append(c.requests, key+"?"+r.URL.RawQuery)
	user, pass, basic := r.BasicAuth()
	if r.Header.Get("Authorization") != "Bearer "+c.token && !(basic && user == "eda" && pass == c.token+"-pw") {
		c.writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Authentication credentials were not provided."})
		return
	}
	for k, statuses := range c.failures {
		if strings.HasPrefix(key, k) && len(statuses) > 0 {
			c.failures[k] = statuses[1:]
			c.writeJSON(w, statuses[0], map[string]any{"detail": fmt.Sprintf("injected %d", statuses[0])})
			return
		}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, c.prefix)
	if !ok {
		c.writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 1 && (parts[0] == "job_templates" || parts[0] == "workflow_job_templates"):
		c.list(w, r, parts[0] == "workflow_job_templates")
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "launch":
		c.launch(w, r, parts[0], parts[1])
	case r.Method == http.MethodGet && len(parts) == 2 && (parts[0] == "jobs" || parts[0] == "workflow_jobs"):
		c.job(w, parts[0], parts[1])
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "cancel":
		id, _ := strconv.Atoi(parts[1])
		if j := c.jobs[id]; j != nil {
			j.canceled = true
			c.cancels = append(c.cancels, id)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		c.writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
	default:
		c.writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
	}
}

func (c *controller) list(w http.ResponseWriter, r *http.Request, workflow bool) {
	q := r.URL.Query()
	var match []tmpl
	for _, tp := range c.templates {
		if tp.workflow != workflow {
			continue
		}
		if n := q.Get("name"); n != "" && tp.name != n {
			continue
		}
		if o := q.Get("organization__name"); o != "" && tp.org != o {
			continue
		}
		match = append(match, tp)
	}
	pageNo := 1
	if p := q.Get("page"); p != "" {
		pageNo, _ = strconv.Atoi(p)
	}
	from := (pageNo - 1) * c.pageSize
	to := min(from+c.pageSize, len(match))
	from = min(from, to)
	kind := "job_templates"
	if workflow {
		kind = "workflow_job_templates"
	}
	results := []any{}
	for _, tp := range match[from:to] {
		results = append(results, map[string]any{
			"id": tp.id, "type": strings.TrimSuffix(kind, "s"), "name": tp.name,
			"url":                     fmt.Sprintf("%s%s/%d/", c.prefix, kind, tp.id),
			"related":                 map[string]any{"launch": fmt.Sprintf("%s%s/%d/launch/", c.prefix, kind, tp.id)},
			"summary_fields":          map[string]any{"organization": map[string]any{"id": 1, "name": tp.org}},
			"ask_limit_on_launch":     tp.askLimit,
			"ask_variables_on_launch": tp.askVars,
		})
	}
	var next any
	if to < len(match) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("page", strconv.Itoa(pageNo+1))
		next = c.prefix + kind + "/?" + nq.Encode()
	}
	c.writeJSON(w, http.StatusOK, map[string]any{"count": len(match), "next": next, "previous": nil, "results": results})
}

func (c *controller) launch(w http.ResponseWriter, r *http.Request, kind, idText string) {
	id, _ := strconv.Atoi(idText)
	var tp *tmpl
	for i := range c.templates {
		if c.templates[i].id == id && (kind == "workflow_job_templates") == c.templates[i].workflow {
			tp = &c.templates[i]
		}
	}
	if tp == nil {
		c.writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		c.writeJSON(w, http.StatusBadRequest, map[string]any{"detail": "JSON parse error"})
		return
	}
	c.launches = append(c.launches, launchReq{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), body: body})
	ignored := map[string]any{}
	if _, ok := body["limit"]; ok && !tp.askLimit {
		ignored["limit"] = body["limit"]
	}
	if _, ok := body["extra_vars"]; ok && !tp.askVars {
		ignored["extra_vars"] = body["extra_vars"]
	}
	c.nextJob++
	j := &fakeJob{id: c.nextJob, tmpl: *tp}
	c.jobs[j.id] = j
	answer := map[string]any{"ignored_fields": ignored, "id": j.id, "status": "pending"}
	if tp.workflow {
		answer["workflow_job"] = j.id
		answer["type"] = "workflow_job"
		answer["url"] = fmt.Sprintf("%sworkflow_jobs/%d/", c.prefix, j.id)
	} else {
		answer["job"] = j.id
		answer["type"] = "job"
		answer["url"] = fmt.Sprintf("%sjobs/%d/", c.prefix, j.id)
	}
	c.writeJSON(w, http.StatusCreated, answer)
}

func (c *controller) job(w http.ResponseWriter, kind, idText string) {
	id, _ := strconv.Atoi(idText)
	j := c.jobs[id]
	if j == nil || (kind == "workflow_jobs") != j.tmpl.workflow {
		c.writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	j.polls++
	status := "pending"
	switch {
	case j.canceled:
		status = "canceled"
	case j.polls > j.tmpl.polls:
		status = j.tmpl.final
	case j.polls > 1:
		status = "running"
	}
	out := map[string]any{"id": j.id, "status": status, "failed": status == "failed", "elapsed": 1.5,
		"url": fmt.Sprintf("%s%s/%d/", c.prefix, kind, j.id)}
	if !j.tmpl.workflow && (status == "successful" || status == "failed") {
		art := j.tmpl.artifacts
		if art == nil {
			art = map[string]any{}
		}
		out["artifacts"] = art
	}
	c.writeJSON(w, http.StatusOK, out)
}

func (c *controller) snapshot() (launches []launchReq, requests []string, cancels []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]launchReq(nil), c.launches...), append([]string(nil), c.requests...), append([]int(nil), c.cancels...)
}
