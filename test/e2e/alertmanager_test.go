package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// startAlertmanager runs the real Alertmanager with one webhook receiver
// pointing at webhookURL (with a bearer token when token is set), grouping
// fast and repeating rarely, and returns its address.
func startAlertmanager(t *testing.T, dir, webhookURL, token string) string {
	t.Helper()
	bin := need(t, "prometheus-alertmanager")
	port := rbtest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	auth := ""
	if token != "" {
		auth = "        http_config:\n          authorization:\n            credentials: " + strconv.Quote(token) + "\n"
	}
	cfg := fmt.Sprintf(`route:
  receiver: rulebook
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: rulebook
    webhook_configs:
      - url: %q
        send_resolved: true
%s`, webhookURL, auth)
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfgPath, cfg)
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.path="+filepath.Join(dir, "alertmanager-data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=debug",
	)
	p := startProc(t, "alertmanager", cmd)
	p.waitHTTP(t, "http://"+addr+"/-/ready", 30*time.Second)
	return addr
}

// startPrometheus runs the real Prometheus scraping target every second,
// with one alerting rule, sending alerts to the Alertmanager at amAddr.
func startPrometheus(t *testing.T, dir, target, amAddr, rule string) string {
	t.Helper()
	bin := need(t, "prometheus")
	port := rbtest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rulesPath := filepath.Join(dir, "rules.yml")
	writeFile(t, rulesPath, rule)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
rule_files: [%q]
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [%q]
`, amAddr, rulesPath, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfgPath, cfg)
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address="+addr,
	)
	p := startProc(t, "prometheus", cmd)
	p.waitHTTP(t, "http://"+addr+"/-/ready", 30*time.Second)
	return addr
}

const appRule = `groups:
  - name: app
    rules:
      - alert: AppUnhealthy
        expr: app_healthy == 0
        for: 0s
        labels:
          severity: critical
        annotations:
          summary: "app on {{ $labels.instance }} reports unhealthy"
`

const promLoopRulebook = `
- name: remediate
  hosts: all
  sources:
    - name: prometheus
      alertmanager:
        address: 127.0.0.1:%[1]d
        path: /alerts
        token: ${env:E2E_AM_TOKEN}
  rules:
    - name: restart unhealthy app
      condition: event.alert.labels.alertname == "AppUnhealthy" && event.alert.status == "firing"
      action:
        run_playbook:
          name: %[2]s
          inventory: "localhost,"
          limit: localhost
          connection: local
          extra_vars:
            out: %[3]s/remediated
    - name: app recovered
      condition: event.alert.labels.alertname == "AppUnhealthy" && event.alert.status == "resolved"
      action:
        run_playbook:
          name: %[2]s
          inventory: "localhost,"
          limit: localhost
          connection: local
          extra_vars:
            out: %[3]s/recovered
`

// TestPrometheusAlertmanagerLoop: Prometheus scrapes a target that reports
// itself unhealthy, the alert goes through Alertmanager to the engine, a
// playbook remediates; when the target recovers, the resolution runs a
// second rule.
func TestPrometheusAlertmanagerLoop(t *testing.T) {
	need(t, "ansible-playbook")
	need(t, "prometheus")
	need(t, "prometheus-alertmanager")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	var healthy atomic.Int32 // 0: unhealthy
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP app_healthy Whether the app can serve.\n# TYPE app_healthy gauge\napp_healthy %d\n", healthy.Load())
	}))
	t.Cleanup(target.Close)
	instance := strings.TrimPrefix(target.URL, "http://")

	const token = "am-e2e-token"
	port := rbtest.FreePort(t)
	rb := startRulebook(t, dir, fmt.Sprintf(promLoopRulebook, port, testdata(t, "record_alert.yml"), out),
		engineOptions{env: []string{"E2E_AM_TOKEN=" + token}})
	rb.waitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	am := startAlertmanager(t, dir, fmt.Sprintf("http://127.0.0.1:%d/alerts", port), token)
	startPrometheus(t, dir, instance, am, appRule)

	wantFiring := instance + " firing 127.0.0.1\n"
	waitFor(t, "the firing alert's playbook", 90*time.Second, func() bool { return readFile(filepath.Join(out, "remediated")) == wantFiring })

	healthy.Store(1)
	wantResolved := instance + " resolved 127.0.0.1\n"
	waitFor(t, "the resolved alert's playbook", 90*time.Second, func() bool { return readFile(filepath.Join(out, "recovered")) == wantResolved })
	if got := readFile(filepath.Join(out, "remediated")); got != wantFiring {
		t.Errorf("remediated rewritten: %q", got)
	}

	rb.stop(t, 60*time.Second)
	entries := audit(t, rb.dataDir)
	fired, recovered := firingsOf(entries, "restart unhealthy app"), firingsOf(entries, "app recovered")
	if len(fired) != 1 || len(recovered) != 1 || len(entries) != 2 {
		t.Fatalf("firings: %d restart, %d recovered, %d in all; want 1, 1, 2", len(fired), len(recovered), len(entries))
	}
	requireSucceeded(t, fired[0])
	requireSucceeded(t, recovered[0])
	if !fired[0].Firing.Time.Before(recovered[0].Firing.Time) {
		t.Errorf("resolution fired at %s, before the alert at %s", recovered[0].Firing.Time, fired[0].Firing.Time)
	}
}

const retryRulebook = `
- name: retry
  hosts: all
  sources:
    - name: prometheus
      alertmanager:
        address: 127.0.0.1:%[1]d
        path: /alerts
    - name: plug
      webhook:
        address: 127.0.0.1:%[1]d
        path: /plug
  rules:
    - name: plug the engine
      condition: event.payload.plug == true
      action:
        print_event: {}
    - name: handle alert
      condition: event.alert.labels.alertname == "DiskFull" && event.alert.status == "firing"
      action:
        run_command:
          argv: ["/bin/sh", "-c", "echo \"$1\" >> \"$2\"", "sh", "{{ event.meta.hosts[0] }}", "%[2]s"]
`

// TestAlertmanagerRetriesWhileBacklogFull: the engine's backlog bound is 1
// and the engine is held on one event (its print_event writes to a stdout
// pipe nobody reads yet), so the alertmanager source answers 503; the real
// Alertmanager retries, and once the engine drains the alert is processed,
// once.
func TestAlertmanagerRetriesWhileBacklogFull(t *testing.T) {
	need(t, "prometheus-alertmanager")
	dir := t.TempDir()
	out := filepath.Join(dir, "handled")
	port := rbtest.FreePort(t)

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdoutR.Close() })
	rb := startRulebook(t, dir, fmt.Sprintf(retryRulebook, port, out),
		engineOptions{stdout: stdoutW, args: []string{"--max-backlog", "1", "--retry-after", "1s"}})
	stdoutW.Close()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	rb.waitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)

	// The plug: printing it fills the pipe (64 KiB) and blocks the engine.
	plug, _ := json.Marshal(map[string]any{"plug": true, "pad": strings.Repeat("x", 256<<10)})
	if st := postJSON(t, base+"/plug", plug); st != 200 {
		t.Fatalf("plug answered %d", st)
	}
	waitFor(t, "the backlog to be full", 20*time.Second, func() bool {
		return postJSON(t, base+"/plug", []byte(`{"probe": true}`)) == 503
	})

	am := startAlertmanager(t, dir, base+"/alerts", "")
	alerts := fmt.Sprintf(`[{"labels":{"alertname":"DiskFull","instance":"db1:9100","severity":"warning"},"annotations":{"summary":"disk full"},"startsAt":%q,"generatorURL":"http://e2e/graph"}]`,
		time.Now().UTC().Format(time.RFC3339))
	if st := postJSON(t, "http://"+am+"/api/v2/alerts", []byte(alerts)); st != 200 {
		t.Fatalf("alertmanager refused the alert: %d", st)
	}

	// Alertmanager is told 503 at least twice: its first attempt and a retry.
	refusals := func() int {
		n := 0
		for _, s := range rb.out.all() {
			var rec map[string]any
			if json.Unmarshal([]byte(s), &rec) == nil && rec["message"] == "backlog full: answered 503" && rec["source"] == "prometheus" {
				n++
			}
		}
		return n
	}
	waitFor(t, "alertmanager to be refused twice", 60*time.Second, func() bool { return refusals() >= 2 })
	if readFile(out) != "" {
		t.Fatal("the alert was handled while the backlog was full")
	}
	if n := amFailedNotifications(t, am); n < 1 {
		t.Errorf("alertmanager counts %v failed webhook requests, want >= 1", n)
	}

	// Drain: the engine goes on, the backlog empties, a retry gets through.
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	waitFor(t, "the alert to be handled", 60*time.Second, func() bool { return readFile(out) == "db1\n" })

	rb.stop(t, 60*time.Second)
	if got := readFile(out); got != "db1\n" {
		t.Errorf("handled file %q, want the alert once", got)
	}
	entries := audit(t, rb.dataDir)
	handled := firingsOf(entries, "handle alert")
	if len(handled) != 1 {
		t.Fatalf("%d firings of the alert rule, want 1", len(handled))
	}
	requireSucceeded(t, handled[0])
	if n := len(firingsOf(entries, "plug the engine")); n != 1 {
		t.Errorf("%d plug firings, want 1 (probes must have been refused)", n)
	}
}

func postJSON(t *testing.T, url string, body []byte, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// amFailedNotifications reads Alertmanager's own count of failed webhook
// notification requests (attempts) from its /metrics.
func amFailedNotifications(t *testing.T, am string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + am + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "alertmanager_notification_requests_failed_total{") && strings.Contains(line, `integration="webhook"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return -1
}
