package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

// ackEmitter accepts everything at once and closes done after want events.
type ackEmitter struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (a *ackEmitter) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	// Exactly one call crosses want.
	after := a.n.Add(int64(len(entries)))
	if before := after - int64(len(entries)); before < a.want && after >= a.want {
		close(a.done)
	}
	return make([]engine.Outcome, len(entries)), nil
}

// BenchmarkConsume measures messages/s from a pre-filled topic (3 brokers,
// 6 partitions, ~200-byte JSON values) through the source into an Emitter
// that acknowledges at once: the source's own ceiling (fetch, decode, event
// construction, commit), without a journal's fsync.
//
//	go test -run XXX -bench Consume -benchtime 200000x ./sources/kafka/
func BenchmarkConsume(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{Brokers: 3, Partitions: 6, Topics: []string{"bench"}})
	ctx := context.Background()
	value := fmt.Sprintf(`{"alert":"HighLatency","host":"web-%%03d","severity":"warning","labels":{"team":"sre","region":"eu-1"},"value":%%d,"pad":"%0100d"}`, 0)
	const chunk = 10000
	for from := 0; from < b.N; from += chunk {
		var recs []kafkatest.Record
		for i := from; i < min(from+chunk, b.N); i++ {
			recs = append(recs, kafkatest.Record{Partition: int32(i % 6), Key: fmt.Appendf(nil, "web-%03d", i%100), Value: fmt.Appendf(nil, value, i%100, i)})
		}
		if err := c.Produce(ctx, "bench", recs...); err != nil {
			b.Fatal(err)
		}
	}
	src, err := New(engine.SourceConfig{Name: "bench", Ruleset: "bench", Args: map[string]any{
		"brokers": c.Addrs(), "topic": "bench", "group_id": "bench",
		"session_timeout": "2s", "heartbeat_interval": "200ms", "join_group_backoff": "100ms",
	}, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	out := &ackEmitter{want: int64(b.N), done: make(chan struct{})}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- src.Run(runCtx, out) }()
	select {
	case <-out.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d within 5 minutes", out.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-exited; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
