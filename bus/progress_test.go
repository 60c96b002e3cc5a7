package bus

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNoCommitBeforeAPartitionStarts keeps a newly assigned consumer from
// learning its partitions' offsets (every ListOffsets fails) over many
// commit intervals: the committer must not commit anything for partitions
// whose progress it does not know yet, which would rewind the group.
func TestNoCommitBeforeAPartitionStarts(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c, "no-early-commit")
	p := newProducer(t, cfg)
	for n := range 12 {
		emit(t, p, event(fmt.Sprintf("h%d", n%4), n))
	}
	r1 := newRecorder()
	rc1 := runConsumer(t, fastConsumer(t, cfg, "first"), r1)
	waitFor(t, 20*time.Second, "first consumer processes 12", func() bool { return r1.count("process") == 12 })
	waitCommitted(t, c, cfg.Group)
	rc1.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want, err := c.CommittedOffsets(ctx, cfg.Group, testTopic)
	if err != nil {
		t.Fatal(err)
	}

	var failing atomic.Bool
	var refused atomic.Int32
	failing.Store(true)
	kc := c.Kfake()
	kc.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		lr := req.(*kmsg.ListOffsetsRequest)
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

	r2 := newRecorder()
	rc2 := runConsumer(t, fastConsumer(t, cfg, "second"), r2)
	// Four refusals per partition take at least 50+100+200ms of backoff:
	// several commit intervals (50ms) with no partition started.
	waitFor(t, 20*time.Second, "offset lookups refused", func() bool { return refused.Load() >= 16 })
	got, err := c.CommittedOffsets(ctx, cfg.Group, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	for part, off := range want {
		if got[part] != off {
			t.Errorf("partition %d: committed %d while its offsets were unknown, want %d", part, got[part], off)
		}
	}
	failing.Store(false)
	rc2.stop(t)
	if n := r2.count("process"); n != 0 {
		t.Errorf("second consumer processed %d records, want none", n)
	}
}
