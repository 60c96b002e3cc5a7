package kafka

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestCheck(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"brokers": "127.0.0.1:9092", "topic": "events"}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		args    map[string]any
		wantKey string // path of the *engine.ArgError; "" for no error
		wantMsg string
	}{
		{"minimal", base(nil), "", ""},
		{"broker list", base(map[string]any{"brokers": []any{"a:1", "b:2"}}), "", ""},
		{"topics list", base(map[string]any{"topic": nil, "topics": []any{"a", "b"}}), "", ""},
		{"topic pattern", base(map[string]any{"topic": nil, "topic_pattern": "^alerts-.*"}), "", ""},
		{"everything", base(map[string]any{
			"group_id": "g", "offset": "latest", "format": "text", "dead_letter_topic": "dlq", "dedupe": false,
			"tls":             map[string]any{"ca": "/ca.pem", "cert": "/c.pem", "key": "/k.pem", "insecure_skip_verify": true},
			"sasl":            map[string]any{"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"},
			"session_timeout": "10s", "heartbeat_interval": 1, "commit_interval": 0.5, "batch_size": 10,
		}), "", ""},
		{"tls true", base(map[string]any{"tls": true}), "", ""},
		{"secret references are checked once resolved", base(map[string]any{
			"brokers": "${env:KAFKA_BROKERS}", "offset": "${env:OFFSET}", "format": "${env:FORMAT}",
			"session_timeout": "${env:SESSION}", "topic": nil, "topic_pattern": "${env:PATTERN}",
			"sasl": map[string]any{"mechanism": "${env:MECH}", "username": "u", "password": "${file:/run/secrets/kafka}"},
		}), "", ""},
		{"unknown key", base(map[string]any{"topik": "x"}), "topik", `unknown key "topik"`},
		{"no brokers", base(map[string]any{"brokers": nil}), "brokers", "at least one broker"},
		{"broker without port", base(map[string]any{"brokers": "localhost"}), "brokers", `"localhost" needs a port`},
		{"brokers wrong type", base(map[string]any{"brokers": 9092}), "brokers", "list of strings"},
		{"broker list item wrong type", base(map[string]any{"brokers": []any{"a:1", 2}}), "brokers.1", "must be a string"},
		{"no topic", base(map[string]any{"topic": nil}), "topic", "exactly one of"},
		{"two topic keys", base(map[string]any{"topics": "a,b"}), "topic", "exactly one of"},
		{"bad pattern", base(map[string]any{"topic": nil, "topic_pattern": "("}), "topic_pattern", `invalid regular expression "("`},
		{"bad offset", base(map[string]any{"offset": "middle"}), "offset", `not "middle"`},
		{"bad format", base(map[string]any{"format": "xml"}), "format", `not "xml"`},
		{"dedupe not bool", base(map[string]any{"dedupe": "yes"}), "dedupe", "true or false"},
		{"tls unknown key", base(map[string]any{"tls": map[string]any{"cafile": "x"}}), "tls.cafile", "unknown key"},
		{"tls cert without key", base(map[string]any{"tls": map[string]any{"cert": "x"}}), "tls.cert", "go together"},
		{"tls not a map", base(map[string]any{"tls": "yes"}), "tls", "mapping"},
		{"sasl bad mechanism", base(map[string]any{"sasl": map[string]any{"mechanism": "gssapi", "username": "u"}}), "sasl.mechanism", `not "gssapi"`},
		{"sasl without user", base(map[string]any{"sasl": map[string]any{"mechanism": "plain"}}), "sasl.username", "required"},
		{"bad duration", base(map[string]any{"session_timeout": "soon"}), "session_timeout", `invalid duration "soon"`},
		{"negative duration", base(map[string]any{"max_wait": "-1s"}), "max_wait", "positive"},
		{"heartbeat too long", base(map[string]any{"session_timeout": "1s", "heartbeat_interval": "2s"}), "heartbeat_interval", "shorter than session_timeout"},
		{"batch size zero", base(map[string]any{"batch_size": 0}), "batch_size", "1 to 100000"},
		{"batch size fraction", base(map[string]any{"batch_size": 1.5}), "batch_size", "whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.args)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			var ae *engine.ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("want *engine.ArgError at %q, got %v", tc.wantKey, err)
			}
			if got := strings.Join(ae.Path, "."); got != tc.wantKey {
				t.Errorf("path: got %q, want %q", got, tc.wantKey)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

func TestNewChecksResolvedValues(t *testing.T) {
	_, err := New(engine.SourceConfig{Name: "k", Args: map[string]any{"brokers": "kafka", "topic": "t"}})
	var ae *engine.ArgError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), `"kafka" needs a port`) {
		t.Fatalf("New with a resolved broker without port: %v", err)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	args := map[string]any{"brokers": "h:1", "topic": "t",
		"sasl": map[string]any{"mechanism": "nope", "username": "u", "password": "hunter2"}}
	if err := Check(args); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
	args["sasl"] = map[string]any{"mechanism": "plain", "username": "u", "password": 42}
	if err := Check(args); err == nil || strings.Contains(err.Error(), "42") {
		t.Fatalf("got %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := parseConfig(map[string]any{"brokers": "a:1, b:2 ,", "topic": "t"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Brokers[1] != "b:2" {
		t.Errorf("brokers: %q", c.Brokers)
	}
	if c.StartOffset != kafkago.FirstOffset || c.Format != FormatJSON || !c.Dedupe || c.CommitInterval != time.Second {
		t.Errorf("defaults: %+v", c)
	}
	src, err := New(engine.SourceConfig{Name: "k", Ruleset: "rs", Args: map[string]any{"brokers": "a:1", "topic": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.GroupID(); got != "rulebook.rs.k" {
		t.Errorf("default group id: %q", got)
	}
}

func TestTLSMaterialErrors(t *testing.T) {
	_, err := New(engine.SourceConfig{Name: "k", Args: map[string]any{"brokers": "a:1", "topic": "t",
		"tls": map[string]any{"ca": "/nonexistent/ca.pem"}}})
	if err == nil || !strings.Contains(err.Error(), `tls.ca: read "/nonexistent/ca.pem"`) {
		t.Fatalf("got %v", err)
	}
	_, err = New(engine.SourceConfig{Name: "k", Args: map[string]any{"brokers": "a:1", "topic": "t",
		"tls": map[string]any{"ca": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"}}})
	if err == nil || !strings.Contains(err.Error(), "tls.ca: no certificate") {
		t.Fatalf("got %v", err)
	}
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		name, format, value string
		want                any
		wantReason          string
	}{
		{"object", "json", `{"a":[1,"x",null]}`, map[string]any{"a": []any{float64(1), "x", nil}}, ""},
		{"scalar json", "json", `42`, float64(42), ""},
		{"string json", "json", `"hi"`, "hi", ""},
		{"invalid json", "json", `{"a":`, nil, "invalid JSON: unexpected end of JSON input"},
		{"trailing garbage", "json", `{} x`, nil, "invalid JSON: invalid character 'x' after top-level value"},
		{"empty json", "json", ``, nil, "invalid JSON: empty value"},
		{"blank json", "json", " \n", nil, "invalid JSON: empty value"},
		{"text", "text", "hello\nworld", "hello\nworld", ""},
		{"empty text", "text", "", "", ""},
		{"binary text", "text", "\xff\xfe", nil, "value is not valid UTF-8 text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decodeValue(tc.format, []byte(tc.value))
			if d.reason != tc.wantReason {
				t.Fatalf("reason: got %q, want %q", d.reason, tc.wantReason)
			}
			if tc.wantReason == "" {
				gotJSON, _ := json.Marshal(d.body)
				wantJSON, _ := json.Marshal(tc.want)
				if string(gotJSON) != string(wantJSON) {
					t.Fatalf("body: got %s, want %s", gotJSON, wantJSON)
				}
			}
		})
	}
}

func TestRejectedBodyTruncatesAndSanitizes(t *testing.T) {
	big := strings.Repeat("x", maxRawInEvent+10)
	r := rejectedBody("r", []byte(big))["rejected"].(map[string]any)
	if len(r["raw"].(string)) != maxRawInEvent || r["size"] != maxRawInEvent+10 || r["truncated"] != true {
		t.Fatalf("truncation: raw %d bytes, size %v, truncated %v", len(r["raw"].(string)), r["size"], r["truncated"])
	}
	r = rejectedBody("r", []byte("a\xffb"))["rejected"].(map[string]any)
	if r["raw"] != "a\uFFFDb" {
		t.Fatalf("sanitize: got %q", r["raw"])
	}
}

func TestDeadLetterHeaders(t *testing.T) {
	m := kafkago.Message{Topic: "in", Partition: 3, Offset: 77, Key: []byte("k"), Value: []byte("v"),
		Headers: []kafkago.Header{{Key: "own", Value: []byte("1")}}}
	d := deadLetter(m, "invalid JSON: x", "src")
	got := map[string]string{}
	for _, h := range d.Headers {
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{"own": "1", HeaderReason: "invalid JSON: x", HeaderOriginTopic: "in",
		HeaderOriginPartition: "3", HeaderOriginOffset: "77", HeaderSource: "src"}
	if len(got) != len(want) {
		t.Fatalf("headers: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s: got %q, want %q", k, got[k], v)
		}
	}
	if string(d.Key) != "k" || string(d.Value) != "v" || d.Topic != "" || d.Partition != 0 {
		t.Errorf("message: %+v", d)
	}
}

// FuzzDecodeValue: any value becomes either a body or a rejected event
// whose JSON encoding works, never a panic or a silent drop.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[`, ``, "\xff", `"x"`, `1e999`} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, value string, asJSON bool) {
		format := FormatText
		if asJSON {
			format = FormatJSON
		}
		d := decodeValue(format, []byte(value))
		if d.reason == "" {
			if _, err := json.Marshal(d.body); err != nil {
				t.Fatalf("decoded body does not encode: %v", err)
			}
			return
		}
		b := rejectedBody(d.reason, []byte(value))
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("rejected body does not encode: %v", err)
		}
		if !utf8.Valid(out) {
			t.Fatal("rejected body is not valid UTF-8")
		}
	})
}

// FuzzCheck: arbitrary string arguments never panic, and an error is always
// an *engine.ArgError.
func FuzzCheck(f *testing.F) {
	f.Add("127.0.0.1:9092", "events", "", "earliest", "json", "1s")
	f.Add("", "", "(", "x", "yaml", "-1")
	f.Fuzz(func(t *testing.T, brokers, topic, pattern, offset, format, timeout string) {
		args := map[string]any{"brokers": brokers, "topic": topic, "offset": offset, "format": format, "session_timeout": timeout}
		if pattern != "" {
			args["topic_pattern"] = pattern
		}
		err := Check(args)
		var ae *engine.ArgError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("not an ArgError: %T %v", err, err)
		}
	})
}
