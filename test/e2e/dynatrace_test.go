package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

const dynatraceRulebook = `
- name: problems
  hosts: all
  sources:
    - name: dynatrace
      dynatrace:
        address: 127.0.0.1:%[1]d
        path: /dynatrace
        token: ${env:E2E_DT_TOKEN}
  rules:
    - name: problem opened
      condition: event.problem.State == "OPEN" && "team:web" in event.problem.Tags
      action:
        run_command:
          argv: ["/bin/sh", "-c", "echo \"$1\" >> \"$2\"", "sh", "open {{ event.problem.ProblemID }} {{ event.meta.hosts | join(',') }}", "%[2]s"]
    - name: problem resolved
      condition: event.problem.State == "RESOLVED"
      action:
        run_command:
          argv: ["/bin/sh", "-c", "echo \"$1\" >> \"$2\"", "sh", "resolved {{ event.problem.ProblemID }}", "%[2]s"]
`

// dynatraceNotification is the custom integration's payload as its
// documentation shows it, filled in as Dynatrace fills it: {ImpactedEntities}
// and {ProblemDetailsJSON} unquoted (JSON), {Tags} a comma-separated string.
func dynatraceNotification(state string) []byte {
	status := map[string]string{"OPEN": "OPEN", "RESOLVED": "CLOSED"}[state]
	return []byte(fmt.Sprintf(`{
  "ImpactedEntities": [{"type": "HOST", "name": "web1.example.com", "entity": "HOST-8A2B3C4D5E6F7081"}, {"type": "SERVICE", "name": "checkout", "entity": "SERVICE-1A2B3C4D5E6F7081"}],
  "ImpactedEntity": "web1.example.com, checkout",
  "PID": "-4624306584474474451_1732842000000V2",
  "ProblemDetailsHTML": "<h1>CPU saturation</h1>",
  "ProblemDetailsJSON": {"id": "-4624306584474474451_1732842000000V2", "displayId": "P-2611", "status": %q},
  "ProblemID": "P-2611",
  "ProblemImpact": "INFRASTRUCTURE",
  "ProblemSeverity": "RESOURCE_CONTENTION",
  "ProblemTitle": "CPU saturation",
  "ProblemURL": "https://abc12345.live.dynatrace.com/#problems/problemdetails;pid=-4624306584474474451_1732842000000V2",
  "State": %q,
  "Tags": "env:prod, team:web"
}`, status, state))
}

// TestDynatraceProblemNotifications: OPEN, then RESOLVED, then RESOLVED
// again (a repeat) reach the rules, the repeat fires nothing; a request
// without the token is refused. Dynatrace itself is a SaaS that cannot run
// here, so the test sends what its documentation specifies.
func TestDynatraceProblemNotifications(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "problems")
	port := rbtest.FreePort(t)
	const token = "dt0c01.e2e-token"
	rb := startRulebook(t, dir, fmt.Sprintf(dynatraceRulebook, port, out), engineOptions{env: []string{"E2E_DT_TOKEN=" + token}})
	url := fmt.Sprintf("http://127.0.0.1:%d/dynatrace", port)
	rb.waitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)

	auth := []string{"Authorization", "Bearer " + token}
	steps := []struct {
		name    string
		body    []byte
		headers []string
		status  int
		answer  string
	}{
		{"no token", dynatraceNotification("OPEN"), nil, 401, ""},
		{"wrong token", dynatraceNotification("OPEN"), []string{"Authorization", "Bearer nope"}, 401, ""},
		{"open", dynatraceNotification("OPEN"), auth, 200, "accepted"},
		{"resolved", dynatraceNotification("RESOLVED"), auth, 200, "accepted"},
		{"resolved again", dynatraceNotification("RESOLVED"), auth, 200, "duplicate"},
		{"not a problem notification", []byte(`{"State":"OPEN"}`), auth, 400, ""},
	}
	for _, s := range steps {
		status, answer := postAnswer(t, url, s.body, s.headers...)
		if status != s.status || (s.answer != "" && answer["status"] != s.answer) {
			t.Errorf("%s: answered %d %v, want %d %s", s.name, status, answer, s.status, s.answer)
		}
	}
	want := "open P-2611 web1.example.com\nresolved P-2611\n"
	waitFor(t, "both problem rules to run", 60*time.Second, func() bool { return readFile(out) == want })

	rb.stop(t, 60*time.Second)
	if got := readFile(out); got != want {
		t.Errorf("actions wrote %q, want %q", got, want)
	}
	entries := audit(t, rb.dataDir)
	opened, resolved := firingsOf(entries, "problem opened"), firingsOf(entries, "problem resolved")
	if len(opened) != 1 || len(resolved) != 1 || len(entries) != 2 {
		t.Fatalf("firings: %d opened, %d resolved, %d in all; want 1, 1, 2", len(opened), len(resolved), len(entries))
	}
	requireSucceeded(t, opened[0])
	requireSucceeded(t, resolved[0])
}

func postAnswer(t *testing.T, url string, body []byte, headers ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Dynatrace")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var answer map[string]any
	_ = json.Unmarshal(b, &answer)
	return resp.StatusCode, answer
}
