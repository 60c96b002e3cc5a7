package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

// TestRoundTrip produces keyed events and checks that one consumer gets
// every one, each key in one partition (the one Murmur2 picks) in the order
// produced.
func TestRoundTrip(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "round-trip")
	p := newProducer(t, cfg)
	const hosts, per = 8, 10
	for i := range per {
		for h := range hosts {
			emit(t, p, event(fmt.Sprintf("host-%d", h), i*hosts+h))
		}
	}
	r := newRecorder()
	rc := runConsumer(t, fastConsumer(t, cfg, "a"), r)
	waitFor(t, 20*time.Second, "every record processed", func() bool { return r.count("process") == hosts*per })

	streamOf := map[string]string{}
	lastN := map[string]int{}
	lastSeq := map[string]uint64{}
	partitions := make([]int, 4)
	for i := range partitions {
		partitions[i] = i
	}
	for _, cl := range r.snapshot() {
		if cl.kind != "process" {
			t.Fatalf("fresh group replayed %s", cl.key())
		}
		rec := cl.rec
		host := rec.Event["host"].(string)
		if rec.Stream != fmt.Sprintf("%s/%d", testTopic, cl.partition) {
			t.Fatalf("record of partition %d has stream %q", cl.partition, rec.Stream)
		}
		if s, ok := streamOf[host]; ok && s != rec.Stream {
			t.Fatalf("host %s in two streams: %s and %s", host, s, rec.Stream)
		}
		streamOf[host] = rec.Stream
		want := (&kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: []byte(host)}, partitions...)
		if cl.partition != want {
			t.Errorf("host %s in partition %d, murmur2 says %d", host, cl.partition, want)
		}
		if n, ok := lastN[host]; ok && ns(cl) <= n {
			t.Fatalf("host %s: n %d after %d: order lost", host, ns(cl), n)
		}
		lastN[host] = ns(cl)
		if rec.Seq <= lastSeq[rec.Stream] {
			t.Fatalf("stream %s: seq %d after %d", rec.Stream, rec.Seq, lastSeq[rec.Stream])
		}
		lastSeq[rec.Stream] = rec.Seq
		if rec.Source != testSource || rec.Accepted.IsZero() {
			t.Fatalf("record lost its source or accepted time: %+v", rec)
		}
	}
	if len(streamOf) != hosts {
		t.Fatalf("saw %d hosts, want %d", len(streamOf), hosts)
	}
	waitCommitted(t, c, cfg.Group)
	st := rc.c.Stats()
	if fmt.Sprint(st.Owned) != "[0 1 2 3]" {
		t.Errorf("owned %v, want all four partitions", st.Owned)
	}
	var processed int64
	for _, ps := range st.Partitions {
		processed += ps.Processed
		if ps.Lag != 0 || ps.Replayed != 0 {
			t.Errorf("partition %d: lag %d replayed %d, want 0", ps.Partition, ps.Lag, ps.Replayed)
		}
	}
	if processed != hosts*per {
		t.Errorf("stats count %d processed, want %d", processed, hosts*per)
	}
}

// TestRestartReplaysLookback restarts a consumer: records before the
// committed offset and within the lookback are replayed, older ones are
// not, and records after it are processed live.
func TestRestartReplaysLookback(t *testing.T) {
	c := startCluster(t)
	clock := engine.NewFakeClock(time.Now().Add(-3 * time.Hour).Truncate(time.Second))
	cfg := testConfig(c, "restart")
	cfg.Clock = clock
	p := newProducer(t, cfg)
	hosts := []string{"a", "b", "c", "d", "e", "f"}
	produce := func(from, to int) {
		for n := from; n < to; n++ {
			emit(t, p, event(hosts[n%len(hosts)], n))
		}
	}
	produce(0, 24) // old: outside the lookback by the time of the restart
	clock.Advance(2 * time.Hour)
	produce(24, 48) // recent

	cc := fastConsumer(t, cfg, "first")
	cc.Lookback = time.Hour
	r1 := newRecorder()
	rc1 := runConsumer(t, cc, r1)
	waitFor(t, 20*time.Second, "first consumer processes 48", func() bool { return r1.count("process") == 48 })
	waitCommitted(t, c, cfg.Group)
	rc1.stop(t)
	if got := sortedKeys(r1.closed); fmt.Sprint(got) != "[0 1 2 3]" || r1.count("replay") != 0 {
		t.Fatalf("first consumer: closed %v, replayed %d", r1.closed, r1.count("replay"))
	}

	produce(48, 60) // live for the second consumer
	cc.Log = testLog(t, "second")
	r2 := newRecorder()
	rc2 := runConsumer(t, cc, r2)
	waitFor(t, 20*time.Second, "second consumer processes 12", func() bool { return r2.count("process") == 12 })

	seen := map[int]string{}
	firstLive := map[int]bool{}
	for _, cl := range r2.snapshot() {
		n := ns(cl)
		if prev, ok := seen[n]; ok {
			t.Fatalf("n=%d handled twice (%s, %s)", n, prev, cl.kind)
		}
		seen[n] = cl.kind
		switch {
		case n < 24:
			t.Errorf("n=%d is older than the lookback but was %sed", n, cl.kind)
		case n < 48 && cl.kind != "replay":
			t.Errorf("n=%d was before the committed offset: %s, want replay", n, cl.kind)
		case n >= 48 && cl.kind != "process":
			t.Errorf("n=%d was after the committed offset: %s, want process", n, cl.kind)
		}
		if cl.kind == "process" {
			firstLive[cl.partition] = true
		} else if firstLive[cl.partition] {
			t.Errorf("partition %d: replay of n=%d after live records", cl.partition, n)
		}
	}
	if len(seen) != 36 {
		t.Errorf("second consumer handled %d records, want 24 replayed + 12 live", len(seen))
	}
	waitCommitted(t, c, cfg.Group)
	var replayed int64
	for _, ps := range rc2.c.Stats().Partitions {
		replayed += ps.Replayed
	}
	if replayed != 24 {
		t.Errorf("stats: %d replayed, want 24", replayed)
	}
}

// TestHandover runs two consumers in one group while events keep coming;
// one stops, the other takes its partitions, replays their history and
// continues. No acknowledged record is lost or processed twice.
func TestHandover(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "handover")
	p := newProducer(t, cfg)
	ra, rb := newRecorder(), newRecorder()
	a := runConsumer(t, fastConsumer(t, cfg, "a"), ra)
	b := runConsumer(t, fastConsumer(t, cfg, "b"), rb)
	waitFor(t, 20*time.Second, "both consumers own partitions", func() bool {
		sa, sb := a.c.Stats().Owned, b.c.Stats().Owned
		return len(sa) > 0 && len(sb) > 0 && len(sa)+len(sb) == 4
	})
	ownedByA := a.c.Stats().Owned

	var mu sync.Mutex
	var acked []int
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := p.Emit(ctx, testSource, []engine.Entry{event(fmt.Sprintf("h%d", n%16), n)})
			cancel()
			if err != nil {
				continue // not acknowledged: a sender would retry
			}
			mu.Lock()
			acked = append(acked, n)
			mu.Unlock()
		}
	}()
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, 20*time.Second, "records flowing to both", func() bool {
		return ackedCount() > 100 && ra.count("process") > 10 && rb.count("process") > 10
	})
	a.stop(t)
	waitFor(t, 20*time.Second, "b owns every partition", func() bool { return len(b.c.Stats().Owned) == 4 })
	mark := ackedCount()
	waitFor(t, 20*time.Second, "more records after the handover", func() bool { return ackedCount() > mark+100 })
	close(stop)
	<-produced

	mu.Lock()
	want := append([]int(nil), acked...)
	mu.Unlock()
	processed := func() map[int]int {
		out := map[int]int{}
		for _, r := range []*recorder{ra, rb} {
			for _, cl := range r.snapshot() {
				if cl.kind == "process" {
					out[ns(cl)]++
				}
			}
		}
		return out
	}
	waitFor(t, 20*time.Second, "every acknowledged record processed", func() bool {
		got := processed()
		for _, n := range want {
			if got[n] == 0 {
				return false
			}
		}
		return true
	})
	for n, k := range processed() {
		if k != 1 {
			t.Errorf("n=%d processed %d times", n, k)
		}
	}
	// b replayed the history of the partitions it took over from a.
	replayedFrom := map[int]bool{}
	for _, cl := range rb.snapshot() {
		if cl.kind == "replay" {
			replayedFrom[cl.partition] = true
		}
	}
	for _, part := range ownedByA {
		if !replayedFrom[part] {
			t.Errorf("b took partition %d from a without replaying its history", part)
		}
	}
	if ra.count("replay") != 0 && len(ownedByA) == 0 {
		t.Errorf("a replayed without owning anything")
	}
	for _, part := range ownedByA {
		if ra.closed[part] == 0 {
			t.Errorf("a's handler of partition %d was not closed", part)
		}
	}
}

// TestDedupeAndStale checks the consumer's duplicate and stale decisions,
// in accepted time, and that a new owner rebuilds them from history.
func TestDedupeAndStale(t *testing.T) {
	c := startCluster(t)
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	clock := engine.NewFakeClock(t0)
	cfg := testConfig(c, "dedupe")
	cfg.Clock = clock
	p := newProducer(t, cfg)
	cc := fastConsumer(t, cfg, "first")
	cc.Lookback = 72 * time.Hour
	r1 := newRecorder()
	rc1 := runConsumer(t, cc, r1)

	type step struct {
		at      time.Duration
		dedupe  string
		window  time.Duration
		order   string
		ts      time.Duration
		process bool
	}
	steps := []step{
		{at: 0, dedupe: "d1", process: true},
		{at: time.Minute, dedupe: "d1", process: false},
		{at: 25 * time.Hour, dedupe: "d1", process: true}, // default window 24h
		{at: 25 * time.Hour, dedupe: "d2", window: time.Minute, process: true},
		{at: 25*time.Hour + 30*time.Second, dedupe: "d2", window: time.Minute, process: false},
		{at: 25*time.Hour + 2*time.Minute, dedupe: "d2", window: time.Minute, process: true},
		{at: 26 * time.Hour, order: "o", ts: 100 * time.Second, process: true},
		{at: 26 * time.Hour, order: "o", ts: 50 * time.Second, process: false},
		{at: 26 * time.Hour, order: "o", ts: 150 * time.Second, process: true},
	}
	emitStep := func(n int, s step) {
		clock.Set(t0.Add(s.at))
		e := event("h", n)
		e.DedupeKey, e.DedupeWindow, e.OrderKey = s.dedupe, s.window, s.order
		if s.ts != 0 {
			e.Timestamp = t0.Add(s.ts)
		}
		emit(t, p, e)
	}
	var want []int
	for n, s := range steps {
		emitStep(n, s)
		if s.process {
			want = append(want, n)
		}
	}
	counts := func(rc *running) (dups, stale int64) {
		for _, ps := range rc.c.Stats().Partitions {
			dups += ps.Duplicates
			stale += ps.Stale
		}
		return
	}
	waitFor(t, 20*time.Second, "every step decided", func() bool {
		d, s := counts(rc1)
		return r1.count("process")+int(d+s) == len(steps)
	})
	var got []int
	for _, cl := range r1.snapshot() {
		got = append(got, ns(cl))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("processed %v, want %v", got, want)
	}
	if d, s := counts(rc1); d != 2 || s != 1 {
		t.Fatalf("stats: %d duplicates, %d stale; want 2 and 1", d, s)
	}
	waitCommitted(t, c, cfg.Group)
	rc1.stop(t)

	// A new owner knows d1 (accepted at 25h) and o's newest timestamp from
	// the replayed history.
	cc.Log = testLog(t, "second")
	r2 := newRecorder()
	rc2 := runConsumer(t, cc, r2)
	more := []step{
		{at: 27 * time.Hour, dedupe: "d1", process: false},
		{at: 27 * time.Hour, order: "o", ts: 120 * time.Second, process: false},
		{at: 27 * time.Hour, dedupe: "d3", process: true},
	}
	for i, s := range more {
		emitStep(len(steps)+i, s)
	}
	waitFor(t, 20*time.Second, "the new owner decides every step", func() bool {
		d, s := counts(rc2)
		return r2.count("process")+int(d+s) == len(more)
	})
	if d, s := counts(rc2); d != 1 || s != 1 || r2.count("process") != 1 {
		t.Fatalf("new owner: %d duplicates, %d stale, %d processed; want 1, 1, 1", d, s, r2.count("process"))
	}
	if got := r2.count("replay"); got != len(want) {
		t.Fatalf("new owner replayed %d records, want the %d accepted ones", got, len(want))
	}
}

// TestProcessErrorReopensPartition fails one Process call: the partition is
// opened again with a fresh handler that replays what was processed, and
// the failed record is processed again; a record that is not a bus message
// is skipped.
func TestProcessErrorReopensPartition(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "errors")
	p := newProducer(t, cfg)
	for n := range 10 {
		emit(t, p, event("same-host", n))
	}
	part := (&kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: []byte("same-host")}, 0, 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Produce(ctx, testTopic, kafkatest.Record{Partition: int32(part), Value: []byte("not a bus message")}); err != nil {
		t.Fatal(err)
	}
	emit(t, p, event("same-host", 10))

	r := newRecorder()
	failed := false
	r.fail = func(rec engine.Record) error {
		if rec.Event["n"].(float64) == 5 && !failed {
			failed = true
			return errors.New("dispatcher unavailable")
		}
		return nil
	}
	rc := runConsumer(t, fastConsumer(t, cfg, "a"), r)
	waitFor(t, 20*time.Second, "every record processed", func() bool { return r.count("process") == 11 })
	var kinds []string
	for _, cl := range r.snapshot() {
		kinds = append(kinds, fmt.Sprintf("%s:%d", cl.kind[:1], ns(cl)))
	}
	want := "p:0 p:1 p:2 p:3 p:4 r:0 r:1 r:2 r:3 r:4 p:5 p:6 p:7 p:8 p:9 p:10"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("calls %s\nwant  %s", strings.Join(kinds, " "), want)
	}
	r.mu.Lock()
	opened, closed := r.opened[part], r.closed[part]
	r.mu.Unlock()
	if opened != 2 || closed != 1 {
		t.Fatalf("partition %d opened %d and closed %d times, want 2 and 1", part, opened, closed)
	}
	waitCommitted(t, c, cfg.Group)
	for _, ps := range rc.c.Stats().Partitions {
		if ps.Partition == part && (ps.Failures != 1 || ps.Invalid != 1 || ps.Replays != 2) {
			t.Fatalf("partition stats %+v, want 1 failure, 1 invalid, 2 replays", ps)
		}
	}
}

func TestProducerErrors(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "producer")
	cfg.WriteTimeout = 2 * time.Second
	p := newProducer(t, cfg)
	emit(t, p, event("h", 0))

	// A message over the batch limit: no retry can help.
	big := event("h", 1)
	big.Event["blob"] = strings.Repeat("x", 2<<20)
	_, err := p.Emit(context.Background(), testSource, []engine.Entry{big})
	if _, full := engine.IsBacklog(err); err == nil || full {
		t.Fatalf("oversized message: error %v, want a permanent error", err)
	}

	// The caller gave up.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Emit(ctx, testSource, []engine.Entry{event("h", 2)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled emit: %v, want context.Canceled", err)
	}

	// No broker: the sender is told to come back.
	c.Close()
	start := time.Now()
	_, err = p.Emit(context.Background(), testSource, []engine.Entry{event("h", 3)})
	be, full := engine.IsBacklog(err)
	if !full || be.RetryAfter != 2*time.Second {
		t.Fatalf("emit to a stopped cluster: %v, want a BacklogError with RetryAfter 2s", err)
	}
	if took := time.Since(start); took > cfg.WriteTimeout+2*time.Second {
		t.Fatalf("emit to a stopped cluster took %s, bound is %s", took, cfg.WriteTimeout)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Emit(context.Background(), testSource, []engine.Entry{event("h", 4)}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("emit after Close: %v, want ErrClosed", err)
	}
}

func TestConstructorErrors(t *testing.T) {
	good := Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Group: "g"}
	if _, err := NewProducer(good, nil, testLog(t, "p")); err == nil {
		t.Error("NewProducer without a key function: no error")
	}
	if _, err := NewProducer(Config{Topic: "t", Group: "g"}, hostKey, testLog(t, "p")); err == nil {
		t.Error("NewProducer without brokers: no error")
	}
	if _, err := NewConsumer(ConsumerConfig{Config: good, SessionTimeout: time.Second, HeartbeatInterval: 2 * time.Second}); err == nil ||
		!strings.Contains(err.Error(), "heartbeat interval") {
		t.Errorf("heartbeat longer than the session: %v", err)
	}
	c, err := NewConsumer(ConsumerConfig{Config: good})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), nil); err == nil {
		t.Error("Run without open: no error")
	}
}

func TestPartitions(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Partitions(ctx, testConfig(c, "g"))
	if err != nil || n != 4 {
		t.Fatalf("Partitions = %d, %v; want 4", n, err)
	}
	missing := testConfig(c, "g")
	missing.Topic = "no-such-topic"
	if _, err := Partitions(ctx, missing); err == nil || !strings.Contains(err.Error(), `topic "no-such-topic" does not exist`) {
		t.Fatalf("missing topic: %v", err)
	}
	c.Close()
	if _, err := Partitions(ctx, testConfig(c, "g")); err == nil || !strings.Contains(err.Error(), "bus: brokers") {
		t.Fatalf("stopped cluster: %v", err)
	}
}

// TestRebalanceKeepsState starts a second consumer next to a first that
// owns every partition: the partitions the first keeps keep their handler
// (no replay), the ones it gives up are closed and replayed by the second.
func TestRebalanceKeepsState(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "rebalance")
	p := newProducer(t, cfg)
	for n := range 40 {
		emit(t, p, event(fmt.Sprintf("h%d", n%10), n))
	}
	ra, rb := newRecorder(), newRecorder()
	a := runConsumer(t, fastConsumer(t, cfg, "a"), ra)
	waitFor(t, 20*time.Second, "a processes 40", func() bool { return ra.count("process") == 40 })
	waitCommitted(t, c, cfg.Group)
	b := runConsumer(t, fastConsumer(t, cfg, "b"), rb)
	waitFor(t, 20*time.Second, "a and b share the partitions", func() bool {
		sa, sb := a.c.Stats().Owned, b.c.Stats().Owned
		return len(sa) > 0 && len(sb) > 0 && len(sa)+len(sb) == 4
	})
	for n := 40; n < 60; n++ {
		emit(t, p, event(fmt.Sprintf("h%d", n%10), n))
	}
	waitFor(t, 20*time.Second, "the 20 new records processed", func() bool {
		return len(processedByKey(ra, rb)) == 60
	})
	for k, n := range processedByKey(ra, rb) {
		if n != 1 {
			t.Errorf("%s processed %d times", k, n)
		}
	}
	kept := a.c.Stats().Owned
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for _, part := range kept {
		if ra.opened[part] != 1 || ra.closed[part] != 0 {
			t.Errorf("a kept partition %d but opened it %d times and closed it %d times, want 1 and 0", part, ra.opened[part], ra.closed[part])
		}
	}
	for _, part := range b.c.Stats().Owned {
		if ra.closed[part] != 1 {
			t.Errorf("a gave partition %d to b but closed it %d times", part, ra.closed[part])
		}
	}
	for _, cl := range ra.calls {
		if cl.kind == "replay" {
			t.Errorf("a replayed %s although it never lost that partition's state", cl.key())
		}
	}
	if rb.count("replay") == 0 {
		t.Error("b took partitions with history without replaying it")
	}
}
