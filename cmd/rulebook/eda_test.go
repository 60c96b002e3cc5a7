package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const edaRangePlugin = `import asyncio
from typing import Any, Dict


async def main(queue: asyncio.Queue, args: Dict[str, Any]):
    delay = args.get("delay", 0)
    for i in range(int(args["limit"])):
        await queue.put(dict(i=i))
        await asyncio.sleep(delay)
`

// cliBuffer is written by several goroutines (the loggers of a run).
type cliBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *cliBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *cliBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runConcurrentCLI is runCLI for commands that log from several goroutines.
func runConcurrentCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb cliBuffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func needPython3(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (test/setup.sh installs it)")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A source that is not built in runs NAME.py from --source-dir (or -S), or
// ns.coll.NAME from the collections path; its events fire rules.
func TestPythonSourcePluginFiresRules(t *testing.T) {
	needPython3(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "plugins", "counter.py"), edaRangePlugin)
	colls := filepath.Join(dir, "collections")
	writeFile(t, filepath.Join(colls, "ansible_collections", "acme", "ops", "extensions", "eda", "plugins", "event_source", "ticks.py"), edaRangePlugin)
	t.Setenv("ANSIBLE_COLLECTIONS_PATH", colls)
	rb := filepath.Join(dir, "rb.yml")
	writeFile(t, rb, `- name: plugins
  hosts: all
  sources:
    - counter:
        limit: 3
    - name: collection ticks
      acme.ops.ticks:
        limit: 2
  rules:
    - name: third count
      condition: event.i == 2
      action:
        print_event: {}
    - name: second tick
      condition: event.i == 1 && event.meta.source.type == "acme.ops.ticks"
      action:
        print_event: {}
`)
	for _, flagName := range []string{"--source-dir", "-S"} {
		code, out, errs := runCLI(t, "validate", rb, flagName, filepath.Join(dir, "plugins"))
		if code != 0 {
			t.Fatalf("validate %s: %d\n%s%s", flagName, code, out, errs)
		}
	}
	// Without --source-dir the plugin is unknown, with file:line:col.
	code, out, _ := runCLI(t, "validate", rb)
	if code != 1 || !strings.Contains(out, "rb.yml:4:7:") || !strings.Contains(out, `unknown source type "counter"`) {
		t.Fatalf("validate without --source-dir: %d\n%s", code, out)
	}

	code, out, errs := runConcurrentCLI(t, "run", rb, "-S", filepath.Join(dir, "plugins"), "--data-dir", filepath.Join(dir, "data"), "--log-format", "json")
	if code != 0 {
		t.Fatalf("run: %d\n%s", code, errs)
	}
	if !strings.Contains(out, `"i":2`) || !strings.Contains(out, `"name":"counter"`) {
		t.Fatalf("the counter plugin's event i=2 did not fire print_event:\n%s", out)
	}
	if !strings.Contains(out, `"type":"acme.ops.ticks"`) {
		t.Fatalf("the collection plugin's event did not fire print_event:\n%s", out)
	}
	if strings.Count(out, `"i":`) != 2 {
		t.Fatalf("want exactly two printed events:\n%s", out)
	}
}

// run_job_template through `rulebook run`: the controller flags, the
// launch with ansible_eda, artifacts posted back as an event that fires
// another rule, and the job's id and URL in the audit trail.
func TestJobTemplateThroughRun(t *testing.T) {
	dir := t.TempDir()
	const token = "tok-3f9a1c"
	var mu sync.Mutex
	var launched map[string]any
	var unauthorized, launches int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			unauthorized++
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"detail":"Authentication credentials were not provided."}`)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v2/job_templates/":
			io.WriteString(w, `{"count":1,"next":null,"previous":null,"results":[{"id":9,"name":"Restart","type":"job_template",
				"related":{"launch":"/api/v2/job_templates/9/launch/"},"summary_fields":{"organization":{"id":1,"name":"Default"}},
				"ask_limit_on_launch":true,"ask_variables_on_launch":true}]}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v2/job_templates/9/launch/":
			_ = json.NewDecoder(r.Body).Decode(&launched)
			launches++
			w.WriteHeader(http.StatusCreated)
			if launches == 1 {
				io.WriteString(w, `{"job":76,"ignored_fields":{},"id":76,"type":"job","url":"/api/v2/jobs/76/","status":"pending"}`)
				return
			}
			io.WriteString(w, `{"job":77,"ignored_fields":{},"id":77,"type":"job","url":"/api/v2/jobs/77/","status":"pending"}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v2/jobs/76/":
			io.WriteString(w, `{"id":76,"status":"failed","failed":true,"artifacts":{}}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v2/jobs/77/":
			io.WriteString(w, `{"id":77,"status":"successful","failed":false,"artifacts":{"restarted":"web1"}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"detail":"Not found."}`)
		}
	}))
	defer srv.Close()
	rb := filepath.Join(dir, "rb.yml")
	writeFile(t, rb, `- name: ops
  hosts: all
  sources:
    - range:
        limit: 1
  rules:
    - name: restart
      condition: event.i == 0
      action:
        run_job_template:
          name: Restart
          organization: Default
          job_args:
            extra_vars:
              reason: test
          post_events: true
          ruleset: capacity
          retries: 1
          delay: 10ms
    - name: not here
      condition: event.restarted == "web1"
      action:
        debug: {msg: "artifacts went to the wrong ruleset"}
- name: capacity
  hosts: all
  sources:
    - range:
        limit: 0
  rules:
    - name: restarted
      condition: event.restarted == "web1"
      action:
        print_event: {}
`)
	t.Setenv("EDA_CONTROLLER_TOKEN", token)
	data := filepath.Join(dir, "data")
	code, out, errs := runConcurrentCLI(t, "run", rb, "--data-dir", data, "--controller-url", srv.URL, "--log-format", "json", "--log-level", "debug")
	if code != 0 {
		t.Fatalf("run: %d\n%s", code, errs)
	}
	if strings.Contains(errs, token) {
		t.Fatal("the controller token is in the log")
	}
	mu.Lock()
	ev, _ := launched["extra_vars"].(map[string]any)
	eda, _ := ev["ansible_eda"].(map[string]any)
	mu.Unlock()
	if ev["reason"] != "test" || eda["rule"] != "restart" || eda["event"] == nil {
		t.Fatalf("launch body %v", launched)
	}
	if unauthorized != 0 {
		t.Fatalf("%d requests without the token", unauthorized)
	}
	if launches != 2 {
		t.Fatalf("%d launches; want the failed job relaunched once (retries: 1)", launches)
	}
	if !strings.Contains(out, `"restarted":"web1"`) || strings.Contains(out+errs, "wrong ruleset") {
		t.Fatalf("the job's artifacts were not posted back as an event to ruleset capacity:\n%s", out)
	}
	code, audit, errs := runCLI(t, "audit", "--data-dir", data, "--format", "json")
	if code != 0 {
		t.Fatalf("audit: %d %s", code, errs)
	}
	if !strings.Contains(audit, `"job_id":76`) || !strings.Contains(audit, `job 76 failed`) ||
		!strings.Contains(audit, `"job_id":77`) || !strings.Contains(audit, srv.URL+`/#/jobs/playbook/77/details`) {
		t.Fatalf("the job's id and URL are not in the audit trail:\n%s", audit)
	}
	if strings.Contains(audit, token) {
		t.Fatal("the controller token is in the audit trail")
	}

	// Without a controller, a rulebook that launches templates does not start.
	t.Setenv("EDA_CONTROLLER_TOKEN", "")
	code, _, errs = runConcurrentCLI(t, "run", rb, "--data-dir", filepath.Join(dir, "data2"))
	if code != 1 || !strings.Contains(errs, "--controller-url") || !strings.Contains(errs, "rb.yml:10:9") {
		t.Fatalf("run without a controller: %d\n%s", code, errs)
	}
}

func TestControllerSettings(t *testing.T) {
	env := map[string]string{"EDA_CONTROLLER_URL": "https://env.example", "EDA_CONTROLLER_TOKEN": "${env:TOKEN_SRC}",
		"EDA_CONTROLLER_USERNAME": "eda", "EDA_CONTROLLER_PASSWORD": "${env:TOKEN_SRC}",
		"EDA_CONTROLLER_SSL_VERIFY": "no", "EDA_JOB_TEMPLATE_REFRESH_DELAY": "2.5"}
	t.Setenv("TOKEN_SRC", "from-env-ref")
	getenv := func(k string) string { return env[k] }
	c, err := (&controllerFlags{}).controller(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://env.example" || c.Token != "from-env-ref" || c.SSLVerify != "no" || c.PollInterval != 2500*time.Millisecond ||
		c.Username != "eda" || c.Password != "from-env-ref" {
		t.Fatalf("from EDA's variables: %+v", c)
	}
	c, err = (&controllerFlags{url: "https://flag.example", token: "flag-token", sslVerify: "yes"}).controller(getenv)
	if err != nil || c.URL != "https://flag.example" || c.Token != "flag-token" || c.SSLVerify != "yes" {
		t.Fatalf("flags win: %+v %v", c, err)
	}
	env["EDA_CONTROLLER_TOKEN"] = "${env:NO_SUCH_VARIABLE_H18B}"
	if _, err := (&controllerFlags{}).controller(getenv); err == nil || !strings.Contains(err.Error(), "--controller-token") {
		t.Fatalf("unresolvable token reference: %v", err)
	}
	env["EDA_CONTROLLER_TOKEN"] = ""
	env["EDA_JOB_TEMPLATE_REFRESH_DELAY"] = "soon"
	if _, err := (&controllerFlags{}).controller(getenv); err == nil || !strings.Contains(err.Error(), "EDA_JOB_TEMPLATE_REFRESH_DELAY") {
		t.Fatalf("bad refresh delay: %v", err)
	}
}
