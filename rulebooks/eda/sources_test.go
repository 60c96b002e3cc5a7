package eda

import (
	"errors"
	"reflect"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestSourceArgs(t *testing.T) {
	cases := []struct {
		name, typ string
		in, want  map[string]any
	}{
		{"webhook github hmac and tls", "webhook",
			map[string]any{"host": "0.0.0.0", "port": 5000, "token": "t", "hmac_secret": "s", "certfile": "c.pem", "keyfile": "k.pem", "cafile": "ca.pem"},
			map[string]any{"host": "0.0.0.0", "port": 5000, "token": "t",
				"hmac": map[string]any{"secret": "s", "algorithm": "sha256", "header": "x-hub-signature-256", "prefix": "sha256="},
				"tls":  map[string]any{"cert": "c.pem", "key": "k.pem", "client_ca": "ca.pem"}}},
		{"webhook own header", "webhook",
			map[string]any{"port": 5000, "hmac_secret": "s", "hmac_algo": "SHA512", "hmac_header": "x-sig", "hmac_format": "base64"},
			map[string]any{"port": 5000, "hmac": map[string]any{"secret": "s", "algorithm": "sha512", "header": "x-sig", "encoding": "base64"}}},
		{"alertmanager", "alertmanager",
			map[string]any{"port": 5050, "data_alerts_path": "alerts", "data_host_path": "labels.host", "skip_original_data": true},
			map[string]any{"port": 5050, "host_label": "host", "notification_event": false}},
		{"kafka", "kafka",
			map[string]any{"host": "k1", "port": 9093, "topic": "t", "group_id": "g", "offset": "latest", "encoding": "utf-8",
				"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u", "sasl_plain_password": "p",
				"check_hostname": false, "cafile": "ca.pem"},
			map[string]any{"brokers": "k1:9093", "topic": "t", "group_id": "g", "offset": "latest",
				"tls":  map[string]any{"ca": "ca.pem", "insecure_skip_verify": true},
				"sasl": map[string]any{"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"}}},
		{"kafka ssl only", "kafka", map[string]any{"host": "k1", "topic": "t", "security_protocol": "SSL"},
			map[string]any{"brokers": "k1:9092", "topic": "t", "tls": true}},
		{"native untouched", "range", map[string]any{"limit": 3}, map[string]any{"limit": 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SourceArgs(tc.typ, tc.in, false)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
	for _, bad := range []struct {
		typ  string
		in   map[string]any
		path string
	}{
		{"webhook", map[string]any{"hmac_algo": "sha256"}, "hmac_algo"},
		{"webhook", map[string]any{"password": "x", "keyfile": "k"}, "password"},
		{"alertmanager", map[string]any{"data_alerts_path": "data.alerts"}, "data_alerts_path"},
		{"alertmanager", map[string]any{"data_host_path": "annotations.host"}, "data_host_path"},
		{"kafka", map[string]any{"host": "k", "brokers": "x:1"}, "host"},
		{"kafka", map[string]any{"host": "k", "encoding": "latin-1"}, "encoding"},
		{"kafka", map[string]any{"host": "k", "security_protocol": "TLS"}, "security_protocol"},
	} {
		_, err := SourceArgs(bad.typ, bad.in, false)
		var ae *engine.ArgError
		if !errors.As(err, &ae) || len(ae.Path) != 1 || ae.Path[0] != bad.path {
			t.Errorf("%s %v: err %v, want an error at %q", bad.typ, bad.in, err, bad.path)
		}
	}
}

func TestSourceArgsEDAStyleServesEveryPath(t *testing.T) {
	got, _ := SourceArgs("webhook", map[string]any{"port": 5000}, true)
	if got["path"] != "*" {
		t.Errorf("EDA webhook path %v, want *", got["path"])
	}
	got, _ = SourceArgs("webhook", map[string]any{"port": 5000, "path": "/x"}, true)
	if got["path"] != "/x" {
		t.Errorf("explicit path replaced: %v", got["path"])
	}
	got, _ = SourceArgs("webhook", map[string]any{"port": 5000}, false)
	if _, ok := got["path"]; ok {
		t.Errorf("native webhook got a path: %v", got["path"])
	}
}
