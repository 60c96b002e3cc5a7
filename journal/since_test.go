package journal

import (
	"context"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestSeqSince(t *testing.T) {
	ctx := context.Background()
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	// store emits one record at each of the given minutes after t0 (seq
	// 1, 2, ...), marks done through done and compacts the records done
	// more than retention before the clock's final time.
	store := func(t *testing.T, minutes []int, done uint64, compactAt time.Time) *Store {
		clock := engine.NewFakeClock(t0)
		s := openTest(t, t.TempDir(), clock, func(o *Options) { o.Retention = time.Hour })
		for i, m := range minutes {
			clock.Set(min(m))
			emit(t, s, srcA, engine.Entry{Event: ev(i + 1)})
		}
		if done > 0 {
			if err := s.Done(ctx, done); err != nil {
				t.Fatal(err)
			}
		}
		if !compactAt.IsZero() {
			clock.Set(compactAt)
			if _, err := s.Compact(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	ten := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	cases := []struct {
		name      string
		minutes   []int
		done      uint64
		compactAt time.Time
		since     time.Time
		want      uint64
	}{
		{name: "empty store", since: t0, want: 1},
		{name: "before all", minutes: ten, since: min(-60), want: 1},
		{name: "at the first", minutes: ten, since: min(0), want: 1},
		{name: "exactly at a record", minutes: ten, since: min(3), want: 4},
		{name: "between two records", minutes: ten, since: min(3).Add(30 * time.Second), want: 5},
		{name: "at the last", minutes: ten, since: min(9), want: 10},
		{name: "after all", minutes: ten, since: min(10), want: 11},
		{name: "one record, before it", minutes: []int{5}, since: min(1), want: 1},
		{name: "one record, after it", minutes: []int{5}, since: min(6), want: 2},
		{name: "records with equal times", minutes: []int{0, 1, 1, 1, 1, 2}, since: min(1), want: 2},
		// Retention is an hour: at minute 62.5 the records of minutes 0-2
		// are compacted (done through 8).
		{name: "compacted prefix, before all", minutes: ten, done: 8, compactAt: min(62).Add(30 * time.Second), since: min(-60), want: 4},
		{name: "compacted prefix, in the compacted range", minutes: ten, done: 8, compactAt: min(62).Add(30 * time.Second), since: min(1), want: 4},
		{name: "compacted prefix, between", minutes: ten, done: 8, compactAt: min(62).Add(30 * time.Second), since: min(5).Add(time.Second), want: 7},
		{name: "compacted prefix, after all", minutes: ten, done: 8, compactAt: min(62).Add(30 * time.Second), since: min(20), want: 11},
		{name: "everything compacted", minutes: ten, done: 10, compactAt: min(200), since: min(-60), want: 11},
		// The clock stepped back after record 5: record 4 (minute 10)
		// must not be skipped; records 6 and 7, older than t, are
		// replayed too.
		{name: "clock stepped back", minutes: []int{0, 1, 2, 10, 11, 3, 4}, since: min(5), want: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := store(t, tc.minutes, tc.done, tc.compactAt)
			got, err := s.SeqSince(ctx, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("SeqSince(%v) = %d, want %d (records left: %v)", tc.since.Sub(t0), got, tc.want, seqs(readAll(t, s, 0)))
			}
		})
	}
	t.Run("closed store", func(t *testing.T) {
		s := store(t, ten, 0, time.Time{})
		_ = s.Close()
		if _, err := s.SeqSince(ctx, t0); err == nil {
			t.Fatal("SeqSince on a closed store returned no error")
		}
	})
}
