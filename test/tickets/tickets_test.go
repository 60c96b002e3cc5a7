// Package tickets tests the ticket plugin end to end: Alertmanager
// notifications reach the real rulebook binary's alertmanager source, a rule
// calls ticket.open and ticket.resolve from the real plugin binary, and a
// local server that checks requests as GitHub's Issues API documents them
// stands in for GitHub (a SaaS that cannot run here).
package tickets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

const token = "ghp_test_token"

// fakeGitHub implements the part of the Issues API the plugin uses and
// rejects requests the real API would reject.
type fakeGitHub struct {
	t        *testing.T
	mu       sync.Mutex
	issues   map[int]*issue
	comments map[int][]string
	next     int
	errs     []string
}

type issue struct {
	Number  int      `json:"number"`
	Title   string   `json:"title"`
	Body    string   `json:"body"`
	State   string   `json:"state"`
	Labels  []string `json:"-"`
	HTMLURL string   `json:"html_url"`
}

func (g *fakeGitHub) fail(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.errs = append(g.errs, msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// https://docs.github.com/en/rest/issues: bearer token, JSON media type,
	// API version header.
	if r.Header.Get("Authorization") != "Bearer "+token {
		g.fail(w, 401, "Bad credentials")
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "application/vnd.github+json") {
		g.fail(w, 415, "Accept must be application/vnd.github+json, got %q", r.Header.Get("Accept"))
		return
	}
	if r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" {
		g.fail(w, 400, "missing X-GitHub-Api-Version")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/repos/acme/ops/issues")
	if !ok {
		g.fail(w, 404, "Not Found: %s", r.URL.Path)
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			g.fail(w, 400, "Problems parsing JSON")
			return
		}
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		label := r.URL.Query().Get("labels")
		out := []*issue{}
		for _, is := range g.issues {
			if is.State == r.URL.Query().Get("state") || r.URL.Query().Get("state") == "" {
				for _, l := range is.Labels {
					if l == label {
						out = append(out, is)
					}
				}
			}
		}
		json.NewEncoder(w).Encode(out)
	case rest == "" && r.Method == http.MethodPost:
		title, _ := body["title"].(string)
		if title == "" {
			g.fail(w, 422, "Validation Failed: title is required")
			return
		}
		g.next++
		is := &issue{Number: g.next, Title: title, State: "open", HTMLURL: fmt.Sprintf("https://github.example/acme/ops/issues/%d", g.next)}
		is.Body, _ = body["body"].(string)
		if labels, ok := body["labels"].([]any); ok {
			for _, l := range labels {
				is.Labels = append(is.Labels, fmt.Sprint(l))
			}
		}
		g.issues[is.Number] = is
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(is)
	case len(parts) >= 1:
		n, err := strconv.Atoi(parts[0])
		is := g.issues[n]
		if err != nil || is == nil {
			g.fail(w, 404, "Not Found")
			return
		}
		switch {
		case len(parts) == 1 && r.Method == http.MethodGet:
			json.NewEncoder(w).Encode(is)
		case len(parts) == 1 && r.Method == http.MethodPatch:
			if st, ok := body["state"].(string); ok {
				if st != "open" && st != "closed" {
					g.fail(w, 422, "Validation Failed: state")
					return
				}
				is.State = st
			}
			json.NewEncoder(w).Encode(is)
		case len(parts) == 2 && parts[1] == "comments" && r.Method == http.MethodPost:
			text, _ := body["body"].(string)
			if text == "" {
				g.fail(w, 422, "Validation Failed: body is required")
				return
			}
			g.comments[n] = append(g.comments[n], text)
			w.WriteHeader(201)
			json.NewEncoder(w).Encode(map[string]any{"id": len(g.comments[n]), "body": text})
		default:
			g.fail(w, 404, "Not Found: %s %s", r.Method, r.URL.Path)
		}
	default:
		g.fail(w, 404, "Not Found: %s %s", r.Method, r.URL.Path)
	}
}

func (g *fakeGitHub) snapshot() (issues []issue, comments map[int]int, errs []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	comments = map[int]int{}
	for _, is := range g.issues {
		issues = append(issues, *is)
		comments[is.Number] = len(g.comments[is.Number])
	}
	return issues, comments, append([]string(nil), g.errs...)
}

func build(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
}

// notification is an Alertmanager webhook payload (version 4) with one
// alert.
func notification(status, startsAt string) []byte {
	alert := map[string]any{
		"status": status, "fingerprint": "c0ffee1234",
		"labels":      map[string]any{"alertname": "DiskFull", "instance": "db1:9100", "severity": "critical"},
		"annotations": map[string]any{"summary": "disk full on db1"},
		"startsAt":    startsAt, "endsAt": "0001-01-01T00:00:00Z",
		"generatorURL": "http://prometheus.example/graph",
	}
	if status == "resolved" {
		alert["endsAt"] = "2026-01-01T01:00:00Z"
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "receiver": "rulebook", "status": status, "groupKey": "{}:{alertname=\"DiskFull\"}",
		"groupLabels": map[string]any{"alertname": "DiskFull"}, "commonLabels": map[string]any{"alertname": "DiskFull"},
		"commonAnnotations": map[string]any{}, "externalURL": "http://alertmanager.example", "truncatedAlerts": 0,
		"alerts": []any{alert},
	})
	return b
}

// TestTicketLifecycleFromAlertmanager: repeated notifications of one alert
// open exactly one ticket (a repeat is dropped by the source; a re-fired
// alert comments on the open ticket), and the resolution closes it.
func TestTicketLifecycleFromAlertmanager(t *testing.T) {
	dir := t.TempDir()
	bin := rbtest.BuildT(t)
	pluginDir := filepath.Join(dir, "plugins")
	build(t, filepath.Join(pluginDir, "rulebook-plugin-ticket"), "github.com/rulebook-dev/rulebook/cmd/rulebook-plugin-ticket")

	gh := &fakeGitHub{t: t, issues: map[int]*issue{}, comments: map[int][]string{}}
	srv := httptest.NewServer(gh)
	defer srv.Close()

	amAddr := rbtest.FreeAddr(t)
	rb := filepath.Join(dir, "rb.yml")
	os.WriteFile(rb, []byte(fmt.Sprintf(`- name: tickets
  sources:
    - name: am
      alertmanager: {address: %q, path: /alerts}
  rules:
    - name: open a ticket
      condition: event.alert.status == "firing"
      action:
        ticket.open:
          system: github
          url: %q
          token: "${env:GH_TOKEN}"
          repo: acme/ops
          correlation_key: "{{ event.alert.fingerprint }}"
          summary: "{{ event.alert.labels.alertname }} on {{ event.meta.hosts[0] }}"
          description: "{{ event.alert.annotations.summary }}"
          retries: 2
          delay: 100ms
    - name: resolve the ticket
      condition: event.alert.status == "resolved"
      action:
        ticket.resolve:
          system: github
          url: %q
          token: "${env:GH_TOKEN}"
          repo: acme/ops
          correlation_key: "{{ event.alert.fingerprint }}"
          retries: 2
          delay: 100ms
`, amAddr, srv.URL, srv.URL)), 0o644)

	proc := rbtest.StartWith(t, rbtest.Options{Env: []string{"GH_TOKEN=" + token}}, bin,
		"run", rb, "--data-dir", filepath.Join(dir, "data"), "--plugins-dir", pluginDir, "--log-format", "json")
	defer proc.Stop(t)
	dump := proc.Log

	post := func(body []byte) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Post("http://"+amAddr+"/alerts", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("alertmanager source did not take the notification: %v %v\n%s", resp, err, dump())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor := func(what string, ok func([]issue, map[int]int) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			issues, comments, _ := gh.snapshot()
			if ok(issues, comments) {
				return
			}
			if time.Now().After(deadline) {
				_, _, errs := gh.snapshot()
				t.Fatalf("%s: issues %+v comments %v, server errors %q\n%s", what, issues, comments, errs, dump())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	post(notification("firing", "2026-01-01T00:00:00Z"))
	waitFor("one ticket opened", func(is []issue, _ map[int]int) bool { return len(is) == 1 })
	// Alertmanager's repeat notification: the source drops it.
	post(notification("firing", "2026-01-01T00:00:00Z"))
	// The alert fired again after a flap: a new firing, the same key.
	post(notification("firing", "2026-01-01T00:10:00Z"))
	waitFor("a comment on the open ticket", func(is []issue, c map[int]int) bool { return len(is) == 1 && c[is[0].Number] == 1 })
	post(notification("resolved", "2026-01-01T00:10:00Z"))
	waitFor("the ticket closed", func(is []issue, _ map[int]int) bool { return len(is) == 1 && is[0].State == "closed" })

	issues, comments, errs := gh.snapshot()
	if len(issues) != 1 {
		t.Fatalf("%d tickets, want exactly 1", len(issues))
	}
	is := issues[0]
	if is.Title != "DiskFull on db1" || !strings.Contains(is.Body, "disk full on db1") || !strings.Contains(is.Body, "c0ffee1234") {
		t.Errorf("ticket %+v", is)
	}
	// One comment, for the re-fired alert: the repeat notification added
	// nothing, and resolve without a note only closes.
	if comments[is.Number] != 1 {
		t.Errorf("%d comments, want 1 (the re-fired alert)", comments[is.Number])
	}
	if len(errs) != 0 {
		t.Errorf("the fake GitHub rejected requests: %q", errs)
	}
}
