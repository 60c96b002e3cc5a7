package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

func newProducer(t *testing.T) *Producer {
	t.Helper()
	p := New(engine.ActionEnv{Log: zerolog.New(zerolog.NewTestWriter(t))})
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// The action's messages are read back by kcat with their key, value and
// headers.
func TestProducesWhatKcatReads(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 3, Topics: []string{"out-map", "out-list", "out-string", "out-number"}})
	p := newProducer(t)
	tests := []struct {
		topic     string
		value     any
		wantValue string
	}{
		{"out-map", map[string]any{"host": "web1", "n": 2}, `{"host":"web1","n":2}`},
		{"out-list", []any{"a", 1.5, nil}, `["a",1.5,null]`},
		{"out-string", "restart web1", "restart web1"},
		{"out-number", 42, "42"},
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			inv := &engine.Invocation{ID: "inv-" + tc.topic, Action: Type, Args: map[string]any{
				"brokers": c.Addrs(), "topic": tc.topic, "key": "web1", "value": tc.value,
				"headers": map[string]any{"origin": "rulebook", "attempt": 1},
			}}
			res := p.Run(context.Background(), inv)
			if res.Status != engine.Succeeded {
				t.Fatalf("run: %+v", res)
			}
			got := c.KcatConsume(t, tc.topic, 1, 20*time.Second)[0]
			if string(got.Value) != tc.wantValue || string(got.Key) != "web1" {
				t.Errorf("record: key %q value %q, want web1 %q", got.Key, got.Value, tc.wantValue)
			}
			wantH := map[string]string{"origin": "rulebook", "attempt": "1", HeaderInvocationID: "inv-" + tc.topic}
			if !reflect.DeepEqual(got.Headers, wantH) {
				t.Errorf("headers: got %v, want %v", got.Headers, wantH)
			}
		})
	}
	if n := len(p.writers); n != len(tests) {
		t.Errorf("writers: got %d, want one per topic (%d)", n, len(tests))
	}
	// Same brokers and topic: the cached writer is reused.
	res := p.Run(context.Background(), &engine.Invocation{ID: "again", Args: map[string]any{
		"brokers": c.Bootstrap(), "topic": "out-map", "value": map[string]any{"n": 3},
	}})
	if res.Status != engine.Succeeded {
		t.Fatalf("second run: %+v", res)
	}
	if n := len(p.writers); n != len(tests) {
		t.Errorf("writers after reuse: got %d, want %d", n, len(tests))
	}
	recs := c.KcatConsume(t, "out-map", 2, 20*time.Second)
	var second map[string]any
	for _, r := range recs {
		if r.Headers[HeaderInvocationID] == "again" {
			_ = json.Unmarshal(r.Value, &second)
		}
	}
	if second["n"] != float64(3) {
		t.Errorf("second message: got %v (all %v)", second, recs)
	}
}

// Equal keys go to one partition, the one the Java client's murmur2 picks.
func TestKeyedMessagesShareAPartition(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 6, Topics: []string{"keyed"}})
	p := newProducer(t)
	for i := range 6 {
		res := p.Run(context.Background(), &engine.Invocation{ID: "k", Args: map[string]any{
			"brokers": c.Addrs(), "topic": "keyed", "key": []string{"db1", "db2"}[i%2], "value": "x",
		}})
		if res.Status != engine.Succeeded {
			t.Fatalf("run %d: %+v", i, res)
		}
	}
	parts := map[string]map[int32]bool{}
	for _, r := range c.KcatConsume(t, "keyed", 6, 20*time.Second) {
		if parts[string(r.Key)] == nil {
			parts[string(r.Key)] = map[int32]bool{}
		}
		parts[string(r.Key)][r.Partition] = true
	}
	for k, ps := range parts {
		if len(ps) != 1 {
			t.Errorf("key %q spread over partitions %v", k, ps)
		}
	}
	want := (&kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: []byte("db1")}, 0, 1, 2, 3, 4, 5)
	if !parts["db1"][int32(want)] {
		t.Errorf("key db1: partitions %v, want murmur2's %d", parts["db1"], want)
	}
}

func TestRunErrors(t *testing.T) {
	// A port that refuses connections: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	p := newProducer(t)
	tests := []struct {
		name    string
		args    map[string]any
		secrets []string
		want    engine.Status
		wantErr string
	}{
		{"rendered topic invalid", map[string]any{"brokers": dead, "topic": "bad topic!", "value": "x"}, nil, engine.Failed, `topic: "bad topic!" is not a valid topic name`},
		{"rendered key not a string", map[string]any{"brokers": dead, "topic": "t", "key": []any{1}, "value": "x"}, nil, engine.Failed, "key: must be a string"},
		{"missing value", map[string]any{"brokers": dead, "topic": "t"}, nil, engine.Failed, "value: is required"},
		{"unreadable ca", map[string]any{"brokers": dead, "topic": "t", "value": "x", "tls": map[string]any{"ca": "/nonexistent/ca.pem"}}, nil, engine.Failed, "tls.ca"},
		{"broker down", map[string]any{"brokers": dead, "topic": "t", "value": "x",
			"sasl": map[string]any{"mechanism": "plain", "username": "u", "password": "pa55word"}}, []string{"pa55word"}, engine.Retryable, "produce to topic \"t\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			res := p.Run(ctx, &engine.Invocation{ID: "x", Args: tc.args, Secrets: tc.secrets})
			if res.Status != tc.want {
				t.Fatalf("status: got %s (%s), want %s", res.Status, res.Error, tc.want)
			}
			if !strings.Contains(res.Error, tc.wantErr) {
				t.Errorf("error %q does not contain %q", res.Error, tc.wantErr)
			}
			for _, s := range tc.secrets {
				if strings.Contains(res.Error, s) {
					t.Errorf("error leaks a secret: %q", res.Error)
				}
			}
		})
	}
}

func TestCloseIsIdempotentAndLaterRunsRetry(t *testing.T) {
	p := New(engine.ActionEnv{Log: zerolog.Nop()})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	res := p.Run(context.Background(), &engine.Invocation{Args: map[string]any{"brokers": "127.0.0.1:1", "topic": "t", "value": "x"}})
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "closed") {
		t.Fatalf("run after close: %+v", res)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want engine.Status
	}{
		{"too large", kafkago.MessageSizeTooLarge, engine.Failed},
		{"authorization", kafkago.TopicAuthorizationFailed, engine.Failed},
		{"leader moved", kafkago.NotLeaderForPartition, engine.Retryable},
		{"unknown topic", kafkago.UnknownTopicOrPartition, engine.Retryable},
		{"write errors", kafkago.WriteErrors{kafkago.InvalidTopic}, engine.Failed},
		{"write errors retryable", kafkago.WriteErrors{nil, kafkago.RequestTimedOut}, engine.Retryable},
		{"eof", io.ErrUnexpectedEOF, engine.Retryable},
		{"deadline", context.DeadlineExceeded, engine.Retryable},
		{"wrapped", errors.Join(errors.New("x"), kafkago.RecordListTooLarge), engine.Failed},
		// The broker's certificate is not trusted: no retry fixes that, as
		// the bus and the kafka source also decide.
		{"untrusted broker", fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), engine.Failed},
		{"tls alert", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, engine.Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err).Status; got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		args    map[string]any
		wantKey string
	}{
		{"minimal", map[string]any{"brokers": "h:9092", "topic": "t", "value": "x"}, ""},
		{"templates", map[string]any{"brokers": "{{ vars.brokers }}", "topic": "{{ event.topic }}", "key": "{{ event.host }}",
			"value": map[string]any{"a": "{{ event.a }}"}, "headers": map[string]any{"h": "{{ x }}"},
			"sasl": map[string]any{"mechanism": "{{ vars.mech }}", "username": "u", "password": "${env:PW}"}}, ""},
		{"secret references", map[string]any{"brokers": "${env:KAFKA_BROKERS}", "topic": "${env:TOPIC}", "value": "x",
			"sasl": map[string]any{"mechanism": "${env:MECH}", "username": "u", "password": "${file:/run/pw}"}}, ""},
		{"tls and sasl", map[string]any{"brokers": []any{"a:1", "b:2"}, "topic": "t", "value": "x",
			"tls": map[string]any{"ca": "/ca.pem"}, "sasl": map[string]any{"mechanism": "scram-sha-256", "username": "u", "password": "p"}}, ""},
		{"unknown key", map[string]any{"brokers": "h:1", "topic": "t", "value": "x", "acks": 1}, "acks"},
		{"no brokers", map[string]any{"topic": "t", "value": "x"}, "brokers"},
		{"broker without port", map[string]any{"brokers": "h", "topic": "t", "value": "x"}, "brokers"},
		{"no topic", map[string]any{"brokers": "h:1", "value": "x"}, "topic"},
		{"bad topic", map[string]any{"brokers": "h:1", "topic": "a/b", "value": "x"}, "topic"},
		{"no value", map[string]any{"brokers": "h:1", "topic": "t"}, "value"},
		{"headers not a map", map[string]any{"brokers": "h:1", "topic": "t", "value": "x", "headers": "a=b"}, "headers"},
		{"header not a string", map[string]any{"brokers": "h:1", "topic": "t", "value": "x", "headers": map[string]any{"a": []any{}}}, "headers.a"},
		{"bad sasl", map[string]any{"brokers": "h:1", "topic": "t", "value": "x", "sasl": map[string]any{"mechanism": "md5", "username": "u"}}, "sasl.mechanism"},
		{"bad tls", map[string]any{"brokers": "h:1", "topic": "t", "value": "x", "tls": map[string]any{"key": "k"}}, "tls.cert"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checktest.ArgError(t, Check(tc.args), tc.wantKey, "")
		})
	}
}

func TestWriterKeyHidesSecrets(t *testing.T) {
	a := args{Brokers: []string{"a:1"}, Topic: "t", SASL: &kafkaconn.SASL{Mechanism: "plain", Username: "u", Password: "topsecret"}}
	b := a
	b.SASL = &kafkaconn.SASL{Mechanism: "plain", Username: "u", Password: "other"}
	if strings.Contains(a.writerKey(), "topsecret") {
		t.Fatalf("key leaks the password: %q", a.writerKey())
	}
	if a.writerKey() == b.writerKey() {
		t.Fatal("different credentials share a writer")
	}
}

// FuzzCheck: arbitrary arguments never panic; errors are ArgErrors.
func FuzzCheck(f *testing.F) {
	f.Add("h:9092", "topic", "key", "value", "hdr")
	f.Add("{{ x }}", "{{", "", "", "")
	f.Fuzz(func(t *testing.T, brokers, topic, key, value, header string) {
		err := Check(map[string]any{"brokers": brokers, "topic": topic, "key": key, "value": value,
			"headers": map[string]any{header: value}})
		var ae *engine.ArgError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("not an ArgError: %T %v", err, err)
		}
	})
}
