package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
)

// process turns one partition's batch into entries without a broker.
func TestProcessBuildsEntries(t *testing.T) {
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	msg := func(off int64, value string) kafkago.Message {
		return kafkago.Message{Topic: "in", Partition: 2, Offset: off, Key: []byte("k"), Value: []byte(value), HighWaterMark: 10,
			Headers: []kafkago.Header{{Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}}, Time: at}
	}
	tests := []struct {
		name         string
		args         map[string]any
		values       []string
		wantKeys     []string
		wantRejected []bool
	}{
		{"json with dedupe", map[string]any{}, []string{`{"a":1}`, `[1]`}, []string{"in/2/0", "in/2/1"}, []bool{false, false}},
		{"dedupe off", map[string]any{"dedupe": false}, []string{`{"a":1}`}, []string{""}, []bool{false}},
		{"text", map[string]any{"format": "text"}, []string{"hello", "\xff"}, []string{"in/2/0", "in/2/1"}, []bool{false, true}},
		{"rejected without a dead-letter topic", map[string]any{}, []string{"{", `{"ok":true}`}, []string{"in/2/0", "in/2/1"}, []bool{true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := map[string]any{"brokers": "127.0.0.1:1", "topic": "in"}
			for k, v := range tc.args {
				args[k] = v
			}
			src, err := New(engine.SourceConfig{Name: "src", Type: Type, Ruleset: "rs", Args: args,
				Clock: engine.NewFakeClock(at), Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			p := &pipeline{s: src, out: rec}
			tp := topicPartition{"in", 2}
			var batch []kafkago.Message
			for i, v := range tc.values {
				m := msg(int64(i), v)
				if !src.tracker.fetched(tp, m.Offset, m.HighWaterMark) {
					t.Fatalf("message %d not tracked", i)
				}
				batch = append(batch, m)
			}
			if !p.process(context.Background(), tp, batch) {
				t.Fatal("process gave up")
			}
			got := rec.entries()
			if len(got) != len(tc.values) {
				t.Fatalf("entries: got %d, want %d", len(got), len(tc.values))
			}
			rejected := 0
			for i, e := range got {
				if e.DedupeKey != tc.wantKeys[i] {
					t.Errorf("entry %d: DedupeKey %q, want %q", i, e.DedupeKey, tc.wantKeys[i])
				}
				_, isRej := e.Event["rejected"]
				_, hasBody := e.Event["body"]
				if isRej != tc.wantRejected[i] || hasBody == isRej {
					t.Errorf("entry %d: rejected %v body %v, want rejected %v: %v", i, isRej, hasBody, tc.wantRejected[i], e.Event)
				}
				if isRej {
					rejected++
				}
				meta := engine.Meta(e.Event)
				if meta["received_at"] != "2026-11-29T03:00:00Z" {
					t.Errorf("entry %d: received_at %v, want the injected clock's time", i, meta["received_at"])
				}
				k := meta["kafka"].(map[string]any)
				if k["headers"].(map[string]any)["h"] != "2" || k["timestamp"] != "2026-11-29T03:00:00Z" {
					t.Errorf("entry %d: meta.kafka %v", i, k)
				}
			}
			st := src.Stats()
			if st.Rejected != int64(rejected) || st.Emitted != int64(len(tc.values)) || st.InFlight != 0 {
				t.Errorf("stats: %+v", st)
			}
			if got := src.tracker.committable(); got[tp] != int64(len(tc.values)-1) {
				t.Errorf("committable: %v", got)
			}
		})
	}
}

// When ctx ends while Emit keeps failing, process gives up and marks
// nothing done.
func TestProcessGivesUpOnlyWithContext(t *testing.T) {
	src, err := New(engine.SourceConfig{Name: "src", Args: map[string]any{"brokers": "127.0.0.1:1", "topic": "in", "retry_backoff": "1ms", "max_retry_backoff": "2ms"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	rec.fail = func([]engine.Entry) error {
		if rec.failures >= 5 {
			cancel()
		}
		return engine.ErrClosed
	}
	tp := topicPartition{"in", 0}
	src.tracker.fetched(tp, 0, 1)
	p := &pipeline{s: src, out: rec}
	if p.process(ctx, tp, []kafkago.Message{{Topic: "in", Offset: 0, Value: []byte("{}")}}) {
		t.Fatal("process reported success")
	}
	if rec.failureCount() < 5 || src.Stats().Retries < 5 {
		t.Errorf("retries: emitter saw %d failures, stats %d", rec.failureCount(), src.Stats().Retries)
	}
	if got := src.tracker.committable(); len(got) != 0 {
		t.Errorf("committable after giving up: %v", got)
	}
}
