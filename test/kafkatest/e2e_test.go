package kafkatest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// startRulebook runs `rulebook run` with stdout and stderr in its Log().
func startRulebook(t *testing.T, bin, rulebook, dataDir string) *rbtest.Process {
	t.Helper()
	return rbtest.StartWith(t, rbtest.Options{Combined: true}, bin, "run", rulebook, "--data-dir", dataDir, "--log-format", "json")
}

func sumOffsets(t *testing.T, c *Cluster, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	end, err := c.EndOffsets(ctx, topic)
	if err != nil {
		return -1
	}
	var n int64
	for _, o := range end {
		n += o
	}
	return n
}

// TestRulebookBinaryKafkaLoop runs the real rulebook binary: messages
// produced with kcat fire a rule whose kafka action produces to another
// topic, read back with kcat. The binary is killed with SIGKILL mid-stream
// and started again: every matching message yields its action at least once,
// and every action carries one invocation ID per message (a repeat after the
// crash keeps its ID, so a consumer can drop it).
func TestRulebookBinaryKafkaLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the rulebook binary")
	}
	Kcat(t)
	// The broker runs as its own process: under -race an in-process kfake
	// would be the bottleneck of the rulebook process it serves.
	c := StartProcess(t, Options{Brokers: 3, Partitions: 3, Topics: []string{"in", "out"}})
	dir := t.TempDir()
	bin := rbtest.BuildT(t)
	rb := filepath.Join(dir, "loop.yml")
	err := os.WriteFile(rb, fmt.Appendf(nil, `- name: kafka loop
  hosts: all
  sources:
    - name: orders
      kafka:
        brokers: %q
        topic: in
        group_id: e2e
        commit_interval: 200ms
  rules:
    - name: big order
      condition: event.body.amount > 100
      action:
        kafka:
          brokers: %q
          topic: out
          key: "{{ event.body.id }}"
          value: {id: "{{ event.body.id }}", origin: "{{ event.meta.kafka.topic }}"}
          headers: {rule: big-order}
          retries: 3      # an attempt cut short by the SIGKILL counts as one
          delay: 100ms
`, c.Bootstrap(), c.Bootstrap()), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")

	first := startRulebook(t, bin, rb, data)
	rbtest.WaitFor(t, 60*time.Second, "the rulebook to join its consumer group", func() bool {
		gs, err := c.Group(context.Background(), "e2e")
		return err == nil && gs.Members == 1 && gs.State == "Stable"
	})

	const n = 600
	var recs []Record
	want := map[string]bool{}
	for i := range n {
		amount := 200
		if i%5 == 0 {
			amount = 50 // does not match
		} else {
			want[fmt.Sprintf("o%d", i)] = true
		}
		recs = append(recs, Record{Partition: -1, Value: fmt.Appendf(nil, `{"id":"o%d","amount":%d}`, i, amount)})
	}
	recs = append(recs, Record{Partition: -1, Value: []byte("not json")})
	c.KcatProduce(t, "in", recs...)

	rbtest.WaitFor(t, 60*time.Second, "the first actions", func() bool { return sumOffsets(t, c, "out") >= 50 })
	if err := first.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ok, _ := first.Wait(10 * time.Second); !ok {
		t.Fatal("rulebook still running 10s after SIGKILL")
	}
	killedAt := sumOffsets(t, c, "out")

	second := startRulebook(t, bin, rb, data)
	rbtest.WaitFor(t, 90*time.Second, "an action for every matching message", func() bool { return sumOffsets(t, c, "out") >= int64(len(want)) })
	rbtest.WaitFor(t, 30*time.Second, "the group to commit every message", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := c.CommittedOffsets(ctx, "e2e", "in")
		if err != nil {
			return false
		}
		end, err := c.EndOffsets(ctx, "in")
		if err != nil {
			return false
		}
		for p, o := range end {
			if got[p] != o {
				return false
			}
		}
		return true
	})

	total := int(sumOffsets(t, c, "out"))
	out := c.KcatConsume(t, "out", total, 30*time.Second)
	idsOfKey := map[string]map[string]bool{}
	keysOfID := map[string]map[string]bool{}
	for _, r := range out {
		key, id := string(r.Key), r.Headers["rulebook-invocation-id"]
		if id == "" || r.Headers["rule"] != "big-order" {
			t.Fatalf("action message without its headers: %+v", r)
		}
		var v struct{ ID, Origin string }
		if err := json.Unmarshal(r.Value, &v); err != nil || v.ID != key || v.Origin != "in" {
			t.Fatalf("action message value %q for key %q: %v", r.Value, key, err)
		}
		if idsOfKey[key] == nil {
			idsOfKey[key] = map[string]bool{}
		}
		idsOfKey[key][id] = true
		if keysOfID[id] == nil {
			keysOfID[id] = map[string]bool{}
		}
		keysOfID[id][key] = true
	}
	for k := range want {
		if len(idsOfKey[k]) != 1 {
			t.Errorf("message %s: %d distinct invocation ids, want exactly 1", k, len(idsOfKey[k]))
		}
	}
	for k := range idsOfKey {
		if !want[k] {
			t.Errorf("action for %s, which does not match the rule", k)
		}
	}
	for id, keys := range keysOfID {
		if len(keys) != 1 {
			t.Errorf("invocation %s produced for several messages: %v", id, keys)
		}
	}
	if !strings.Contains(second.Log(), `"kafka message rejected"`) && !strings.Contains(first.Log(), `"kafka message rejected"`) {
		t.Errorf("the invalid message was not logged as rejected")
	}
	t.Logf("%d matching messages, %d action messages (%d when killed, %d repeats after the crash)", len(want), total, killedAt, total-len(want))

	if err := second.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ok, err := second.Wait(30 * time.Second)
	if !ok {
		t.Fatal("rulebook did not exit within 30s of SIGTERM")
	}
	if err != nil {
		t.Errorf("rulebook exit after SIGTERM: %v", err)
	}
}
