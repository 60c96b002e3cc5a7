package bus

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

// BenchmarkProducer measures acknowledged (acks=all) messages per second
// with 32 concurrent emitters, one entry per Emit, as webhooks emit.
//
//	go test -run XXX -bench Producer -benchtime 20000x ./bus/
func BenchmarkProducer(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{Brokers: 3, Partitions: 4, Topics: []string{testTopic}})
	cfg := Config{Brokers: c.Addrs(), Topic: testTopic, Group: "bench"}
	p, err := NewProducer(cfg, hostKey, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	var n atomic.Int64
	// Warm up metadata and connections.
	if _, err := p.Emit(ctx, testSource, []engine.Entry{event("warm", 0)}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism((32 + testingProcs() - 1) / testingProcs())
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			e := event(fmt.Sprintf("host-%d", i%64), i)
			e.Event["payload"] = map[string]any{"alert": "cpu high", "severity": "warning", "value": 97.5}
			if _, err := p.Emit(ctx, testSource, []engine.Entry{e}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkConsumer measures messages per second from a pre-filled topic
// through a handler that does nothing, from the first record processed to
// the last (group join excluded).
//
//	go test -run XXX -bench Consumer -benchtime 50000x ./bus/
func BenchmarkConsumer(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{Brokers: 3, Partitions: 4, Topics: []string{testTopic}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	at := time.Now()
	recs := make([]kafkatest.Record, 0, 10000)
	flush := func() {
		if err := c.Produce(ctx, testTopic, recs...); err != nil {
			b.Fatal(err)
		}
		recs = recs[:0]
	}
	for i := range b.N {
		e := event(fmt.Sprintf("host-%d", i%64), i)
		e.Event["payload"] = map[string]any{"alert": "cpu high", "severity": "warning", "value": 97.5}
		v, err := encodeMessage(newMessage(testSource, e, at))
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, kafkatest.Record{Partition: -1, Key: []byte(hostKey(testSource, e)), Value: v, Timestamp: at})
		if len(recs) == cap(recs) {
			flush()
		}
	}
	if len(recs) > 0 {
		flush()
	}
	cons, err := NewConsumer(ConsumerConfig{
		Config: Config{Brokers: c.Addrs(), Topic: testTopic, Group: "bench"}, Lookback: -1,
		SessionTimeout: 2 * time.Second, HeartbeatInterval: 200 * time.Millisecond, JoinGroupBackoff: 100 * time.Millisecond,
		Log: zerolog.Nop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	var count atomic.Int64
	var first, last atomic.Int64
	all := make(chan struct{})
	h := &countHandler{on: func() {
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		if count.Add(1) == int64(b.N) {
			last.Store(now)
			close(all)
		}
	}}
	b.ResetTimer()
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx, func(int) (PartitionHandler, error) { return h, nil }) }()
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("processed %d of %d", count.Load(), b.N)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if b.N > 1 {
		b.ReportMetric(float64(b.N-1)/time.Duration(last.Load()-first.Load()).Seconds(), "msgs/s")
	}
}

// countHandler is a PartitionHandler that only counts; one is shared by
// every partition (on must be safe for concurrent use).
type countHandler struct{ on func() }

func (h *countHandler) Replay(context.Context, engine.Record) error { return nil }
func (h *countHandler) Process(context.Context, engine.Record) error {
	h.on()
	return nil
}
func (h *countHandler) Close() {}

func testingProcs() int { return max(1, runtime.GOMAXPROCS(0)) }
