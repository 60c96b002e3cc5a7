package journal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	srcA = engine.SourceRef{Ruleset: "rs", Name: "hook", Type: "webhook"}
	srcB = engine.SourceRef{Ruleset: "rs", Name: "other", Type: "webhook"}
)

func openTest(t *testing.T, dir string, clock engine.Clock, mod func(*Options)) *Store {
	t.Helper()
	opts := Options{Dir: dir, Clock: clock, Log: zerolog.Nop()}
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ev(n int) engine.Event {
	return engine.Event{"payload": map[string]any{"n": float64(n)}, "meta": map[string]any{"uuid": fmt.Sprintf("ev-%d", n)}}
}

func emit(t *testing.T, s *Store, src engine.SourceRef, entries ...engine.Entry) []engine.Outcome {
	t.Helper()
	out, err := s.Emit(context.Background(), src, entries)
	if err != nil {
		t.Fatalf("emit: %v", err)
	}
	if len(out) != len(entries) {
		t.Fatalf("emit: %d outcomes for %d entries", len(out), len(entries))
	}
	return out
}

// readAll returns every stored record after after, without blocking.
func readAll(t *testing.T, s *Store, after uint64) []engine.Record {
	t.Helper()
	recs, err := s.readRange(after, s.LastSeq(), 1<<20)
	if err != nil {
		t.Fatalf("read after %d: %v", after, err)
	}
	return recs
}

func seqs(recs []engine.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func payloadN(r engine.Record) float64 {
	p, _ := r.Event["payload"].(map[string]any)
	n, _ := p["n"].(float64)
	return n
}

func TestEmitReadDone(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	s := openTest(t, t.TempDir(), clock, nil)
	emit(t, s, srcA, engine.Entry{Event: ev(1)}, engine.Entry{Event: ev(2)})
	clock.Advance(time.Second)
	emit(t, s, srcB, engine.Entry{Event: ev(3)})

	recs := readAll(t, s, 0)
	if got := seqs(recs); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("seqs = %v, want [1 2 3]", got)
	}
	for i, want := range []struct {
		n   float64
		src engine.SourceRef
		at  time.Time
	}{{1, srcA, t0}, {2, srcA, t0}, {3, srcB, t0.Add(time.Second)}} {
		r := recs[i]
		if payloadN(r) != want.n || r.Source != want.src || !r.Accepted.Equal(want.at) {
			t.Errorf("record %d = n %v source %+v accepted %v, want %v %+v %v", r.Seq, payloadN(r), r.Source, r.Accepted, want.n, want.src, want.at)
		}
		if engine.EventID(r.Event) != fmt.Sprintf("ev-%d", int(want.n)) {
			t.Errorf("record %d: event id %q", r.Seq, engine.EventID(r.Event))
		}
	}

	ctx := context.Background()
	if recs, err := s.Read(ctx, 1, 1); err != nil || fmt.Sprint(seqs(recs)) != "[2]" {
		t.Fatalf("read(1, max 1) = %v, %v; want [2]", seqs(recs), err)
	}
	if got := s.Backlog(); got != 3 {
		t.Fatalf("backlog = %d, want 3", got)
	}
	for _, tc := range []struct {
		name     string
		seq      uint64
		wantErr  bool
		wantDone uint64
	}{
		{"done two", 2, false, 2},
		{"lower is a no-op", 1, false, 2},
		{"beyond the last record", 4, true, 2},
		{"done all", 3, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Done(ctx, tc.seq)
			if (err != nil) != tc.wantErr {
				t.Fatalf("done(%d) error = %v, want error %v", tc.seq, err, tc.wantErr)
			}
			if got, _ := s.LastDone(ctx); got != tc.wantDone {
				t.Fatalf("last done = %d, want %d", got, tc.wantDone)
			}
			if got := s.Backlog(); got != int(3-tc.wantDone) {
				t.Fatalf("backlog = %d, want %d", got, 3-tc.wantDone)
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	type call struct {
		src     engine.SourceRef
		entries []engine.Entry
		want    []engine.Outcome
	}
	A, D, S := engine.Accepted, engine.Duplicate, engine.Stale
	cases := []struct {
		name  string
		calls []call
	}{
		{"no keys: always accepted", []call{
			{srcA, []engine.Entry{{}, {}}, []engine.Outcome{A, A}},
			{srcA, []engine.Entry{{}}, []engine.Outcome{A}},
		}},
		{"duplicate across calls", []call{
			{srcA, []engine.Entry{{DedupeKey: "k"}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{DedupeKey: "k"}, {DedupeKey: "k2"}}, []engine.Outcome{D, A}},
		}},
		{"duplicate within one call", []call{
			{srcA, []engine.Entry{{DedupeKey: "k"}, {DedupeKey: "k"}}, []engine.Outcome{A, D}},
		}},
		{"dedupe keys are per source", []call{
			{srcA, []engine.Entry{{DedupeKey: "k"}}, []engine.Outcome{A}},
			{srcB, []engine.Entry{{DedupeKey: "k"}}, []engine.Outcome{A}},
			{engine.SourceRef{Ruleset: "other", Name: "hook"}, []engine.Entry{{DedupeKey: "k"}}, []engine.Outcome{A}},
		}},
		{"source names cannot run into each other", []call{
			{engine.SourceRef{Ruleset: "a", Name: "bc"}, []engine.Entry{{DedupeKey: "k"}}, []engine.Outcome{A}},
			{engine.SourceRef{Ruleset: "ab", Name: "c"}, []engine.Entry{{DedupeKey: "k"}}, []engine.Outcome{A}},
			{engine.SourceRef{Ruleset: "a", Name: "b"}, []engine.Entry{{DedupeKey: "ck"}}, []engine.Outcome{A}},
		}},
		{"older timestamp is stale, equal and newer are not", []call{
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(10)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(9)}}, []engine.Outcome{S}},
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(10)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(20)}, {OrderKey: "o", Timestamp: at(15)}}, []engine.Outcome{A, S}},
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(19)}}, []engine.Outcome{S}},
		}},
		{"order keys are per key and per source", []call{
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(10)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{OrderKey: "p", Timestamp: at(5)}}, []engine.Outcome{A}},
			{srcB, []engine.Entry{{OrderKey: "o", Timestamp: at(5)}}, []engine.Outcome{A}},
		}},
		{"timestamps before 1970 order too", []call{
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: time.Date(1960, 1, 2, 0, 0, 0, 0, time.UTC)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: time.Date(1960, 1, 1, 12, 0, 0, 0, time.UTC)}}, []engine.Outcome{S}},
		}},
		{"no order key or zero time: never stale", []call{
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(10)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{OrderKey: "o"}, {Timestamp: at(1)}}, []engine.Outcome{A, A}},
		}},
		{"duplicate wins over stale", []call{
			{srcA, []engine.Entry{{DedupeKey: "k", OrderKey: "o", Timestamp: at(10)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{DedupeKey: "k", OrderKey: "o", Timestamp: at(5)}}, []engine.Outcome{D}},
		}},
		{"a stale entry does not remember its dedupe key", []call{
			{srcA, []engine.Entry{{OrderKey: "o", Timestamp: at(10)}}, []engine.Outcome{A}},
			{srcA, []engine.Entry{{DedupeKey: "k", OrderKey: "o", Timestamp: at(5)}}, []engine.Outcome{S}},
			{srcA, []engine.Entry{{DedupeKey: "k"}}, []engine.Outcome{A}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
			accepted := 0
			for i, c := range tc.calls {
				got := emit(t, s, c.src, c.entries...)
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Fatalf("call %d: outcomes %v, want %v", i, got, c.want)
				}
				for _, o := range got {
					if o == engine.Accepted {
						accepted++
					}
				}
			}
			if got := len(readAll(t, s, 0)); got != accepted {
				t.Fatalf("%d records stored, want %d (one per accepted entry)", got, accepted)
			}
		})
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	clock := engine.NewFakeClock(t0)
	ctx := context.Background()
	s := openTest(t, dir, clock, nil)
	emit(t, s, srcA,
		engine.Entry{Event: ev(1), DedupeKey: "d1"},
		engine.Entry{Event: ev(2), OrderKey: "o", Timestamp: t0.Add(time.Minute)},
		engine.Entry{Event: ev(3)},
	)
	if err := s.Done(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, clock, nil)
	if done, _ := s.LastDone(ctx); done != 1 {
		t.Fatalf("last done after restart = %d, want 1", done)
	}
	if got := s.Backlog(); got != 2 {
		t.Fatalf("backlog after restart = %d, want 2", got)
	}
	recs := readAll(t, s, 1)
	if fmt.Sprint(seqs(recs)) != "[2 3]" || payloadN(recs[0]) != 2 || payloadN(recs[1]) != 3 {
		t.Fatalf("records not done after restart: %v", seqs(recs))
	}
	got := emit(t, s, srcA,
		engine.Entry{Event: ev(4), DedupeKey: "d1"},
		engine.Entry{Event: ev(5), OrderKey: "o", Timestamp: t0},
		engine.Entry{Event: ev(6)},
	)
	if fmt.Sprint(got) != "[duplicate stale accepted]" {
		t.Fatalf("outcomes after restart = %v, want [duplicate stale accepted]", got)
	}
	if recs := readAll(t, s, 3); fmt.Sprint(seqs(recs)) != "[4]" || payloadN(recs[0]) != 6 {
		t.Fatalf("new record after restart: %v", seqs(recs))
	}
}

func TestSeqNeverReusedAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	clock := engine.NewFakeClock(t0)
	ctx := context.Background()
	s := openTest(t, dir, clock, func(o *Options) { o.Retention = time.Hour })
	emit(t, s, srcA, engine.Entry{Event: ev(1)}, engine.Entry{Event: ev(2)})
	if err := s.Done(ctx, 2); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if st, err := s.Compact(ctx); err != nil || st.Records != 2 {
		t.Fatalf("compact = %+v, %v; want 2 records", st, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, clock, nil)
	emit(t, s, srcA, engine.Entry{Event: ev(3)})
	if recs := readAll(t, s, 0); fmt.Sprint(seqs(recs)) != "[3]" {
		t.Fatalf("records after compaction and restart = %v, want [3]", seqs(recs))
	}
}

func TestDedupeWindow(t *testing.T) {
	cases := []struct {
		name    string
		window  time.Duration // Entry.DedupeWindow; zero: the store's hour
		advance time.Duration
		want    engine.Outcome
	}{
		{"default window, inside", 0, 59 * time.Minute, engine.Duplicate},
		{"default window, at its end", 0, time.Hour, engine.Accepted},
		{"entry window, inside", 10 * time.Minute, 9 * time.Minute, engine.Duplicate},
		{"entry window, past", 10 * time.Minute, 11 * time.Minute, engine.Accepted},
		{"entry window longer than default", 3 * time.Hour, 2 * time.Hour, engine.Duplicate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := engine.NewFakeClock(t0)
			s := openTest(t, t.TempDir(), clock, func(o *Options) { o.DedupeWindow = time.Hour })
			e := engine.Entry{DedupeKey: "k", DedupeWindow: tc.window}
			emit(t, s, srcA, e)
			clock.Advance(tc.advance)
			if got := emit(t, s, srcA, e); got[0] != tc.want {
				t.Fatalf("after %s: %v, want %v", tc.advance, got[0], tc.want)
			}
		})
	}
}

func TestCompactPurgesExpiredKeys(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	ctx := context.Background()
	s := openTest(t, t.TempDir(), clock, func(o *Options) { o.DedupeWindow = time.Hour })
	emit(t, s, srcA,
		engine.Entry{DedupeKey: "short", DedupeWindow: time.Minute},
		engine.Entry{DedupeKey: "long"},
		engine.Entry{OrderKey: "o", Timestamp: t0},
	)
	clock.Advance(30 * time.Minute)
	// Renewing "short" after its expiry keeps the key: the old index entry
	// goes, the key stays.
	if got := emit(t, s, srcA, engine.Entry{DedupeKey: "short", DedupeWindow: time.Hour}); got[0] != engine.Accepted {
		t.Fatalf("expired key: %v, want accepted", got[0])
	}
	st, err := s.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DedupeKeys != 0 || st.OrderKeys != 0 {
		t.Fatalf("compact at +30m = %+v, want nothing purged", st)
	}
	if got := emit(t, s, srcA, engine.Entry{DedupeKey: "short"}); got[0] != engine.Duplicate {
		t.Fatalf("renewed key after compaction: %v, want duplicate", got[0])
	}
	clock.Advance(45 * time.Minute) // +75m: "long" and the order key expired, "short" (until +90m) not
	st, err = s.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DedupeKeys != 1 || st.OrderKeys != 1 {
		t.Fatalf("compact at +75m = %+v, want 1 dedupe key and 1 order key", st)
	}
	got := emit(t, s, srcA,
		engine.Entry{DedupeKey: "long"},
		engine.Entry{DedupeKey: "short"},
		engine.Entry{OrderKey: "o", Timestamp: t0.Add(-time.Hour)},
	)
	if fmt.Sprint(got) != "[accepted duplicate accepted]" {
		t.Fatalf("after purge: %v, want [accepted duplicate accepted]", got)
	}
}

func TestBacklogBound(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), func(o *Options) {
		o.MaxBacklog = 3
		o.RetryAfter = 7 * time.Second
	})
	emit(t, s, srcA, engine.Entry{Event: ev(1)}, engine.Entry{Event: ev(2)})
	emit(t, s, srcA, engine.Entry{Event: ev(3)})
	_, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(4), DedupeKey: "k4"}})
	be, ok := engine.IsBacklog(err)
	if !ok || be.RetryAfter != 7*time.Second {
		t.Fatalf("emit over the bound: %v, want a BacklogError with retry after 7s", err)
	}
	if got := s.Backlog(); got != 3 {
		t.Fatalf("backlog = %d, want 3 (the refused call stored nothing)", got)
	}
	if err := s.Done(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The refused entry's dedupe key was not remembered.
	if got := emit(t, s, srcA, engine.Entry{Event: ev(4), DedupeKey: "k4"}); got[0] != engine.Accepted {
		t.Fatalf("after done: %v, want accepted", got[0])
	}
	if recs := readAll(t, s, 0); fmt.Sprint(seqs(recs)) != "[1 2 3 4]" || payloadN(recs[3]) != 4 {
		t.Fatalf("records = %v", seqs(recs))
	}
}

func TestEmitFailsWhole(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	bad := engine.Event{"payload": math.NaN()} // JSON cannot hold NaN
	_, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(1), DedupeKey: "k1"}, {Event: bad, DedupeKey: "k2"}})
	if err == nil {
		t.Fatal("emit of an unencodable event: no error")
	}
	if got := s.Backlog(); got != 0 {
		t.Fatalf("backlog = %d after a failed call, want 0", got)
	}
	if got := emit(t, s, srcA, engine.Entry{Event: ev(1), DedupeKey: "k1"}); got[0] != engine.Accepted {
		t.Fatalf("the failed call's first key was remembered: %v", got[0])
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Emit(cctx, srcA, []engine.Entry{{Event: ev(2)}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("emit with an ended context: %v", err)
	}
	if got := s.Backlog(); got != 1 {
		t.Fatalf("backlog = %d, want 1", got)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	emit(t, s, srcA, engine.Entry{Event: ev(1)})
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"close again", s.Close()},
		{"emit", func() error { _, err := s.Emit(ctx, srcA, []engine.Entry{{}}); return err }()},
		{"emit nothing", func() error { _, err := s.Emit(ctx, srcA, nil); return err }()},
		{"done", s.Done(ctx, 1)},
		{"read", func() error { _, err := s.Read(ctx, 0, 1); return err }()},
		{"read blocking", func() error { _, err := s.Read(ctx, 1, 1); return err }()},
		{"submit", s.Actions().Submit(ctx, &engine.Firing{ID: "f"})},
		{"start", s.Start(ctx)},
	}
	for _, c := range checks {
		want := engine.ErrClosed
		if c.name == "close again" {
			want = nil
		}
		if !errors.Is(c.err, want) {
			t.Errorf("%s after close: %v, want %v", c.name, c.err, want)
		}
	}
}

func TestReadBlocks(t *testing.T) {
	type result struct {
		recs []engine.Record
		err  error
	}
	cases := []struct {
		name    string
		wake    func(s *Store, cancel context.CancelFunc)
		wantErr error
		wantSeq string
	}{
		{"wakes on emit", func(s *Store, _ context.CancelFunc) {
			_, _ = s.Emit(context.Background(), srcA, []engine.Entry{{Event: ev(2)}, {Event: ev(3)}})
		}, nil, "[2 3]"},
		{"ends with ctx", func(_ *Store, cancel context.CancelFunc) { cancel() }, context.Canceled, "[]"},
		{"ends on close", func(s *Store, _ context.CancelFunc) { _ = s.Close() }, engine.ErrClosed, "[]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
			emit(t, s, srcA, engine.Entry{Event: ev(1)})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			res := make(chan result, 1)
			go func() {
				recs, err := s.Read(ctx, 1, 10)
				res <- result{recs, err}
			}()
			select {
			case r := <-res:
				t.Fatalf("read returned before anything happened: %v, %v", seqs(r.recs), r.err)
			default:
			}
			tc.wake(s, cancel)
			select {
			case r := <-res:
				if !errors.Is(r.err, tc.wantErr) || fmt.Sprint(seqs(r.recs)) != tc.wantSeq {
					t.Fatalf("read = %v, %v; want %s, %v", seqs(r.recs), r.err, tc.wantSeq, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("read did not return")
			}
		})
	}
}

func TestCompactRecords(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	ctx := context.Background()
	s := openTest(t, t.TempDir(), clock, func(o *Options) { o.Retention = time.Hour })
	for i := 1; i <= 3; i++ {
		emit(t, s, srcA, engine.Entry{Event: ev(i)})
	}
	clock.Advance(30 * time.Minute)
	for i := 4; i <= 5; i++ {
		emit(t, s, srcA, engine.Entry{Event: ev(i)})
	}
	if err := s.Done(ctx, 4); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		advance     time.Duration
		wantRemoved int
		wantLeft    string
	}{
		{"within retention", 0, 0, "[1 2 3 4 5]"},
		{"first three old enough", 31 * time.Minute, 3, "[4 5]"},
		{"4 old enough, 5 not done", 2 * time.Hour, 1, "[5]"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clock.Advance(st.advance)
			got, err := s.Compact(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.Records != st.wantRemoved {
				t.Fatalf("removed %d records, want %d", got.Records, st.wantRemoved)
			}
			if left := seqs(readAll(t, s, 0)); fmt.Sprint(left) != st.wantLeft {
				t.Fatalf("left %v, want %s", left, st.wantLeft)
			}
		})
	}
}

func TestBackgroundCompaction(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	ctx := context.Background()
	tick := make(chan time.Time)
	s := openTest(t, t.TempDir(), clock, func(o *Options) {
		o.Retention = time.Hour
		o.Tick = tick
		o.AuditRetention = time.Hour
	})
	emit(t, s, srcA, engine.Entry{Event: ev(1)}, engine.Entry{Event: ev(2)})
	if err := s.Done(ctx, 2); err != nil {
		t.Fatal(err)
	}
	as := s.Actions()
	f := firing("f1", t0, "rs", "r", []string{"ev-1"}, 1)
	if err := as.Submit(ctx, f); err != nil {
		t.Fatal(err)
	}
	final(t, as, f.Invocations[0], engine.StatusSucceeded)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		t.Fatal("second start: no error")
	}
	clock.Advance(2 * time.Hour)
	send := func() {
		t.Helper()
		select {
		case tick <- clock.Now():
		case <-time.After(10 * time.Second):
			t.Fatal("the compaction loop does not take ticks")
		}
	}
	send()
	send() // the first tick's compaction has finished once the second is taken
	if left := readAll(t, s, 0); len(left) != 0 {
		t.Fatalf("records left after background compaction: %v", seqs(left))
	}
	if got, err := as.Query(ctx, engine.AuditFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("audit after background compaction: %d entries, %v", len(got), err)
	}
	for range 2 {
		if err := s.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	select {
	case tick <- clock.Now():
		t.Fatal("compaction loop still running after stop")
	default:
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
	send()
	if err := s.Close(); err != nil {
		t.Fatalf("close with compaction running: %v", err)
	}
}

func TestConcurrentEmit(t *testing.T) {
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	const writers, perWriter = 16, 40
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted = map[string]int{}
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Every key is offered by two writers at once.
				key := fmt.Sprintf("k%d-%d", w/2, i)
				out, err := s.Emit(context.Background(), srcA, []engine.Entry{{Event: ev(i), DedupeKey: key}, {Event: ev(i)}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if out[0] == engine.Accepted {
					accepted[key]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wantKeys := writers / 2 * perWriter
	if len(accepted) != wantKeys {
		t.Fatalf("%d keys accepted, want %d", len(accepted), wantKeys)
	}
	for k, n := range accepted {
		if n != 1 {
			t.Fatalf("key %q accepted %d times", k, n)
		}
	}
	recs := readAll(t, s, 0)
	want := wantKeys + writers*perWriter
	if len(recs) != want {
		t.Fatalf("%d records, want %d", len(recs), want)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d: not contiguous", i, r.Seq)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil, nil)
	_ = s
	for _, tc := range []struct {
		name  string
		opts  Options
		inUse bool
	}{
		{"no directory", Options{}, false},
		{"directory in use", Options{Dir: dir}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2, err := Open(tc.opts)
			if err == nil {
				_ = s2.Close()
				t.Fatal("open succeeded")
			}
			if errors.Is(err, ErrInUse) != tc.inUse {
				t.Fatalf("error %v: in use %v, want %v", err, errors.Is(err, ErrInUse), tc.inUse)
			}
		})
	}
}

// TestReaderWithConcurrentWork runs emitters, a reader that marks what it
// read done, and compactions at once: the reader sees every record exactly
// once and in order, and compaction never takes a record not yet done.
func TestReaderWithConcurrentWork(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	s := openTest(t, t.TempDir(), clock, func(o *Options) {
		o.Retention = time.Minute
		o.DedupeWindow = time.Minute
		o.MaxBacklog = 50
	})
	const writers, perWriter = 4, 100
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; {
				_, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(w*perWriter + i), DedupeKey: fmt.Sprintf("%d-%d", w, i)}})
				if _, full := engine.IsBacklog(err); full {
					runtime.Gosched() // the reader catches up; try again
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				i++
			}
		}()
	}
	compacted := make(chan struct{})
	go func() {
		defer close(compacted)
		for ctx.Err() == nil {
			clock.Advance(10 * time.Second)
			if _, err := s.Compact(ctx); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := map[float64]bool{}
	var after uint64
	for len(seen) < writers*perWriter {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		recs, err := s.Read(rctx, after, 7)
		rcancel()
		if err != nil {
			t.Fatalf("read after %d (%d seen): %v", after, len(seen), err)
		}
		for _, r := range recs {
			if r.Seq != after+1 {
				t.Fatalf("read seq %d after %d: a record was skipped or compacted too early", r.Seq, after)
			}
			if seen[payloadN(r)] {
				t.Fatalf("event %v read twice", payloadN(r))
			}
			seen[payloadN(r)] = true
			after = r.Seq
		}
		if err := s.Done(ctx, after); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	cancel()
	<-compacted
	if got := s.Backlog(); got != 0 {
		t.Fatalf("backlog = %d at the end, want 0", got)
	}
}
