package bus

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

const testTopic = "bus"

// startCluster runs a 3-broker kfake cluster with a 4-partition bus topic.
func startCluster(t *testing.T) *kafkatest.Cluster {
	t.Helper()
	return kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 4, Topics: []string{testTopic}})
}

func testConfig(c *kafkatest.Cluster, group string) Config {
	return Config{Brokers: c.Addrs(), Topic: testTopic, Group: group, WriteTimeout: 5 * time.Second, RetryAfter: 2 * time.Second}
}

func testLog(t testing.TB, name string) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Str("member", name).Logger()
}

// fastConsumer is a consumer config with group timings small enough for
// tests against kfake.
func fastConsumer(t testing.TB, cfg Config, name string) ConsumerConfig {
	return ConsumerConfig{
		Config:            cfg,
		Lookback:          time.Hour,
		Log:               testLog(t, name),
		CommitInterval:    50 * time.Millisecond,
		SessionTimeout:    time.Second,
		RebalanceTimeout:  2 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		JoinGroupBackoff:  100 * time.Millisecond,
		RetryBackoff:      50 * time.Millisecond,
	}
}

// hostKey is the partition key of test entries: their "host" field.
func hostKey(_ engine.SourceRef, e engine.Entry) string {
	h, _ := e.Event["host"].(string)
	return h
}

var testSource = engine.SourceRef{Ruleset: "rs", Name: "hook", Type: "webhook"}

func event(host string, n int) engine.Entry {
	return engine.Entry{Event: engine.Event{"host": host, "n": float64(n)}}
}

func newProducer(t *testing.T, cfg Config) *Producer {
	t.Helper()
	p, err := NewProducer(cfg, hostKey, testLog(t, "producer"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func emit(t *testing.T, p *Producer, entries ...engine.Entry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := p.Emit(ctx, testSource, entries)
	if err != nil {
		t.Fatalf("emit: %v", err)
	}
	for i, o := range out {
		if o != engine.Accepted {
			t.Fatalf("entry %d: outcome %s", i, o)
		}
	}
}

// call is one handler call a recorder saw.
type call struct {
	kind      string // "replay" or "process"
	partition int
	rec       engine.Record
}

func (c call) key() string { return fmt.Sprintf("%s@%d", c.rec.Stream, c.rec.Seq) }

// recorder hands out handlers that record every call. fail, when set,
// decides whether a Process call fails.
type recorder struct {
	mu     sync.Mutex
	calls  []call
	opened map[int]int
	closed map[int]int
	fail   func(rec engine.Record) error
}

func newRecorder() *recorder { return &recorder{opened: map[int]int{}, closed: map[int]int{}} }

func (r *recorder) open(p int) (PartitionHandler, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened[p]++
	return &recHandler{r: r, p: p}, nil
}

type recHandler struct {
	r      *recorder
	p      int
	closed bool
}

func (h *recHandler) Replay(_ context.Context, rec engine.Record) error {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	if h.closed {
		panic("Replay after Close")
	}
	if rec.Size == 0 {
		panic("a record without its size")
	}
	h.r.calls = append(h.r.calls, call{"replay", h.p, rec})
	return nil
}

func (h *recHandler) Process(_ context.Context, rec engine.Record) error {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	if h.closed {
		panic("Process after Close")
	}
	if rec.Size == 0 {
		panic("a record without its size")
	}
	if h.r.fail != nil {
		if err := h.r.fail(rec); err != nil {
			return err
		}
	}
	h.r.calls = append(h.r.calls, call{"process", h.p, rec})
	return nil
}

func (h *recHandler) Close() {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	if h.closed {
		panic("Close twice")
	}
	h.closed = true
	h.r.closed[h.p]++
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) count(kind string) int {
	n := 0
	for _, c := range r.snapshot() {
		if c.kind == kind {
			n++
		}
	}
	return n
}

// running is a consumer running in the background.
type running struct {
	c      *Consumer
	cancel context.CancelFunc
	done   chan error
}

func runConsumer(t *testing.T, cc ConsumerConfig, r *recorder) *running {
	t.Helper()
	c, err := NewConsumer(cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- c.Run(ctx, r.open) }()
	t.Cleanup(func() { rc.stop(t) })
	return rc
}

// stop ends Run and waits for it; it is safe to call twice.
func (rc *running) stop(t *testing.T) {
	t.Helper()
	rc.cancel()
	select {
	case err, ok := <-rc.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(rc.done)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of its context ending")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCommitted waits until group has committed every partition's end.
func waitCommitted(t *testing.T, c *kafkatest.Cluster, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var end, committed map[int32]int64
	waitFor(t, 20*time.Second, "offsets committed up to the end", func() bool {
		var err error
		if end, err = c.EndOffsets(ctx, testTopic); err != nil {
			return false
		}
		if committed, err = c.CommittedOffsets(ctx, group, testTopic); err != nil {
			return false
		}
		for p, e := range end {
			if e > 0 && committed[p] != e {
				return false
			}
		}
		return true
	})
}

// processedByKey returns, for each record (stream@seq), how many times it
// was processed across recorders.
func processedByKey(rs ...*recorder) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		for _, c := range r.snapshot() {
			if c.kind == "process" {
				out[c.key()]++
			}
		}
	}
	return out
}

func ns(c call) int { return int(c.rec.Event["n"].(float64)) }

func sortedKeys(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
