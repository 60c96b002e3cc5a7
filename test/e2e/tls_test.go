package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/internal/testcerts"
	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// pki is a throwaway CA with files for one server and two clients.
type pki struct {
	ca                    string // CA certificate file
	serverCert, serverKey string
	clientCert, clientKey string // CN alertmanager
	otherCert, otherKey   string // CN intruder, same CA
}

func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	ca := testcerts.NewCA(t, "e2e ca")
	p := pki{ca: testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)}
	p.serverCert, p.serverKey = ca.Server(t, "rulebook").WriteFiles(t, dir, "rulebook")
	p.clientCert, p.clientKey = ca.Client(t, "alertmanager").WriteFiles(t, dir, "alertmanager")
	p.otherCert, p.otherKey = ca.Client(t, "intruder").WriteFiles(t, dir, "intruder")
	return p
}

const mtlsRulebook = `
- name: mtls
  hosts: all
  sources:
    - name: alertmanager
      alertmanager:
        address: 127.0.0.1:%[1]d
        path: /alerts
        notification_event: true
        tls:
          cert: %[2]s
          key: %[3]s
          client_ca: %[4]s
          client_names: [alertmanager]
  rules:
    - name: notification
      condition: event.notification.status == "firing"
      action:
        run_command:
          argv: ["/bin/sh", "-c", "echo \"$1\" >> \"$2\"", "sh", "notification {{ len(event.notification.alerts) }} {{ event.meta.hosts | join(',') }}", "%[5]s"]
    - name: alert
      condition: event.alert.status == "firing" && event.alert.labels.alertname == "CertExpiring"
      action:
        run_command:
          argv: ["/bin/sh", "-c", "echo \"$1\" >> \"$2\"", "sh", "alert {{ event.alert.labels.instance }} {{ event.group.receiver }}", "%[5]s"]
`

// TestAlertmanagerMutualTLS: the real Alertmanager reaches the source over
// HTTPS with a client certificate; a client without one, or with a
// certificate of another name, is refused. With notification_event the
// notification and its alerts each run their rule.
func TestAlertmanagerMutualTLS(t *testing.T) {
	amBin := need(t, "prometheus-alertmanager")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := newPKI(t, dir)
	port := rbtest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rb := startRulebook(t, dir, fmt.Sprintf(mtlsRulebook, port, p.serverCert, p.serverKey, p.ca, out), engineOptions{})
	rb.waitListening(t, addr, 20*time.Second)

	url := "https://" + addr + "/alerts"
	body := []byte(`{"version":"4","status":"firing","receiver":"x","alerts":[{"status":"firing","labels":{"alertname":"Probe"},"startsAt":"2026-11-29T01:00:00Z"}]}`)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(readFile(p.ca)))
	client := func(cert, key string) *http.Client {
		cfg := &tls.Config{RootCAs: pool}
		if cert != "" {
			c, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	if resp, err := client("", "").Post(url, "application/json", strings.NewReader(string(body))); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got %d", resp.StatusCode)
	}
	resp, err := client(p.otherCert, p.otherKey).Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("client with another name: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("client named intruder got %d, want 403", resp.StatusCode)
	}

	amPort := rbtest.FreePort(t)
	amAddr := fmt.Sprintf("127.0.0.1:%d", amPort)
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfgPath, fmt.Sprintf(`route:
  receiver: rulebook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: rulebook
    webhook_configs:
      - url: %q
        http_config:
          tls_config:
            ca_file: %q
            cert_file: %q
            key_file: %q
`, url, p.ca, p.clientCert, p.clientKey))
	am := startProc(t, "alertmanager", exec.Command(amBin, "--config.file="+cfgPath,
		"--storage.path="+filepath.Join(dir, "alertmanager-data"), "--web.listen-address="+amAddr, "--cluster.listen-address="))
	am.waitHTTP(t, "http://"+amAddr+"/-/ready", 30*time.Second)

	alerts := fmt.Sprintf(`[
	  {"labels":{"alertname":"CertExpiring","instance":"[2001:db8::7]:443"},"startsAt":%[1]q},
	  {"labels":{"alertname":"CertExpiring","instance":"web1.example.com:443"},"startsAt":%[1]q}]`, time.Now().UTC().Format(time.RFC3339))
	if st := postJSON(t, "http://"+amAddr+"/api/v2/alerts", []byte(alerts)); st != 200 {
		t.Fatalf("alertmanager refused the alerts: %d", st)
	}
	want := []string{
		"alert [2001:db8::7]:443 rulebook",
		"alert web1.example.com:443 rulebook",
		"notification 2 2001:db8::7,web1.example.com",
	}
	got := func() []string {
		lines := strings.Split(strings.TrimSpace(readFile(out)), "\n")
		sort.Strings(lines)
		return lines
	}
	waitFor(t, "the notification and both alerts to run", 60*time.Second, func() bool { return strings.Join(got(), "\n") == strings.Join(want, "\n") })

	rb.stop(t, 60*time.Second)
	entries := audit(t, rb.dataDir)
	if n, m := len(firingsOf(entries, "notification")), len(firingsOf(entries, "alert")); n != 1 || m != 2 {
		t.Fatalf("%d notification and %d alert firings, want 1 and 2", n, m)
	}
	for _, e := range entries {
		requireSucceeded(t, e)
	}
}
