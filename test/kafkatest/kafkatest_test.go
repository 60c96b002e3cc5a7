package kafkatest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

func TestKcatRoundTrip(t *testing.T) {
	c := Start(t, Options{Brokers: 3, Partitions: 4, Topics: []string{"events"}})
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("addrs: got %d, want 3", got)
	}
	c.KcatProduce(t, "events",
		Record{Partition: 2, Key: []byte("k1"), Value: []byte(`{"n":1}`), Headers: map[string]string{"h": "v", "x": "y"}},
		Record{Partition: 2, Key: []byte("k2"), Value: []byte("line one\nline two"), Headers: map[string]string{"h": "v", "x": "y"}},
		Record{Partition: -1, Value: []byte("no key")},
	)
	recs := c.KcatConsume(t, "events", 3, 20*time.Second)
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition > recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	byValue := map[string]Record{}
	for _, r := range recs {
		byValue[string(r.Value)] = r
	}
	first, ok := byValue[`{"n":1}`]
	if !ok || string(first.Key) != "k1" || first.Partition != 2 || first.Offset != 0 || first.Headers["h"] != "v" || first.Headers["x"] != "y" {
		t.Errorf("first record: got %+v", first)
	}
	second, ok := byValue["line one\nline two"]
	if !ok || string(second.Key) != "k2" || second.Offset != 1 {
		t.Errorf("multi-line record: got %+v (all %+v)", second, recs)
	}
	third, ok := byValue["no key"]
	if !ok || third.Key != nil || len(third.Headers) != 0 {
		t.Errorf("keyless record: got %+v", third)
	}
}

func TestRestartKeepsRecordsAndOffsets(t *testing.T) {
	c := Start(t, Options{Brokers: 3, Partitions: 3, Topics: []string{"t"}, Persist: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []Record
	for i := range 30 {
		recs = append(recs, Record{Partition: int32(i % 3), Value: fmt.Appendf(nil, "m%d", i)})
	}
	if err := c.Produce(ctx, "t", recs...); err != nil {
		t.Fatal(err)
	}
	before := c.Addrs()
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	if after := c.Addrs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("addresses changed across restart: %v -> %v", before, after)
	}
	end, err := c.EndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if end[p] != 10 {
			t.Errorf("partition %d end offset after restart: got %d, want 10 (all %v)", p, end[p], end)
		}
	}
	got := c.KcatConsume(t, "t", 30, 20*time.Second)
	if len(got) != 30 {
		t.Fatalf("consumed %d records after restart, want 30", len(got))
	}
}

func TestStopStartBroker(t *testing.T) {
	c := Start(t, Options{Brokers: 3, Partitions: 3, Topics: []string{"t"}})
	if err := c.StopBroker(1); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Addrs()); got != 2 {
		t.Fatalf("addrs with a broker stopped: got %d, want 2", got)
	}
	if err := c.StopBroker(1); err == nil {
		t.Fatal("stopping a stopped broker: want an error")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "t", Record{Partition: 0, Value: []byte("x")}); err != nil {
		t.Fatalf("produce with a broker stopped: %v", err)
	}
	if err := c.StartBroker(1); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("addrs after start: got %d, want 3", got)
	}
}

func TestParseKcatJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"empty", "", 0, false},
		{"two lines", `{"topic":"a","partition":0,"offset":1,"tstype":"create","ts":1,"headers":["a","b"],"key":null,"payload":"x"}` + "\n" +
			`{"topic":"a","partition":1,"offset":2,"ts":2,"key":"k","payload":null}` + "\n", 2, false},
		{"odd headers", `{"topic":"a","headers":["a"]}`, 0, true},
		{"garbage", "nope", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ParseKcatJSON([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && len(recs) != tc.want {
				t.Fatalf("records: got %d, want %d", len(recs), tc.want)
			}
		})
	}
}

func FuzzParseKcatJSON(f *testing.F) {
	f.Add([]byte(`{"topic":"a","partition":0,"offset":1,"headers":["a","b"],"key":"k","payload":"x"}`))
	f.Add([]byte("\n\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Must not panic; every record returned has its header map intact.
		recs, _ := ParseKcatJSON(b)
		for _, r := range recs {
			for k, v := range r.Headers {
				_, _ = k, v
			}
		}
	})
}

func TestProcessClusterRestart(t *testing.T) {
	c := StartProcess(t, Options{Brokers: 3, Partitions: 2, Topics: []string{"t"}, Persist: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "t", Record{Partition: 1, Value: []byte("a")}, Record{Partition: 1, Value: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if c.Kfake() != nil || c.StopBroker(0) == nil {
		t.Fatal("a process cluster offers in-process fault injection")
	}
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	end, err := c.EndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if end[1] != 2 || end[0] != 0 {
		t.Fatalf("end offsets after restart: %v, want partition 1 at 2", end)
	}
	if got := c.KcatConsume(t, "t", 2, 20*time.Second); string(got[0].Value) != "a" || string(got[1].Value) != "b" {
		t.Fatalf("records after restart: %+v", got)
	}
}
