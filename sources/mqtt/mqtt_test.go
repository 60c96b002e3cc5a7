package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
	"github.com/rulebook-dev/rulebook/journal"
)

// startMosquitto runs a real broker (Debian's mosquitto, installed by
// test/setup.sh) on a free port with a temporary configuration and returns
// its URL.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/mosquitto"); err2 != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("mosquitto is not installed (test/setup.sh installs it)") // CI installs it (test/setup.sh): never skip there
			}
			t.Skip("mosquitto is not installed (test/setup.sh installs it)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\npersistence false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "tcp://" + addr
}

func publish(t *testing.T, broker, topic string, payloads ...string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for _, p := range payloads {
		if tok := c.Publish(topic, 1, false, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// publishUntilGot publishes payload(1), payload(2), ... to topic every
// 200ms (the source may not be subscribed yet) until the source's emitter
// signals on got, failing t after 20 seconds.
func publishUntilGot(t *testing.T, broker, topic string, got <-chan struct{}, payload func(try int) string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for try := 1; ; try++ {
		publish(t, broker, topic, payload(try))
		select {
		case <-got:
			return
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("the source never got the message")
		}
	}
}

func journalPayloads(t *testing.T, j *journal.Store) []string {
	t.Helper()
	recs, err := j.Read(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		b, _ := json.Marshal(r.Event["payload"])
		out = append(out, fmt.Sprintf("%v:%s", engine.Meta(r.Event)["topic"], b))
	}
	return out
}

// Messages published while Rulebook is not running are delivered when it
// comes back: persistent session, stable client id, QoS 1.
func TestDeliversWhatWasPublishedWhileDown(t *testing.T) {
	broker := startMosquitto(t)
	j := sourcetest.OpenJournal(t, t.TempDir())
	defer j.Close()
	args := map[string]any{"brokers": []any{broker}, "topics": []any{"sensors/+/alert"}, "client_id": "rulebook-test-1", "reconnect_delay": "100ms"}
	stop := sourcetest.Start(t, Spec(), "mq", args, engine.SystemClock{}, j)
	// The subscription is made once connected; publish until the first
	// message arrives.
	probe := 0
	sourcetest.WaitFor(t, "the first message", func() bool {
		if j.LastSeq() == 0 {
			probe++
			publish(t, broker, "sensors/s0/alert", fmt.Sprintf(`{"probe":%d}`, probe))
			time.Sleep(50 * time.Millisecond)
		}
		return j.LastSeq() > 0
	})
	stop()
	publish(t, broker, "sensors/s1/alert", `{"n":1}`, `{"n":2}`, "plain text")
	publish(t, broker, "other/topic", `{"n":99}`)
	sourcetest.Start(t, Spec(), "mq", args, engine.SystemClock{}, j)
	want := []string{`sensors/s1/alert:{"n":1}`, `sensors/s1/alert:{"n":2}`, `sensors/s1/alert:"plain text"`}
	var got []string
	sourcetest.WaitFor(t, "the messages published while down", func() bool {
		got = got[:0]
		seen := map[string]bool{}
		for _, p := range journalPayloads(t, j) {
			if seen[p] && strings.Contains(p, "probe") {
				t.Fatalf("%s journaled twice", p)
			}
			seen[p] = true
			if strings.HasPrefix(p, "sensors/s1/") || strings.HasPrefix(p, "other/") {
				got = append(got, p)
			}
		}
		return len(got) >= len(want)
	})
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("journal holds %v, want %v", got, want)
	}
}

// blocked never makes an event durable: Emit waits until its caller gives up.
type blocked struct{ calls chan struct{} }

func (b *blocked) Emit(ctx context.Context, _ engine.SourceRef, _ []engine.Entry) ([]engine.Outcome, error) {
	b.calls <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// A message whose event never became durable was not acknowledged: the
// broker delivers it again to the next run.
func TestAcknowledgesOnlyDurableEvents(t *testing.T) {
	broker := startMosquitto(t)
	args := map[string]any{"brokers": []any{broker}, "topic": "jobs/#", "client_id": "rulebook-test-2", "reconnect_delay": "100ms"}
	b := &blocked{calls: make(chan struct{}, 16)}
	stop := sourcetest.Start(t, Spec(), "mq", args, engine.SystemClock{}, b)
	publishUntilGot(t, broker, "jobs/1", b.calls, func(int) string { return `{"job":1}` })
	stop()
	j := sourcetest.OpenJournal(t, t.TempDir())
	defer j.Close()
	sourcetest.Start(t, Spec(), "mq", args, engine.SystemClock{}, j)
	sourcetest.WaitFor(t, "the redelivery", func() bool { return j.LastSeq() >= 1 })
	if got := journalPayloads(t, j)[0]; got != `jobs/1:{"job":1}` {
		t.Fatalf("first event %s", got)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"topics": []any{"a"}}, `missing key "brokers"`},
		{map[string]any{"brokers": "tcp://x:1883"}, `missing key "topics"`},
		{map[string]any{"brokers": "http://x", "topic": "a"}, `unsupported scheme "http"`},
		{map[string]any{"brokers": "tcp://x:1883", "topics": []any{"a/#/b"}}, `'#' must be a whole, last level`},
		{map[string]any{"brokers": "tcp://x:1883", "topics": []any{"a/b+"}}, `'+' must be a whole level`},
		{map[string]any{"brokers": "tcp://x:1883", "topic": "a", "qos": 2}, `qos: unknown key "qos"`},
		{map[string]any{"brokers": "tcp://x:1883", "topic": "a", "reconnect_delay": "5s", "max_reconnect_delay": "1s"}, `must be at least reconnect_delay`},
	} {
		err := Spec().Check(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := Spec().Check(map[string]any{"host": "broker", "port": 1884, "topic": "a/+"}); err != nil {
		t.Errorf("EDA-style host/port: %v", err)
	}
}

// durableThenStuck stores the event and then never returns, as if
// Rulebook died between the journal write and the PUBACK.
type durableThenStuck struct {
	j     *journal.Store
	calls chan struct{}
}

func (d *durableThenStuck) Emit(ctx context.Context, src engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	if _, err := d.j.Emit(ctx, src, entries); err != nil {
		return nil, err
	}
	d.calls <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// The broker redelivers a message whose PUBACK was never sent; when its
// event was already durable the redelivery is recognised (same packet id,
// topic and payload) and not journaled twice.
func TestRedeliveryOfADurableMessageIsADuplicate(t *testing.T) {
	broker := startMosquitto(t)
	j := sourcetest.OpenJournal(t, t.TempDir())
	defer j.Close()
	args := map[string]any{"brokers": []any{broker}, "topic": "jobs/#", "client_id": "rulebook-test-3", "reconnect_delay": "100ms"}
	d := &durableThenStuck{j: j, calls: make(chan struct{}, 16)}
	stop := sourcetest.Start(t, Spec(), "mq", args, engine.SystemClock{}, d)
	publishUntilGot(t, broker, "jobs/1", d.calls, func(try int) string { return fmt.Sprintf(`{"try":%d}`, try) })
	stop()
	publish(t, broker, "jobs/2", `{"job":2}`) // a marker after the redelivery
	sourcetest.Start(t, Spec(), "mq", args, engine.SystemClock{}, j)
	sourcetest.WaitFor(t, "the marker", func() bool {
		for _, p := range journalPayloads(t, j) {
			if p == `jobs/2:{"job":2}` {
				return true
			}
		}
		return false
	})
	seen := map[string]bool{}
	for _, p := range journalPayloads(t, j) {
		if seen[p] {
			t.Fatalf("%s journaled twice: the redelivery was stored again", p)
		}
		seen[p] = true
	}
}
