package kafka

import (
	"reflect"
	"testing"
)

func TestTrackerCommitsContiguousPrefix(t *testing.T) {
	p0 := topicPartition{"t", 0}
	p1 := topicPartition{"t", 1}
	type step struct {
		op        string // "fetch", "done", "commit"
		tp        topicPartition
		offset    int64
		wantFetch bool // for fetch
	}
	tests := []struct {
		name  string
		steps []step
		want  map[topicPartition]int64
	}{
		{
			name:  "nothing done",
			steps: []step{{"fetch", p0, 0, true}, {"fetch", p0, 1, true}},
			want:  nil,
		},
		{
			name:  "in order",
			steps: []step{{"fetch", p0, 0, true}, {"fetch", p0, 1, true}, {"done", p0, 0, false}, {"done", p0, 1, false}},
			want:  map[topicPartition]int64{p0: 1},
		},
		{
			name: "a later message done first waits for the earlier",
			steps: []step{{"fetch", p0, 0, true}, {"fetch", p0, 1, true}, {"fetch", p0, 2, true},
				{"done", p0, 2, false}, {"done", p0, 1, false}},
			want: nil,
		},
		{
			name: "the gap closes",
			steps: []step{{"fetch", p0, 0, true}, {"fetch", p0, 1, true}, {"fetch", p0, 2, true},
				{"done", p0, 2, false}, {"done", p0, 0, false}},
			want: map[topicPartition]int64{p0: 0},
		},
		{
			name: "offsets with holes (compaction) are contiguous by fetch order",
			steps: []step{{"fetch", p0, 3, true}, {"fetch", p0, 7, true}, {"fetch", p0, 20, true},
				{"done", p0, 7, false}, {"done", p0, 3, false}},
			want: map[topicPartition]int64{p0: 7},
		},
		{
			name: "partitions are independent",
			steps: []step{{"fetch", p0, 0, true}, {"fetch", p1, 0, true}, {"fetch", p1, 1, true},
				{"done", p1, 0, false}, {"done", p1, 1, false}},
			want: map[topicPartition]int64{p1: 1},
		},
		{
			name: "already committed is not offered again",
			steps: []step{{"fetch", p0, 0, true}, {"done", p0, 0, false}, {"commit", p0, 0, false},
				{"fetch", p0, 1, true}},
			want: nil,
		},
		{
			name: "redelivery of a done message is skipped",
			steps: []step{{"fetch", p0, 0, true}, {"fetch", p0, 1, true}, {"done", p0, 0, false},
				{"fetch", p0, 0, false}, {"fetch", p0, 1, false}, {"fetch", p0, 2, true}},
			want: map[topicPartition]int64{p0: 0},
		},
		{
			name:  "done for an unknown offset is ignored",
			steps: []step{{"fetch", p0, 5, true}, {"done", p0, 4, false}, {"done", p0, 6, false}},
			want:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker()
			for i, s := range tc.steps {
				switch s.op {
				case "fetch":
					if got := tr.fetched(s.tp, s.offset, 100); got != s.wantFetch {
						t.Fatalf("step %d: fetched(%v, %d) = %v, want %v", i, s.tp, s.offset, got, s.wantFetch)
					}
				case "done":
					tr.done(s.tp, s.offset)
				case "commit":
					tr.committed(s.tp, s.offset)
				}
			}
			if got := tr.committable(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("committable: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTrackerStats(t *testing.T) {
	tr := newTracker()
	tp := topicPartition{"t", 2}
	for o := int64(10); o < 15; o++ {
		tr.fetched(tp, o, 40)
	}
	tr.done(tp, 10)
	tr.done(tp, 11)
	tr.done(tp, 13)
	tr.committed(tp, 10)
	got := tr.stats()
	want := []PartitionStats{{Topic: "t", Partition: 2, Done: 12, Committed: 11, HighWater: 40, Lag: 28, InFlight: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stats: got %+v, want %+v", got, want)
	}
	if n := tr.inFlight(); n != 2 {
		t.Fatalf("inFlight: got %d, want 2", n)
	}
}
