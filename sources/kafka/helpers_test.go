package kafka

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

// recorder is an engine.Emitter test double that behaves like the journal
// for what the source relies on: an accepted call is durable, a repeated
// DedupeKey is a Duplicate, and a failed call stores nothing. fail, when
// set, decides per call whether it fails.
type recorder struct {
	mu       sync.Mutex
	accepted []engine.Entry
	seen     map[string]bool
	calls    int
	failures int
	fail     func(entries []engine.Entry) error
}

func newRecorder() *recorder { return &recorder{seen: map[string]bool{}} }

func (r *recorder) Emit(ctx context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(entries); err != nil {
			r.failures++
			return nil, err
		}
	}
	out := make([]engine.Outcome, len(entries))
	for i, e := range entries {
		if e.DedupeKey != "" && r.seen[e.DedupeKey] {
			out[i] = engine.Duplicate
			continue
		}
		if e.DedupeKey != "" {
			r.seen[e.DedupeKey] = true
		}
		r.accepted = append(r.accepted, e)
	}
	return out, nil
}

func (r *recorder) entries() []engine.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.Entry(nil), r.accepted...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.accepted)
}

func (r *recorder) failureCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures
}

// kafkaOf returns meta.kafka of an entry's event.
func kafkaOf(t testing.TB, e engine.Entry) map[string]any {
	t.Helper()
	m, ok := engine.Meta(e.Event)["kafka"].(map[string]any)
	if !ok {
		t.Fatalf("event without meta.kafka: %v", e.Event)
	}
	return m
}

// fastArgs are group timings small enough for tests against kfake.
func fastArgs(c *kafkatest.Cluster, extra map[string]any) map[string]any {
	args := map[string]any{
		"brokers":                c.Addrs(),
		"session_timeout":        "1s",
		"rebalance_timeout":      "2s",
		"heartbeat_interval":     "100ms",
		"join_group_backoff":     "100ms",
		"commit_interval":        "50ms",
		"topic_refresh_interval": "200ms",
		"retry_backoff":          "10ms",
		"max_retry_backoff":      "100ms",
	}
	for k, v := range extra {
		args[k] = v
	}
	return args
}

type running struct {
	src    *Source
	cancel context.CancelFunc
	exited chan struct{}
	runErr error
}

// stop cancels the source and returns Run's error.
func (r *running) stop() error {
	r.cancel()
	return r.wait(30 * time.Second)
}

func (r *running) wait(d time.Duration) error {
	select {
	case <-r.exited:
		return r.runErr
	case <-time.After(d):
		return fmt.Errorf("source did not stop within %s", d)
	}
}

// start builds and runs a source. The test's cleanup stops it.
func start(t *testing.T, name string, args map[string]any, out engine.Emitter) *running {
	t.Helper()
	return startLogged(t, name, args, out, zerolog.NewTestWriter(t))
}

// startLogged is start with the source's log (info and up) going to w.
func startLogged(t *testing.T, name string, args map[string]any, out engine.Emitter, w io.Writer) *running {
	t.Helper()
	src, err := New(engine.SourceConfig{
		Name: name, Type: Type, Ruleset: "test", Args: args,
		Clock: engine.SystemClock{},
		Log:   zerolog.New(w).Level(zerolog.InfoLevel).With().Timestamp().Str("source", name).Logger(),
	})
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, cancel: cancel, exited: make(chan struct{})}
	go func() {
		r.runErr = src.Run(ctx, out)
		close(r.exited)
	}()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCommitted waits until group has committed want for every partition
// listed in want.
func waitCommitted(t testing.TB, c *kafkatest.Cluster, group, topic string, want map[int32]int64, timeout time.Duration) {
	t.Helper()
	var last map[int32]int64
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := c.CommittedOffsets(ctx, group, topic)
		cancel()
		if err == nil {
			last = got
			ok := true
			for p, off := range want {
				if got[p] != off {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets of %q on %q: got %v (last error %v), want %v", group, topic, last, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonRecords(partition int32, from, n int) []kafkatest.Record {
	recs := make([]kafkatest.Record, 0, n)
	for i := from; i < from+n; i++ {
		recs = append(recs, kafkatest.Record{Partition: partition, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	return recs
}

// bodyN returns body.n of an event as an int.
func bodyN(t testing.TB, e engine.Entry) int {
	t.Helper()
	b, ok := e.Event["body"].(map[string]any)
	if !ok {
		t.Fatalf("event body is not an object: %v", e.Event)
	}
	n, ok := b["n"].(float64)
	if !ok {
		t.Fatalf("event body has no number n: %v", b)
	}
	return int(n)
}

// logBuffer collects log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
