package kafka

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

// Messages produced with kcat reach the Emitter with the body decoded per
// format and meta.kafka describing where they came from.
func TestKcatMessagesBecomeEvents(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 3, Topics: []string{"json-in", "text-in"}})
	tests := []struct {
		name     string
		topic    string
		format   string
		value    string
		wantBody any
	}{
		{"json object", "json-in", "json", `{"host":"web1","level":3}`, map[string]any{"host": "web1", "level": float64(3)}},
		{"text line", "text-in", "text", "disk full on web2", "disk full on web2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Add(-time.Minute)
			c.KcatProduce(t, tc.topic, kafkatest.Record{
				Partition: 1, Key: []byte("web1"), Value: []byte(tc.value),
				Headers: map[string]string{"trace": "abc", "origin": "kcat"},
			})
			rec := newRecorder()
			start(t, "in", fastArgs(c, map[string]any{"topic": tc.topic, "format": tc.format, "group_id": "g-" + tc.topic}), rec)
			waitFor(t, 30*time.Second, "one event", func() bool { return rec.count() >= 1 })
			e := rec.entries()[0]
			if !reflect.DeepEqual(e.Event["body"], tc.wantBody) {
				t.Errorf("body: got %#v, want %#v", e.Event["body"], tc.wantBody)
			}
			k := kafkaOf(t, e)
			if k["topic"] != tc.topic || k["partition"] != 1 || k["offset"] != int64(0) || k["key"] != "web1" {
				t.Errorf("meta.kafka: got %v", k)
			}
			if want := map[string]any{"trace": "abc", "origin": "kcat"}; !reflect.DeepEqual(k["headers"], want) ||
				!reflect.DeepEqual(engine.Meta(e.Event)["headers"], want) {
				t.Errorf("meta.kafka.headers, meta.headers: got %v and %v, want %v", k["headers"], engine.Meta(e.Event)["headers"], want)
			}
			ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(k["timestamp"]))
			if err != nil || ts.Before(before) || ts.After(time.Now().Add(time.Minute)) {
				t.Errorf("meta.kafka.timestamp: got %v (%v)", k["timestamp"], err)
			}
			if want := tc.topic + "/1/0"; e.DedupeKey != want {
				t.Errorf("DedupeKey: got %q, want %q", e.DedupeKey, want)
			}
			src, _ := engine.Meta(e.Event)["source"].(map[string]any)
			if src["type"] != "kafka" || src["name"] != "in" || engine.EventID(e.Event) == "" {
				t.Errorf("meta.source / uuid: got %v", engine.Meta(e.Event))
			}
		})
	}
}

// A value that is not JSON becomes a rejected event, goes to the
// dead-letter topic with its origin, and does not stop the consumer.
func TestInvalidJSONIsRejectedAndDeadLettered(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 3, Topics: []string{"in", "dlq"}})
	c.KcatProduce(t, "in",
		kafkatest.Record{Partition: 0, Key: []byte("a"), Value: []byte(`{"n":1}`)},
		kafkatest.Record{Partition: 0, Key: []byte("b"), Value: []byte(`{"n": oops`)},
		kafkatest.Record{Partition: 0, Key: []byte("c"), Value: []byte(`{"n":3}`)},
	)
	c.KcatProduce(t, "in", kafkatest.Record{Partition: 0, Key: []byte("d"), Value: []byte("plain words"), Headers: map[string]string{"x-id": "42"}})

	rec := newRecorder()
	r := start(t, "in", fastArgs(c, map[string]any{"topic": "in", "group_id": "g", "dead_letter_topic": "dlq"}), rec)
	waitFor(t, 30*time.Second, "four events", func() bool { return rec.count() >= 4 })

	got := rec.entries()
	sort.Slice(got, func(i, j int) bool {
		return kafkaOf(t, got[i])["offset"].(int64) < kafkaOf(t, got[j])["offset"].(int64)
	})
	for i, want := range []struct {
		rejected bool
		raw      string
	}{{false, ""}, {true, `{"n": oops`}, {false, ""}, {true, "plain words"}} {
		e := got[i]
		rej, isRej := e.Event["rejected"].(map[string]any)
		if isRej != want.rejected {
			t.Fatalf("event %d: rejected %v, want %v: %v", i, isRej, want.rejected, e.Event)
		}
		if !want.rejected {
			if _, ok := e.Event["body"]; !ok {
				t.Errorf("event %d: no body: %v", i, e.Event)
			}
			continue
		}
		if _, ok := e.Event["body"]; ok {
			t.Errorf("rejected event %d has a body: %v", i, e.Event)
		}
		if reason, _ := rej["reason"].(string); !strings.HasPrefix(reason, "invalid JSON") {
			t.Errorf("event %d: reason %q", i, reason)
		}
		if rej["raw"] != want.raw || rej["size"] != len(want.raw) {
			t.Errorf("event %d: raw %q size %v, want %q", i, rej["raw"], rej["size"], want.raw)
		}
		if e.DedupeKey != fmt.Sprintf("in/0/%d", i) {
			t.Errorf("event %d: DedupeKey %q", i, e.DedupeKey)
		}
	}

	dead := c.KcatConsume(t, "dlq", 2, 20*time.Second)
	sort.Slice(dead, func(i, j int) bool { return dead[i].Headers[HeaderOriginOffset] < dead[j].Headers[HeaderOriginOffset] })
	wantDead := []struct{ key, value, offset string }{{"b", `{"n": oops`, "1"}, {"d", "plain words", "3"}}
	for i, w := range wantDead {
		d := dead[i]
		if string(d.Key) != w.key || string(d.Value) != w.value {
			t.Errorf("dead letter %d: key %q value %q, want %q %q", i, d.Key, d.Value, w.key, w.value)
		}
		h := d.Headers
		if h[HeaderOriginTopic] != "in" || h[HeaderOriginPartition] != "0" || h[HeaderOriginOffset] != w.offset ||
			h[HeaderSource] != "in" || !strings.HasPrefix(h[HeaderReason], "invalid JSON") {
			t.Errorf("dead letter %d headers: %v", i, h)
		}
	}
	if dead[1].Headers["x-id"] != "42" {
		t.Errorf("dead letter lost the original header: %v", dead[1].Headers)
	}
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 4}, 20*time.Second)
	st := r.src.Stats()
	if st.Rejected != 2 || st.DeadLettered != 2 {
		t.Errorf("stats: rejected %d dead-lettered %d, want 2 and 2", st.Rejected, st.DeadLettered)
	}
}

// An offset is committed only once Emit accepted it and everything before
// it in its partition; a blocked partition does not hold back the others;
// a restarted consumer resumes at the first message not made durable.
func TestCommitsOnlyDurableContiguousPrefix(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 3, Topics: []string{"in"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "in", append(jsonRecords(0, 0, 10), jsonRecords(1, 100, 10)...)...); err != nil {
		t.Fatal(err)
	}

	storage := errors.New("disk on fire")
	rec := newRecorder()
	rec.fail = func(entries []engine.Entry) error {
		for _, e := range entries {
			if n := bodyN(t, e); n == 5 {
				return storage
			}
		}
		return nil
	}
	args := fastArgs(c, map[string]any{"topic": "in", "group_id": "g", "batch_size": 1})
	r := start(t, "first", args, rec)

	// Partition 0: 0..4 durable, 5 keeps failing, 6..9 wait behind it.
	// Partition 1 is unaffected.
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 5, 1: 10}, 30*time.Second)
	retriesBefore := rec.failureCount()
	waitFor(t, 30*time.Second, "the failing message to be retried", func() bool { return rec.failureCount() >= retriesBefore+10 })
	got, err := c.CommittedOffsets(ctx, "g", "in")
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 5 || got[1] != 10 {
		t.Fatalf("committed while message 5 fails: got %v, want partition 0 at 5 and 1 at 10", got)
	}
	var p0 []int
	for _, e := range rec.entries() {
		if kafkaOf(t, e)["partition"] == 0 {
			p0 = append(p0, bodyN(t, e))
		}
	}
	if want := []int{0, 1, 2, 3, 4}; !reflect.DeepEqual(p0, want) {
		t.Fatalf("partition 0 accepted %v, want %v (nothing past the failing message)", p0, want)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// A new consumer in the group resumes at offset 5 of partition 0 and
	// gets nothing of partition 1 again.
	healthy := newRecorder()
	start(t, "second", args, healthy)
	waitFor(t, 30*time.Second, "offsets 5..9 redelivered", func() bool { return healthy.count() >= 5 })
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 10, 1: 10}, 30*time.Second)
	var offsets []int64
	for _, e := range healthy.entries() {
		k := kafkaOf(t, e)
		if k["partition"] != 0 {
			t.Errorf("partition %v redelivered after its commit: %v", k["partition"], e.Event)
			continue
		}
		offsets = append(offsets, k["offset"].(int64))
	}
	if want := []int64{5, 6, 7, 8, 9}; !reflect.DeepEqual(offsets, want) {
		t.Errorf("redelivered offsets: got %v, want %v", offsets, want)
	}
}

// A full backlog is retried for the same messages: nothing is lost, nothing
// is committed ahead of it.
func TestBacklogIsRetriedWithoutLoss(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 3, Topics: []string{"in"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []kafkatest.Record
	for p := int32(0); p < 3; p++ {
		recs = append(recs, jsonRecords(p, int(p)*1000, 100)...)
	}
	if err := c.Produce(ctx, "in", recs...); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	var calls atomic.Int64
	rec.fail = func([]engine.Entry) error {
		// Every other call finds the backlog full; every fifth is shutting
		// down.
		switch n := calls.Add(1); {
		case n%2 == 0:
			return &engine.BacklogError{RetryAfter: 5 * time.Millisecond}
		case n%5 == 0:
			return engine.ErrClosed
		}
		return nil
	}
	r := start(t, "in", fastArgs(c, map[string]any{"topic": "in", "group_id": "g", "batch_size": 7}), rec)
	waitFor(t, 45*time.Second, "300 events", func() bool { return rec.count() >= 300 })
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 100, 1: 100, 2: 100}, 30*time.Second)

	seen := map[int]int{}
	for _, e := range rec.entries() {
		seen[bodyN(t, e)]++
	}
	for _, r := range recs {
		var n int
		fmt.Sscanf(string(r.Value), `{"n":%d}`, &n)
		if seen[n] != 1 {
			t.Errorf("message %d accepted %d times, want once", n, seen[n])
		}
	}
	// The source learns of its last commit just after Kafka stores it.
	waitFor(t, 10*time.Second, "the source to see its commits", func() bool {
		for _, ps := range r.src.Stats().Partitions {
			if ps.Committed != 100 {
				return false
			}
		}
		return true
	})
	st := r.src.Stats()
	if st.Retries == 0 || rec.failureCount() == 0 {
		t.Errorf("no retries recorded: stats %+v, emitter failures %d", st, rec.failureCount())
	}
	if st.Emitted != 300 || st.InFlight != 0 || st.GroupID != "g" || !reflect.DeepEqual(st.Topics, []string{"in"}) {
		t.Errorf("stats: %+v", st)
	}
	if len(st.Partitions) != 3 {
		t.Fatalf("partition stats: %+v", st.Partitions)
	}
	for _, ps := range st.Partitions {
		if ps.Done != 100 || ps.Committed != 100 || ps.HighWater != 100 || ps.Lag != 0 || ps.InFlight != 0 {
			t.Errorf("partition stats: %+v", ps)
		}
	}
}

// Two sources in one group split the partitions; when one stops, the other
// takes its partitions over and nothing produced is lost.
func TestGroupSplitsAndHandsOverPartitions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 4, Topics: []string{"in"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := fastArgs(c, map[string]any{"topic": "in", "group_id": "g"})
	recA, recB := newRecorder(), newRecorder()
	a := start(t, "a", args, recA)
	b := start(t, "b", args, recB)
	waitFor(t, 30*time.Second, "a stable group of two", func() bool {
		gs, err := c.Group(ctx, "g")
		return err == nil && gs.Members == 2 && gs.State == "Stable"
	})

	produce := func(from int) {
		var recs []kafkatest.Record
		for p := int32(0); p < 4; p++ {
			recs = append(recs, jsonRecords(p, from+int(p)*100, 25)...)
		}
		if err := c.Produce(ctx, "in", recs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(0)
	waitFor(t, 30*time.Second, "the first 100 events", func() bool { return recA.count()+recB.count() >= 100 })
	partsOf := func(r *recorder) map[any]bool {
		ps := map[any]bool{}
		for _, e := range r.entries() {
			ps[kafkaOf(t, e)["partition"]] = true
		}
		return ps
	}
	pa, pb := partsOf(recA), partsOf(recB)
	if len(pa) == 0 || len(pb) == 0 {
		t.Fatalf("partitions not split: a read %v, b read %v", pa, pb)
	}
	for p := range pa {
		if pb[p] {
			t.Errorf("partition %v read by both members", p)
		}
	}

	if err := b.stop(); err != nil {
		t.Fatalf("stop b: %v", err)
	}
	produce(1000)
	waitFor(t, 30*time.Second, "a to take over b's partitions", func() bool {
		n := 0
		for _, e := range recA.entries() {
			if bodyN(t, e) >= 1000 {
				n++
			}
		}
		return n >= 100
	})
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 50, 1: 50, 2: 50, 3: 50}, 30*time.Second)
	seen := map[int]bool{}
	for _, r := range []*recorder{recA, recB} {
		for _, e := range r.entries() {
			seen[bodyN(t, e)] = true
		}
	}
	if len(seen) != 200 {
		t.Errorf("distinct events across both members: got %d, want 200", len(seen))
	}
	if a.src.Stats().Emitted < 100 {
		t.Errorf("a emitted %d, want at least the 100 of the second round", a.src.Stats().Emitted)
	}
}

// The consumer survives every broker restarting, and partition leaders
// moving, without loss.
func TestSurvivesClusterRestart(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 3, Topics: []string{"in"}, Persist: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "in", jsonRecords(0, 0, 20)...); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	start(t, "in", fastArgs(c, map[string]any{"topic": "in", "group_id": "g"}), rec)
	waitFor(t, 30*time.Second, "the first 20 events", func() bool { return rec.count() >= 20 })
	if err := c.Restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.Produce(ctx, "in", jsonRecords(1, 100, 20)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 45*time.Second, "the 20 events produced after the restart", func() bool { return rec.count() >= 40 })
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 20, 1: 20}, 30*time.Second)

	// Leaders move (an election after a broker failure): the reader follows.
	c.ShuffleLeaders()
	if err := c.StopBroker(2); err != nil {
		t.Fatal(err)
	}
	if err := c.Produce(ctx, "in", jsonRecords(2, 200, 20)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 45*time.Second, "the 20 events produced after the leaders moved", func() bool { return rec.count() >= 60 })
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 20, 1: 20, 2: 20}, 30*time.Second)
	seen := map[int]bool{}
	for _, e := range rec.entries() {
		seen[bodyN(t, e)] = true
	}
	if len(seen) != 60 {
		t.Errorf("distinct events: got %d, want 60", len(seen))
	}
}

// topic_pattern picks up a topic created while the source runs.
func TestTopicPatternFollowsNewTopics(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 2, Topics: []string{"alerts-a", "other"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "alerts-a", jsonRecords(0, 0, 3)...); err != nil {
		t.Fatal(err)
	}
	if err := c.Produce(ctx, "other", jsonRecords(0, 50, 3)...); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	r := start(t, "in", fastArgs(c, map[string]any{"topic_pattern": "^alerts-", "group_id": "g"}), rec)
	waitFor(t, 30*time.Second, "alerts-a's events", func() bool { return rec.count() >= 3 })
	if err := c.CreateTopic(ctx, "alerts-b", 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Produce(ctx, "alerts-b", jsonRecords(1, 10, 3)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "alerts-b's events", func() bool { return rec.count() >= 6 })
	for _, e := range rec.entries() {
		if topic := kafkaOf(t, e)["topic"]; topic == "other" {
			t.Errorf("consumed a topic that does not match: %v", e.Event)
		}
	}
	if got := r.src.Stats().Topics; !reflect.DeepEqual(got, []string{"alerts-a", "alerts-b"}) {
		t.Errorf("topics: got %v", got)
	}
}

// Wrong SASL credentials end Run with an error; right ones consume.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Partitions: 1, Topics: []string{"in"},
				SASL: &kafkatest.SASLUser{Mechanism: mech, Username: "rb", Password: "s3cret"}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.Produce(ctx, "in", jsonRecords(0, 0, 2)...); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			sasl := map[string]any{"mechanism": strings.ToLower(mech), "username": "rb", "password": "s3cret"}
			start(t, "ok", fastArgs(c, map[string]any{"topic": "in", "group_id": "g", "sasl": sasl}), rec)
			waitFor(t, 30*time.Second, "two events", func() bool { return rec.count() >= 2 })

			bad := map[string]any{"mechanism": strings.ToLower(mech), "username": "rb", "password": "wrong"}
			r := start(t, "bad", fastArgs(c, map[string]any{"topic": "in", "group_id": "g2", "sasl": bad}), newRecorder())
			err := r.wait(20 * time.Second)
			if err == nil || !strings.Contains(err.Error(), "authenticate") || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("bad credentials: got %v, want an authentication error without the password", err)
			}
		})
	}
}

// A consumer that stops without its commits reaching Kafka (as after a
// crash) leaves everything to be read again; the journal's dedupe on
// topic/partition/offset keeps each message processed once.
func TestReplayAfterLostCommitsIsDeduplicated(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 3, Topics: []string{"in"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []kafkatest.Record
	for p := int32(0); p < 3; p++ {
		recs = append(recs, jsonRecords(p, int(p)*100, 20)...)
	}
	if err := c.Produce(ctx, "in", recs...); err != nil {
		t.Fatal(err)
	}
	restore := c.FailOffsetCommits("g")
	journal := newRecorder() // shared by both consumers, as one journal would be
	args := fastArgs(c, map[string]any{"topic": "in", "group_id": "g"})
	first := start(t, "first", args, journal)
	waitFor(t, 30*time.Second, "60 events", func() bool { return journal.count() >= 60 })
	waitFor(t, 30*time.Second, "a refused commit", func() bool { return first.src.Stats().CommitErrors > 0 })
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.CommittedOffsets(ctx, "g", "in"); err != nil || len(got) != 0 {
		t.Fatalf("committed offsets while commits fail: %v (%v)", got, err)
	}
	restore()

	second := start(t, "second", args, journal)
	waitCommitted(t, c, "g", "in", map[int32]int64{0: 20, 1: 20, 2: 20}, 30*time.Second)
	st := second.src.Stats()
	if st.Duplicates != 60 || st.Emitted != 0 {
		t.Errorf("replay: %d duplicates and %d new events, want 60 and 0", st.Duplicates, st.Emitted)
	}
	if n := journal.count(); n != 60 {
		t.Errorf("journal holds %d events, want 60", n)
	}
}

// The lag (messages in Kafka not yet durable) is logged every
// lag_log_interval and visible in Stats.
func TestLagIsLoggedAndExposed(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Partitions: 1, Topics: []string{"in"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "in", jsonRecords(0, 0, 10)...); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	rec.fail = func([]engine.Entry) error { return &engine.BacklogError{RetryAfter: 10 * time.Millisecond} }
	var logs logBuffer
	r := startLogged(t, "in", fastArgs(c, map[string]any{"topic": "in", "group_id": "g", "lag_log_interval": "50ms"}), rec, &logs)
	waitFor(t, 30*time.Second, `a "kafka consumer lag" line with lag 10`, func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"message":"kafka consumer lag"`) && strings.Contains(line, `"lag":10,`) {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "all ten fetched and waiting", func() bool {
		ps := r.src.Stats().Partitions
		return len(ps) == 1 && ps[0].InFlight == 10
	})
	ps := r.src.Stats().Partitions
	if ps[0].Lag != 10 || ps[0].Done != -1 || ps[0].Committed != -1 || ps[0].HighWater != 10 {
		t.Fatalf("partition stats while the backlog is full: %+v", ps)
	}
}

// offset: latest makes a new group skip what was there before it joined.
func TestOffsetLatestSkipsHistory(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Partitions: 1, Topics: []string{"in"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "in", jsonRecords(0, 0, 3)...); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	start(t, "in", fastArgs(c, map[string]any{"topic": "in", "group_id": "g", "offset": "latest"}), rec)
	// When the reader has resolved "latest" is not observable, so produce
	// until something arrives; none of the first three may.
	n := 100
	waitFor(t, 30*time.Second, "an event produced after the start", func() bool {
		if rec.count() > 0 {
			return true
		}
		if err := c.Produce(ctx, "in", jsonRecords(0, n, 1)...); err != nil {
			t.Fatal(err)
		}
		n++
		time.Sleep(50 * time.Millisecond)
		return rec.count() > 0
	})
	for _, e := range rec.entries() {
		if got := bodyN(t, e); got < 100 {
			t.Errorf("offset latest delivered message %d produced before the group existed", got)
		}
	}
}

func TestRunTwiceAtOnceIsRefused(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Partitions: 1, Topics: []string{"in"}})
	r := start(t, "in", fastArgs(c, map[string]any{"topic": "in", "group_id": "g"}), newRecorder())
	waitFor(t, 10*time.Second, "the group to form", func() bool {
		gs, err := c.Group(context.Background(), "g")
		return err == nil && gs.Members == 1
	})
	if err := r.src.Run(context.Background(), newRecorder()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Run: got %v", err)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
