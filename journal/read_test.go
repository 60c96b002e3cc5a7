package journal

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rulebook-dev/rulebook/engine"
)

// Reading right behind the writers (from the recent ring) and reading after
// a restart (from the database) give the same records, in order, past the
// ring's size; only the second read is marked Redelivered.
func TestReadLiveAndAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, engine.NewFakeClock(t0), func(o *Options) { o.MaxBacklog = -1 })
	total := (recentRecords + recentRecords/2) / 100 * 100 // past the ring, in batches of 100
	for n := 0; n < total; n += 100 {
		entries := make([]engine.Entry, 100)
		for i := range entries {
			entries[i] = engine.Entry{Event: ev(n + i)}
		}
		emit(t, s, srcA, entries...)
	}
	readThrough := func(s *Store, wantRedelivered bool) []engine.Record {
		t.Helper()
		var all []engine.Record
		var after uint64
		for len(all) < total {
			recs, err := s.Read(ctx, after, 700)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Redelivered != wantRedelivered {
					t.Fatalf("record %d: Redelivered %v, want %v", r.Seq, r.Redelivered, wantRedelivered)
				}
			}
			all = append(all, recs...)
			after = recs[len(recs)-1].Seq
		}
		for i, r := range all {
			if r.Seq != uint64(i+1) || payloadN(r) != float64(i) || r.Source != srcA || !r.Accepted.Equal(t0) {
				t.Fatalf("record %d: seq %d, n %v, source %+v, accepted %v", i, r.Seq, payloadN(r), r.Source, r.Accepted)
			}
		}
		return all
	}
	live := readThrough(s, false)
	// Reading the same records again in this process: they may have been
	// processed, so they are redelivered.
	recs, err := s.Read(ctx, 0, 10)
	if err != nil || len(recs) != 10 || !recs[0].Redelivered || !recs[9].Redelivered {
		t.Fatalf("re-read: %d records, %v", len(recs), err)
	}
	if err := s.Done(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, engine.NewFakeClock(t0), nil)
	if d, _ := s.LastDone(ctx); d != 10 {
		t.Fatalf("last done after a clean close: %d, want 10", d)
	}
	restarted := readThrough(s, true)
	for i := range live {
		if !reflect.DeepEqual(live[i].Event, restarted[i].Event) {
			t.Fatalf("record %d: live %v, after restart %v", i+1, live[i].Event, restarted[i].Event)
		}
		// The ring and the database give the same size: the stored value's.
		if live[i].Size == 0 || live[i].Size != restarted[i].Size {
			t.Fatalf("record %d: size %d live, %d after restart", i+1, live[i].Size, restarted[i].Size)
		}
	}
	// New records after the restart are first deliveries.
	emit(t, s, srcA, engine.Entry{Event: ev(total)})
	recs, err = s.Read(ctx, uint64(total), 10)
	if err != nil || len(recs) != 1 || recs[0].Redelivered {
		t.Fatalf("new record after restart: %+v, %v", recs, err)
	}
}

// encodeValue writes JSON that encoding/json reads back as the value it
// returns, for what sources emit and for what they might.
func TestEncodeValueMatchesEncodingJSON(t *testing.T) {
	type custom struct {
		A string `json:"a"`
		B []int  `json:"b"`
	}
	cases := map[string]any{
		"plain":          map[string]any{"s": "x", "f": 91.5, "b": true, "n": nil, "l": []any{1.0, "two", false}},
		"escapes":        map[string]any{"q\"k": "a\"b\\c\n\t\x01", "html": "<a href='x'>&</a>", "uni": "héllo ✓ \u2028"},
		"invalid utf8":   map[string]any{"bad": "a\xffb", "k\xfe": "v"},
		"numbers":        map[string]any{"i": 42, "i64": int64(math.MaxInt64), "i32": int32(-7), "u": uint64(1 << 63), "big": 1e21, "small": 1e-7, "neg0": math.Copysign(0, -1), "f32": float32(0.1)},
		"other types":    map[string]any{"time": time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), "strs": []string{"a", "b"}, "ss": map[string]string{"k": "v"}, "struct": custom{A: "x", B: []int{1}}, "num": json.Number("12.50")},
		"nested":         map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": []any{}}, map[string]any{}}}},
		"empty":          map[string]any{},
		"nil containers": map[string]any{"m": map[string]any(nil), "l": []any(nil), "e": engine.Event(nil), "in": []any{map[string]any(nil)}},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			b, got, err := encodeValue(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			var fromBytes any
			if err := json.Unmarshal(b, &fromBytes); err != nil {
				t.Fatalf("%s is not JSON: %v", b, err)
			}
			std, _ := json.Marshal(v)
			var fromStd any
			if err := json.Unmarshal(std, &fromStd); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromBytes, fromStd) {
				t.Fatalf("decoded %#v, encoding/json gives %#v", fromBytes, fromStd)
			}
			if !reflect.DeepEqual(got, fromStd) {
				t.Fatalf("returned %#v, a decoder gives %#v", got, fromStd)
			}
		})
	}
	for _, bad := range []any{math.NaN(), map[string]any{"x": math.Inf(1)}, map[string]any{"c": make(chan int)}} {
		if _, _, err := encodeValue(nil, bad); err == nil {
			t.Errorf("encodeValue(%v): no error", bad)
		}
	}
	// The returned tree is the caller's no more: changing the caller's map
	// does not change it.
	src := map[string]any{"m": map[string]any{"x": "1"}, "l": []any{"a"}}
	_, got, _ := encodeValue(nil, src)
	src["m"].(map[string]any)["x"] = "2"
	src["l"].([]any)[0] = "b"
	if g := got.(map[string]any); g["m"].(map[string]any)["x"] != "1" || g["l"].([]any)[0] != "a" {
		t.Fatalf("returned value shares containers with the input: %v", g)
	}
}

func FuzzEncodeValue(f *testing.F) {
	f.Add(`{"a":[1,"x",{"b":null}],"c":true}`)
	f.Add(`"a\u0000\"b"`)
	f.Add(`[1e300,-0.0,12345678901234567890]`)
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		if json.Unmarshal([]byte(in), &v) != nil {
			return
		}
		b, got, err := encodeValue(nil, v)
		if err != nil {
			t.Fatalf("encode %q: %v", in, err)
		}
		var back any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("encode %q gave %q: %v", in, b, err)
		}
		if !reflect.DeepEqual(back, v) || !reflect.DeepEqual(got, v) {
			t.Fatalf("%q: back %#v, returned %#v, want %#v", in, back, got, v)
		}
		if strings.ContainsRune(string(b), '\n') {
			t.Fatalf("%q: raw newline in %q", in, b)
		}
	})
}

// A record that cannot be decoded is an error of Read, not a crash of the
// reader.
func TestReadReportsACorruptRecord(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, engine.NewFakeClock(t0), nil)
	emit(t, s, srcA, engine.Entry{Event: ev(1)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart the recent ring is empty: Read decodes from the
	// database.
	s = openTest(t, dir, engine.NewFakeClock(t0), nil)
	if err := s.db.Set(seqKey(pEvent, 1), []byte("short"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Read(ctx, 0, 10)
	if !errors.Is(err, errCorrupt) || recs != nil {
		t.Fatalf("read of a corrupt record: %v, %v; want %v", recs, err, errCorrupt)
	}
}
