package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rulebook-dev/rulebook/engine"
)

// TestUncommittedRecordsAreProcessedAgain shows the at-least-once side of
// the delivery semantics: records a consumer processed but could not commit
// (it crashed, or the commits failed) are processed again by the next
// owner, as the same stream and sequence, so firing and invocation ids
// repeat.
func TestUncommittedRecordsAreProcessedAgain(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "uncommitted")
	p := newProducer(t, cfg)
	restore := c.FailOffsetCommits(cfg.Group)
	for n := range 12 {
		emit(t, p, event(fmt.Sprintf("h%d", n%3), n))
	}
	r1 := newRecorder()
	rc1 := runConsumer(t, fastConsumer(t, cfg, "first"), r1)
	waitFor(t, 20*time.Second, "first consumer processes 12", func() bool { return r1.count("process") == 12 })
	waitFor(t, 20*time.Second, "a failed commit", func() bool {
		for _, ps := range rc1.c.Stats().Partitions {
			if ps.CommitFailures > 0 {
				return true
			}
		}
		return false
	})
	rc1.stop(t)
	restore()

	r2 := newRecorder()
	runConsumer(t, fastConsumer(t, cfg, "second"), r2)
	waitFor(t, 20*time.Second, "second consumer processes 12", func() bool { return r2.count("process") == 12 })
	first := map[string]bool{}
	for _, cl := range r1.snapshot() {
		first[cl.key()] = true
	}
	for _, cl := range r2.snapshot() {
		if cl.kind != "process" || !first[cl.key()] {
			t.Fatalf("second consumer: %s %s was not processed by the first as the same record", cl.kind, cl.key())
		}
	}
	waitCommitted(t, c, cfg.Group)
}

// TestReplayFallsBackToCount makes the brokers refuse ListOffsets by
// timestamp: the replay is then bounded by ReplayLimit records.
func TestReplayFallsBackToCount(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "fallback")
	p := newProducer(t, cfg)
	for n := range 20 {
		emit(t, p, event("one-host", n))
	}
	r1 := newRecorder()
	rc1 := runConsumer(t, fastConsumer(t, cfg, "first"), r1)
	waitFor(t, 20*time.Second, "first consumer processes 20", func() bool { return r1.count("process") == 20 })
	waitCommitted(t, c, cfg.Group)
	rc1.stop(t)

	kc := c.Kfake()
	kc.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		lr := req.(*kmsg.ListOffsetsRequest)
		byTime := false
		for _, rt := range lr.Topics {
			for _, rp := range rt.Partitions {
				byTime = byTime || rp.Timestamp >= 0
			}
		}
		if !byTime {
			return nil, nil, false
		}
		resp := lr.ResponseKind().(*kmsg.ListOffsetsResponse)
		resp.Version = lr.Version
		for _, rt := range lr.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRequest.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	cc := fastConsumer(t, cfg, "second")
	cc.ReplayLimit = 5
	r2 := newRecorder()
	runConsumer(t, cc, r2)
	emit(t, p, event("one-host", 20))
	waitFor(t, 20*time.Second, "second consumer processes the new record", func() bool { return r2.count("process") == 1 })
	var got []int
	for _, cl := range r2.snapshot() {
		if cl.kind == "replay" {
			got = append(got, ns(cl))
		}
	}
	if fmt.Sprint(got) != "[15 16 17 18 19]" {
		t.Fatalf("replayed %v, want the last 5 records", got)
	}
}

// blockingReplay holds every Replay call until release is closed.
type blockingReplay struct {
	*recHandler
	release chan struct{}
}

func (h *blockingReplay) Replay(ctx context.Context, rec engine.Record) error {
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.recHandler.Replay(ctx, rec)
}

// TestStatsShowReplay checks that Stats tells a replaying partition from a
// live one.
func TestStatsShowReplay(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "replaying")
	p := newProducer(t, cfg)
	for n := range 5 {
		emit(t, p, event("one-host", n))
	}
	r1 := newRecorder()
	rc1 := runConsumer(t, fastConsumer(t, cfg, "first"), r1)
	waitFor(t, 20*time.Second, "first consumer processes 5", func() bool { return r1.count("process") == 5 })
	waitCommitted(t, c, cfg.Group)
	rc1.stop(t)

	r2 := newRecorder()
	release := make(chan struct{})
	cons, err := NewConsumer(fastConsumer(t, cfg, "second"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(ctx, func(part int) (PartitionHandler, error) {
			h, _ := r2.open(part)
			return &blockingReplay{recHandler: h.(*recHandler), release: release}, nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	replaying := func() []int {
		var out []int
		for _, ps := range cons.Stats().Partitions {
			if ps.Replaying {
				out = append(out, ps.Partition)
			}
		}
		return out
	}
	waitFor(t, 20*time.Second, "a partition replaying", func() bool { return len(replaying()) == 1 })
	close(release)
	waitFor(t, 20*time.Second, "the replay to end", func() bool { return len(replaying()) == 0 && r2.count("replay") == 5 })
	emit(t, p, event("one-host", 5))
	waitFor(t, 20*time.Second, "the live record", func() bool { return r2.count("process") == 1 })
}

// TestDedupeLookback hands a partition over twice: with a Lookback shorter
// than the dedupe window the new owner forgets an old dedupe key, with a
// DedupeLookback covering it the key is remembered, and the older history
// is read for the keys only, not replayed into the handler.
func TestDedupeLookback(t *testing.T) {
	c := startCluster(t)
	t0 := time.Now().Add(-5 * time.Hour).Truncate(time.Second)
	clock := engine.NewFakeClock(t0)
	cfg := testConfig(c, "dedupe-lookback")
	cfg.Clock = clock
	p := newProducer(t, cfg)
	keyed := func(n int, key string) engine.Entry {
		e := event("one-host", n)
		e.DedupeKey = key
		return e
	}
	emit(t, p, keyed(0, "old-a"), keyed(0, "old-b")) // t0
	clock.Advance(2 * time.Hour)
	emit(t, p, keyed(1, "recent")) // t0+2h

	cc := fastConsumer(t, cfg, "first")
	cc.Lookback = time.Hour
	r1 := newRecorder()
	rc1 := runConsumer(t, cc, r1)
	waitFor(t, 20*time.Second, "first consumer processes 3", func() bool { return r1.count("process") == 3 })
	waitCommitted(t, c, cfg.Group)
	rc1.stop(t)

	tests := []struct {
		name           string
		dedupeLookback time.Duration
		key            string
		// the repeat of key is processed (forgotten) or skipped
		processed bool
	}{
		{"dedupe lookback remembers an old key", 24 * time.Hour, "old-a", false},
		{"lookback alone forgets it", 0, "old-b", true},
	}
	n := 2
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := fastConsumer(t, cfg, tc.name)
			cc.Lookback = time.Hour
			cc.DedupeLookback = tc.dedupeLookback
			r := newRecorder()
			rc := runConsumer(t, cc, r)
			clock.Advance(time.Minute)
			emit(t, p, keyed(n, tc.key))
			n++
			decided := func() int64 {
				var d int64
				for _, ps := range rc.c.Stats().Partitions {
					d += ps.Duplicates + ps.Processed
				}
				return d
			}
			waitFor(t, 20*time.Second, "the repeat decided", func() bool { return decided() == 1 })
			if got := r.count("process") == 1; got != tc.processed {
				t.Fatalf("repeat of an old key processed: %v, want %v", got, tc.processed)
			}
			var replayed []int
			for _, cl := range r.snapshot() {
				if cl.kind == "replay" {
					replayed = append(replayed, ns(cl))
				}
			}
			// Only what is within Lookback reaches the handler: the
			// "recent" record.
			for _, v := range replayed {
				if v == 0 {
					t.Fatalf("replayed %v: the record older than Lookback reached the handler", replayed)
				}
			}
			if len(replayed) == 0 {
				t.Fatal("nothing replayed")
			}
			waitCommitted(t, c, cfg.Group)
			rc.stop(t)
		})
	}
}
