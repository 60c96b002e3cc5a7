// Command kafka measures the kafka source's consume throughput: it fills a
// topic with N JSON messages, then runs the source (one consumer group
// member) until every message is accepted, and prints messages/s for each
// sink:
//
//   - ack: an Emitter that acknowledges at once (the source's ceiling);
//   - journal: the embedded journal (package journal), durable with group
//     commit, as `rulebook run` uses it;
//   - kafka-go: no source at all, a bare kafka-go group Reader calling
//     FetchMessage (the library's and the broker's ceiling here).
//
// The broker is an in-process kfake cluster of 3 brokers (package
// test/kafkatest); the time to fill the topic is not measured, the time to
// join the consumer group is.
//
//	go run ./bench/kafka -n 200000 -partitions 6 -sinks ack,journal -rounds 3
//
// The end-to-end figure through the rulebook binary (a matching rule with
// the none action) needs the CLI and is measured separately.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	kafkasrc "github.com/rulebook-dev/rulebook/sources/kafka"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/kafka:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 200000, "messages per round")
	partitions := flag.Int("partitions", 6, "partitions of the topic (in-process cluster only)")
	sinks := flag.String("sinks", "kafka-go,ack,journal", "comma-separated sinks: kafka-go, ack, journal")
	batch := flag.Int("batch-size", 256, "the source's batch_size (events per Emit)")
	size := flag.Int("size", 200, "approximate value size in bytes")
	rounds := flag.Int("rounds", 1, "rounds per sink; more than one prints the median")
	dir := flag.String("dir", "", "directory for the journal (default: a temporary directory on the working filesystem)")
	flag.Parse()

	ctx := context.Background()
	cluster, err := kafkatest.New(kafkatest.Options{Brokers: 3, Partitions: *partitions})
	if err != nil {
		return err
	}
	defer cluster.Close()
	addrs := cluster.Addrs()

	pad := strings.Repeat("x", max(0, *size-120))
	for _, sink := range strings.Split(*sinks, ",") {
		var rates []float64
		for r := range *rounds {
			topic := fmt.Sprintf("bench-%s-%d", sink, r)
			if err := cluster.CreateTopic(ctx, topic, *partitions); err != nil {
				return err
			}
			if err := fill(ctx, cluster, topic, *n, *partitions, pad); err != nil {
				return err
			}
			var rate float64
			if sink == "kafka-go" {
				if rate, err = bareReader(ctx, addrs, topic, *n); err != nil {
					return err
				}
			} else {
				out, closeSink, err := openSink(sink, *dir)
				if err != nil {
					return err
				}
				rate, err = consume(ctx, addrs, topic, *n, *batch, out)
				if cerr := closeSink(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
			}
			rates = append(rates, rate)
			fmt.Printf("sink=%-8s round=%d messages=%d partitions=%d batch_size=%d  %9.0f msgs/s\n", sink, r+1, *n, *partitions, *batch, rate)
		}
		if len(rates) > 1 {
			slices.Sort(rates)
			fmt.Printf("sink=%-8s median over %d rounds: %.0f msgs/s\n", sink, len(rates), rates[len(rates)/2])
		}
	}
	return nil
}

func fill(ctx context.Context, c *kafkatest.Cluster, topic string, n, partitions int, pad string) error {
	const chunk = 10000
	for from := 0; from < n; from += chunk {
		recs := make([]kafkatest.Record, 0, chunk)
		for i := from; i < min(from+chunk, n); i++ {
			host := fmt.Sprintf("web-%03d", i%100)
			recs = append(recs, kafkatest.Record{
				Partition: int32(i % partitions),
				Key:       []byte(host),
				Value:     fmt.Appendf(nil, `{"alert":"HighLatency","host":%q,"severity":"warning","labels":{"team":"sre"},"seq":%d,"pad":%q}`, host, i, pad),
			})
		}
		if err := c.Produce(ctx, topic, recs...); err != nil {
			return err
		}
	}
	return nil
}

type ackSink struct{}

func (ackSink) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	return make([]engine.Outcome, len(entries)), nil
}

func openSink(name, dir string) (engine.Emitter, func() error, error) {
	switch name {
	case "ack":
		return ackSink{}, func() error { return nil }, nil
	case "journal":
		d, err := os.MkdirTemp(dir, "kafka-bench-journal-")
		if err != nil {
			return nil, nil, err
		}
		st, err := journal.Open(journal.Options{Dir: d, MaxBacklog: -1, Log: zerolog.Nop()})
		if err != nil {
			os.RemoveAll(d)
			return nil, nil, err
		}
		return st, func() error {
			err := st.Close()
			os.RemoveAll(d)
			return err
		}, nil
	}
	return nil, nil, fmt.Errorf("-sinks: unknown sink %q (kafka-go, ack, journal)", name)
}

// counting wraps an Emitter and closes done once want events were accepted
// or recognised as duplicates.
type counting struct {
	next engine.Emitter
	n    atomic.Int64
	want int64
	done chan struct{}
	// first closes on the first accepted call: the group is joined.
	first     chan struct{}
	firstOnce sync.Once
}

func (c *counting) Emit(ctx context.Context, src engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	out, err := c.next.Emit(ctx, src, entries)
	if err != nil {
		return out, err
	}
	c.firstOnce.Do(func() { close(c.first) })
	after := c.n.Add(int64(len(entries)))
	if before := after - int64(len(entries)); before < c.want && after >= c.want {
		close(c.done)
	}
	return out, nil
}

func consume(ctx context.Context, brokers []string, topic string, n, batch int, sink engine.Emitter) (float64, error) {
	src, err := kafkasrc.New(engine.SourceConfig{Name: "bench", Type: "kafka", Ruleset: "bench", Args: map[string]any{
		"brokers": brokers, "topic": topic, "group_id": "bench-" + topic, "batch_size": batch,
		"session_timeout": "6s", "heartbeat_interval": "500ms", "join_group_backoff": "100ms",
	}, Clock: engine.SystemClock{}, Log: zerolog.Nop()})
	if err != nil {
		return 0, err
	}
	out := &counting{next: sink, want: int64(n), done: make(chan struct{}), first: make(chan struct{})}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited := make(chan error, 1)
	start := time.Now()
	go func() { exited <- src.Run(runCtx, out) }()
	var joined time.Duration
	select {
	case <-out.first:
		joined = time.Since(start)
	case err := <-exited:
		return 0, fmt.Errorf("source stopped early: %v", err)
	}
	select {
	case <-out.done:
	case err := <-exited:
		return 0, fmt.Errorf("source stopped early: %v", err)
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("consumed %d of %d within 10 minutes", out.n.Load(), n)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-exited; err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "  first event after %s, all %d after %s\n", joined.Round(time.Millisecond), n, elapsed.Round(time.Millisecond))
	return float64(n) / elapsed.Seconds(), nil
}

// bareReader consumes n messages with a kafka-go group Reader alone.
func bareReader(ctx context.Context, brokers []string, topic string, n int) (float64, error) {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: brokers, GroupID: "bare-" + topic, GroupTopics: []string{topic},
		StartOffset: kafkago.FirstOffset, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond,
		SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond, JoinGroupBackoff: 100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	for i := range n {
		if _, err := r.FetchMessage(ctx); err != nil {
			return 0, fmt.Errorf("kafka-go reader: message %d of %d: %w", i, n, err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
