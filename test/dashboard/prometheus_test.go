package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/metrics"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPrometheusScrape has a real Prometheus scrape the admin listener's
// /metrics with the bearer token, and reads the values back through its
// query API.
func TestPrometheusScrape(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no prometheus on PATH (test/setup.sh installs it)")
		}
		t.Skip("skipping: no prometheus on PATH (Debian package prometheus)")
	}
	const token = "scrape-token"
	m := metrics.New()
	m.EventReceived("ops/alerts", metrics.OutcomeAccepted)
	m.EventReceived("ops/alerts", metrics.ReasonAuth)
	m.Firing("ops", "restart on down")
	m.SetBacklogFunc(func() float64 { return 3 })
	m.ActionResult(&engine.InvocationState{
		Invocation: &engine.Invocation{Action: "run_playbook"}, Status: engine.StatusSucceeded,
		Attempts: []engine.Attempt{{N: 1, Status: engine.Succeeded, Duration: 1200 * time.Millisecond}},
	})
	srv, err := admin.New(admin.Config{Address: "127.0.0.1:0", Token: token, Backend: newBackend(),
		Metrics: m.Handler(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rulebook
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
`, token, srv.Addr().String())
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	}()

	query := func(q string) (string, bool) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", port, url.QueryEscape(q)))
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) != 1 {
			return "", false
		}
		v, _ := r.Data.Result[0].Value[1].(string)
		return v, true
	}
	want := map[string]string{
		`up{job="rulebook"}`: "1",
		`rulebook_rule_firings_total{ruleset="ops",rule="restart on down"}`:                         "1",
		`rulebook_events_rejected_total{source="ops/alerts",reason="auth"}`:                         "1",
		`rulebook_events_received_total{source="ops/alerts"}`:                                       "2",
		`rulebook_journal_backlog`:                                                                  "3",
		`rulebook_action_invocation_duration_seconds_sum{action="run_playbook",result="succeeded"}`: "1.2",
	}
	deadline := time.Now().Add(60 * time.Second)
	for q, w := range want {
		for {
			got, ok := query(q)
			if ok && got == w {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %q (found %v), want %s", q, got, ok, w)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
