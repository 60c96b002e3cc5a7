package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks/eda"
	"github.com/rulebook-dev/rulebook/sources/httpingest/httpingesttest"
	"github.com/rulebook-dev/rulebook/sources/webhook"
)

// TestEDASourceArgumentsValidate: sources written with ansible.eda's names
// and arguments pass the real sources' checks.
func TestEDASourceArgumentsValidate(t *testing.T) {
	dir := t.TempDir()
	rb := filepath.Join(dir, "eda.yml")
	os.WriteFile(rb, []byte(`- name: eda
  hosts: all
  sources:
    - ansible.eda.webhook:
        host: 0.0.0.0
        port: 5000
        token: secret
        hmac_secret: s3cret
        hmac_algo: sha256
    - eda.builtin.alertmanager:
        host: 127.0.0.1
        port: 5050
        data_alerts_path: alerts
        data_host_path: labels.instance
        skip_original_data: true
    - ansible.eda.kafka:
        host: localhost
        port: 9092
        topic: events
        group_id: eda
        offset: earliest
        encoding: utf-8
        security_protocol: SASL_PLAINTEXT
        sasl_mechanism: PLAIN
        sasl_plain_username: user
        sasl_plain_password: pass
    - eda.builtin.range:
        limit: 5
        delay: 0.5
    - ansible.eda.generic:
        payload: {a: 1}
        event_delay: 1
        shutdown_after: 2
    - ansible.eda.journald:
        match: PRIORITY=6
    - name: all entries
      eda.builtin.journald:
        match: ALL
  rules:
    - name: r
      condition: event.a is defined
      action:
        debug:
`), 0o644)
	if code, out, errs := runCLI(t, "validate", rb); code != 0 {
		t.Fatalf("validate: exit %d: %s %s", code, out, errs)
	}
	os.WriteFile(rb, []byte("- name: eda\n  sources:\n    - ansible.eda.alertmanager:\n        port: 5050\n        data_host_path: annotations.host\n  rules:\n    - {name: r, condition: event.a is defined, action: {debug: }}\n"), 0o644)
	code, out, _ := runCLI(t, "validate", rb)
	if code != 1 || !strings.Contains(out, rb+`:5:9: ruleset "eda": sources[0]: alertmanager: data_host_path: want labels.NAME (the alert label naming the host), got annotations.host`) {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// TestEDAWebhookHMAC: ansible.eda.webhook's hmac_secret/hmac_algo verify a
// GitHub-style signature (X-Hub-Signature-256: sha256=<hex>) in the real
// webhook source, which serves any path as EDA's does.
func TestEDAWebhookHMAC(t *testing.T) {
	args, err := eda.SourceArgs("webhook", map[string]any{"hmac_secret": "s3cret", "hmac_algo": "sha256"}, true)
	if err != nil {
		t.Fatal(err)
	}
	j := &httpingesttest.Journal{}
	srv := httpingesttest.Start(t, webhook.Spec, engine.SourceConfig{Name: "hooks", Type: "webhook", Ruleset: "rs", Clock: engine.SystemClock{}, Log: zerolog.Nop()}, args, j)
	body := `{"action":"opened"}`
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(body))
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if r := httpingesttest.Send(t, "POST", srv.Addr+"/endpoint", body, nil, "Content-Type", "application/json", "X-Hub-Signature-256", sig); r.Status != 200 {
		t.Fatalf("signed request: %d %s", r.Status, r.Raw)
	}
	if r := httpingesttest.Send(t, "POST", srv.Addr+"/endpoint", body, nil, "Content-Type", "application/json", "X-Hub-Signature-256", "sha256=00"); r.Status != 401 {
		t.Fatalf("bad signature: %d %s", r.Status, r.Raw)
	}
	if r := httpingesttest.Send(t, "POST", srv.Addr+"/other/path", body, nil, "Content-Type", "application/json", "X-Hub-Signature-256", sig); r.Status != 200 {
		t.Fatalf("signed request on another path: %d %s", r.Status, r.Raw)
	}
	acc := j.Accepted()
	if len(acc) != 2 {
		t.Fatalf("%d events accepted, want 2", len(acc))
	}
	if ep := engine.Meta(acc[1].Event)["endpoint"]; ep != "/other/path" {
		t.Errorf("meta.endpoint %v", ep)
	}
}
