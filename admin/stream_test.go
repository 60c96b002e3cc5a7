package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

func ids(es []Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func publishN(s *Stream, n int) {
	for i := 0; i < n; i++ {
		s.Publish(KindEvent, map[string]int{"n": i})
	}
}

func TestSubscribe(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		published  int
		sub        func(*Stream) *Subscription
		wantIDs    []uint64
		wantMissed bool
	}{
		{"resume after 2", 10, 5, func(s *Stream) *Subscription { return s.SubscribeAfter(2) }, []uint64{3, 4, 5}, false},
		{"after 0 is everything kept", 10, 5, func(s *Stream) *Subscription { return s.SubscribeAfter(0) }, []uint64{1, 2, 3, 4, 5}, false},
		{"up to date", 10, 5, func(s *Stream) *Subscription { return s.SubscribeAfter(5) }, []uint64{}, false},
		{"after from a previous process", 10, 3, func(s *Stream) *Subscription { return s.SubscribeAfter(900) }, []uint64{1, 2, 3}, false},
		{"resume behind the ring", 4, 10, func(s *Stream) *Subscription { return s.SubscribeAfter(2) }, []uint64{7, 8, 9, 10}, true},
		{"resume right at the ring's start", 4, 10, func(s *Stream) *Subscription { return s.SubscribeAfter(6) }, []uint64{7, 8, 9, 10}, false},
		{"after 0 behind the ring is no gap", 4, 10, func(s *Stream) *Subscription { return s.SubscribeAfter(0) }, []uint64{7, 8, 9, 10}, false},
		{"new without replay", 10, 5, func(s *Stream) *Subscription { return s.SubscribeNew(0) }, []uint64{}, false},
		{"new with replay", 10, 5, func(s *Stream) *Subscription { return s.SubscribeNew(2) }, []uint64{4, 5}, false},
		{"replay more than kept", 4, 10, func(s *Stream) *Subscription { return s.SubscribeNew(50) }, []uint64{7, 8, 9, 10}, false},
		{"empty stream", 4, 0, func(s *Stream) *Subscription { return s.SubscribeAfter(0) }, []uint64{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(StreamConfig{Size: tc.size})
			publishN(s, tc.published)
			sub := tc.sub(s)
			defer sub.Cancel()
			if got := ids(sub.Backlog); fmt.Sprint(got) != fmt.Sprint(tc.wantIDs) {
				t.Errorf("backlog %v, want %v", got, tc.wantIDs)
			}
			if sub.Missed != tc.wantMissed {
				t.Errorf("missed %v, want %v", sub.Missed, tc.wantMissed)
			}
			// Live entries follow the backlog without a gap or repeat.
			id := s.Publish(KindFiring, map[string]string{})
			select {
			case e := <-sub.C:
				if e.ID != id || e.ID != uint64(tc.published)+1 || e.Kind != KindFiring {
					t.Errorf("live entry %+v, want id %d", e, tc.published+1)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no live entry")
			}
		})
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	s := NewStream(StreamConfig{Size: 100, ClientBuffer: 3})
	slow := s.SubscribeNew(0)
	fast := s.SubscribeNew(0)
	defer fast.Cancel()
	// Publish never waits: slow reads nothing and is dropped once its
	// buffer of 3 is full; fast reads each entry and stays.
	for i := 1; i <= 10; i++ {
		id := s.Publish(KindEvent, i)
		select {
		case e, ok := <-fast.C:
			if !ok || e.ID != id {
				t.Fatalf("fast subscriber got %+v, %v; want id %d", e, ok, id)
			}
		default:
			t.Fatalf("entry %d not delivered to the fast subscriber", id)
		}
	}
	if !slow.Dropped() {
		t.Fatal("slow subscriber not dropped")
	}
	if fast.Dropped() {
		t.Error("fast subscriber dropped")
	}
	var seen []uint64
	for e := range slow.C { // closed: yields what was buffered, then ends
		seen = append(seen, e.ID)
	}
	if fmt.Sprint(seen) != "[1 2 3]" {
		t.Errorf("slow subscriber got %v before being dropped, want [1 2 3]", seen)
	}
	// The dropped client resumes after the last ID it saw and misses nothing.
	again := s.SubscribeAfter(3)
	defer again.Cancel()
	if got := ids(again.Backlog); fmt.Sprint(got) != "[4 5 6 7 8 9 10]" {
		t.Errorf("resumed backlog %v", got)
	}
	slow.Cancel() // harmless after a drop
}

func TestStreamClose(t *testing.T) {
	s := NewStream(StreamConfig{})
	sub := s.SubscribeNew(0)
	s.Close()
	s.Close()
	if _, ok := <-sub.C; ok {
		t.Fatal("subscription open after close")
	}
	if id := s.Publish(KindEvent, 1); id != 0 {
		t.Errorf("publish after close returned %d", id)
	}
	sub.Cancel()
	if _, ok := <-s.SubscribeAfter(0).C; ok {
		t.Error("subscribe after close is open")
	}
}

func TestPublishData(t *testing.T) {
	clock := engine.NewFakeClock(testNow)
	s := NewStream(StreamConfig{Size: 10, MaxData: 300, Clock: clock})
	s.PublishEvent(engine.Record{Seq: 9, Source: engine.SourceRef{Ruleset: "ops", Name: "hook"},
		Event: engine.Event{"body": strings.Repeat("x", 500), "meta": map[string]any{"uuid": "big"}}})
	s.Publish(KindEvent, map[string]any{"bad": func() {}})
	s.Publish(KindEvent, strings.Repeat("y", 300))
	exit := 2
	s.PublishResult(&engine.InvocationState{
		Invocation: &engine.Invocation{ID: "i1", FiringID: "f1", Ruleset: "ops", Rule: "r", Action: "command"},
		Status:     engine.StatusFailed,
		Attempts:   []engine.Attempt{{N: 1, Status: engine.Failed, Duration: 1500 * time.Millisecond, Error: "exit 2", Output: strings.Repeat("o", 300), ExitCode: &exit}},
	})
	s.PublishResult(&engine.InvocationState{
		Invocation: &engine.Invocation{ID: "i2", Action: "http"}, Status: engine.StatusRunning,
		Attempts: []engine.Attempt{{N: 1, Status: engine.Retryable, Error: "earlier"}},
	})
	s.PublishResult(nil)
	s.PublishFiring(&engine.Firing{ID: "f1", Ruleset: "ops", Rule: "r", Time: testNow},
		[]engine.RenderedAction{{Type: "debug"}, {Type: "command"}})
	s.PublishFiring(nil, nil)
	s.PublishReload(errBoom)

	got := s.Recent("", 10)
	if len(got) != 7 {
		t.Fatalf("%d entries, want 7: %+v", len(got), got)
	}
	check := []struct {
		kind string
		want []string
		not  []string
	}{
		{KindEvent, []string{`"seq":9`, `"event_id":"big"`, `"truncated":`}, []string{"xxxx"}},
		{KindEvent, []string{`"error":"cannot encode`}, nil},
		{KindEvent, []string{`"error":"too large for the stream"`}, []string{"yyyy"}},
		{KindAction, []string{`"invocation_id":"i1"`, `"status":"failed"`, `"duration":1.5`, `"exit_code":2`, `"error":"exit 2"`, `…`}, nil},
		{KindAction, []string{`"status":"running"`, `"attempts":1`}, []string{"earlier"}},
		{KindFiring, []string{`"actions":["debug","command"]`, `"event_ids":[]`}, nil},
		{KindReload, []string{`{"time":"2026-11-29T03:00:00Z","ok":false,"error":"boom"}`}, nil},
	}
	for i, c := range check {
		e := got[i]
		if e.ID != uint64(i+1) || e.Kind != c.kind || !e.Time.Equal(testNow) {
			t.Errorf("entry %d: id %d kind %q time %v", i, e.ID, e.Kind, e.Time)
		}
		if !json.Valid(e.Data) || len(e.Data) > 300 {
			t.Errorf("entry %d: %d bytes, valid %v", i, len(e.Data), json.Valid(e.Data))
		}
		for _, w := range c.want {
			if !strings.Contains(string(e.Data), w) {
				t.Errorf("entry %d %s lacks %s", i, e.Data, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(string(e.Data), w) {
				t.Errorf("entry %d %s has %s", i, e.Data, w)
			}
		}
	}
	if r := s.Recent(KindAction, 1); len(r) != 1 || r[0].ID != 5 {
		t.Errorf("Recent(action, 1) = %v", ids(r))
	}
}

// TestSSEResume is the reconnect a browser does: publish 5, read 2,
// reconnect with Last-Event-ID 2, get 3..5, then live entries.
func TestSSEResume(t *testing.T) {
	s := newTestServer(t, newFakeBackend(), func(c *Config) { c.Log = zerolog.Nop() })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for i := 1; i <= 5; i++ {
		s.Publish(KindEvent, map[string]int{"n": i})
	}

	ctx1, cancel1 := context.WithCancel(context.Background())
	resp, r := openStream(t, ctx1, srv.URL+"/api/stream?after=0", nil)
	first := readN(t, r, 2)
	cancel1()
	resp.Body.Close()
	for i, m := range first {
		if m.id != strconv.Itoa(i+1) || m.event != KindEvent || m.data != fmt.Sprintf(`{"n":%d}`, i+1) {
			t.Errorf("message %d: %+v", i, m)
		}
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	// The URL a browser reconnects to still has its first query; the
	// header wins.
	resp2, r2 := openStream(t, ctx2, srv.URL+"/api/stream?replay=50", map[string]string{"Last-Event-ID": first[1].id})
	defer resp2.Body.Close()
	got := readN(t, r2, 3)
	for i, m := range got {
		if m.id != strconv.Itoa(i+3) || m.data != fmt.Sprintf(`{"n":%d}`, i+3) {
			t.Errorf("resumed message %d: %+v, want id %d", i, m, i+3)
		}
	}
	s.Publish(KindFiring, map[string]string{"rule": "r"})
	live := readN(t, r2, 1)[0]
	if live.id != "6" || live.event != KindFiring || live.data != `{"rule":"r"}` {
		t.Errorf("live message %+v", live)
	}
}

func TestSSEGapAndReplay(t *testing.T) {
	s := newTestServer(t, newFakeBackend(), func(c *Config) { c.StreamConfig.Size = 3 })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	publishN(s.Stream(), 6) // the ring keeps 4..6

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, r := openStream(t, ctx, srv.URL+"/api/stream", map[string]string{"Last-Event-ID": "1"})
	defer resp.Body.Close()
	got := readN(t, r, 4)
	if got[0].event != "gap" || got[0].id != "" || got[0].data != `{"after":1}` {
		t.Errorf("first message %+v, want a gap without id", got[0])
	}
	if got[1].id != "4" || got[3].id != "6" {
		t.Errorf("after the gap: %+v", got[1:])
	}

	resp2, r2 := openStream(t, ctx, srv.URL+"/api/stream?replay=2", nil)
	defer resp2.Body.Close()
	if got := readN(t, r2, 2); got[0].id != "5" || got[1].id != "6" {
		t.Errorf("replay 2: %+v", got)
	}
}

// TestSSEHeartbeat checks an idle stream sends comments (the fake clock does
// not drive the ticker: the interval is real and short).
func TestSSEHeartbeat(t *testing.T) {
	s := newTestServer(t, newFakeBackend(), func(c *Config) { c.Heartbeat = 20 * time.Millisecond })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, r := openStream(t, ctx, srv.URL+"/api/stream", nil)
	defer resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		line, err := r.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == ": ping\n" {
			return
		}
	}
	t.Fatal("no heartbeat")
}

// subscribers is how many live subscriptions the stream has.
func (s *Stream) subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// TestSSESlowClientDropped: a client that stops reading is disconnected
// once its buffer fills, while publishing never waits for it; reconnecting
// after the last entry it saw, it gets everything still in the ring.
func TestSSESlowClientDropped(t *testing.T) {
	s := newTestServer(t, newFakeBackend(), func(c *Config) {
		c.StreamConfig = StreamConfig{Size: 400, ClientBuffer: 4, MaxData: 70 << 10}
		c.WriteTimeout = 200 * time.Millisecond
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, r := openStream(t, ctx, srv.URL+"/api/stream?after=0", nil)
	defer resp.Body.Close()
	s.Publish(KindEvent, "first")
	if got := readN(t, r, 1); got[0].id != "1" {
		t.Fatalf("first message %+v", got[0])
	}
	// The client reads no more. ~20 MB overflow the socket buffers, the
	// handler's write times out, its queue fills: it is dropped.
	big := strings.Repeat("x", 64<<10)
	start := time.Now()
	for i := 0; i < 300; i++ {
		s.Publish(KindEvent, big)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("publishing took %v: blocked by the slow client?", d)
	}
	deadline := time.Now().Add(15 * time.Second)
	for s.Stream().subscribers() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow client still subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp.Body.Close()

	resp2, r2 := openStream(t, ctx, srv.URL+"/api/stream", map[string]string{"Last-Event-ID": "1"})
	defer resp2.Body.Close()
	got := readN(t, r2, 300)
	if got[0].id != "2" || got[299].id != "301" {
		t.Errorf("resumed from %s to %s, want 2 to 301", got[0].id, got[299].id)
	}
}

// BenchmarkPublishEvent is the cost the engine's path pays per record: a
// ~1 KiB event published with nobody subscribed (the usual case: no
// dashboard open), and with one subscriber that reads every entry's JSON.
func BenchmarkPublishEvent(b *testing.B) {
	for _, subs := range []int{0, 1} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			s := NewStream(StreamConfig{ClientBuffer: 1 << 16})
			var (
				wg      sync.WaitGroup
				read    atomic.Int64
				readers []*Subscription
			)
			for i := 0; i < subs; i++ {
				sub := s.SubscribeNew(0)
				readers = append(readers, sub)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for e := range sub.C {
						read.Add(int64(len(e.Data)))
					}
				}()
			}
			rec := engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "ops", Name: "alerts"},
				Event: engine.Event{
					"alert": map[string]any{"labels": map[string]any{"alertname": "HostDown", "instance": "web1:9100", "severity": "critical"},
						"annotations": map[string]any{"summary": strings.Repeat("host is down ", 40)}, "status": "firing"},
					"meta": map[string]any{"uuid": engine.NewID(), "received_at": testNow.Format(time.RFC3339Nano)},
				}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.PublishEvent(rec)
			}
			b.StopTimer()
			for _, sub := range readers {
				if sub.Dropped() {
					b.Error("the subscriber fell behind and was dropped: the run did not measure it")
				}
			}
			s.Close()
			wg.Wait()
			if subs > 0 && read.Load() < int64(b.N) {
				b.Errorf("the subscriber read %d bytes for %d entries", read.Load(), b.N)
			}
		})
	}
}

// A kind with line breaks (Publish takes any) must not end the SSE event
// field early and inject a field of its own.
func TestWriteEntryKeepsFieldsOnOneLine(t *testing.T) {
	var buf bytes.Buffer
	writeEntry(&buf, Entry{ID: 7, Kind: "x\r\ndata: forged", Data: json.RawMessage(`{"a":1}`)})
	want := "id: 7\nevent: x  data: forged\ndata: {\"a\":1}\n\n"
	if buf.String() != want {
		t.Fatalf("writeEntry = %q, want %q", buf.String(), want)
	}
}

// countedJSON is a value whose encodings are counted: how many times an
// entry holding it was encoded.
type countedJSON struct {
	n    *atomic.Int32
	json string // "" fails to encode
}

func (c countedJSON) MarshalJSON() ([]byte, error) {
	c.n.Add(1)
	if c.json == "" {
		return nil, errBoom
	}
	return []byte(c.json), nil
}

// TestPublishEventEncodedWhenRead: an event published with nobody reading
// is not encoded; read later, it gives the bytes publishing gave before
// encoding was deferred, the too-large and unencodable cases included, and
// is encoded once however often it is read.
func TestPublishEventEncodedWhenRead(t *testing.T) {
	body := strings.Repeat("x", 300)
	full := fmt.Sprintf(`{"seq":9,"time":"2026-11-29T03:00:00Z","ruleset":"ops","source":"hook","event_id":"big","event":{"body":"%s","meta":{"uuid":"big"}}}`, body)
	tests := []struct {
		name  string
		event func(*atomic.Int32) engine.Event
		want  string
	}{
		{"whole event", func(n *atomic.Int32) engine.Event {
			return engine.Event{"n": countedJSON{n, "1"}, "meta": map[string]any{"uuid": "e1"}}
		}, `{"seq":9,"time":"2026-11-29T03:00:00Z","ruleset":"ops","source":"hook","event_id":"e1","event":{"meta":{"uuid":"e1"},"n":1}}`},
		{"too large: without its body", func(n *atomic.Int32) engine.Event {
			return engine.Event{"body": countedJSON{n, strconv.Quote(body)}, "meta": map[string]any{"uuid": "big"}}
		}, fmt.Sprintf(`{"seq":9,"time":"2026-11-29T03:00:00Z","ruleset":"ops","source":"hook","event_id":"big","truncated":%d}`, len(full))},
		{"cannot be encoded: without its body", func(n *atomic.Int32) engine.Event {
			return engine.Event{"bad": countedJSON{n, ""}, "meta": map[string]any{"uuid": "e3"}}
		}, `{"seq":9,"time":"2026-11-29T03:00:00Z","ruleset":"ops","source":"hook","event_id":"e3"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			s := NewStream(StreamConfig{Size: 10, MaxData: 300, Clock: engine.NewFakeClock(testNow)})
			id := s.PublishEvent(engine.Record{Seq: 9, Source: engine.SourceRef{Ruleset: "ops", Name: "hook"}, Event: tc.event(&n), Size: 400})
			if id != 1 {
				t.Fatalf("id %d, want 1", id)
			}
			if got := n.Load(); got != 0 {
				t.Fatalf("encoded %d times with nobody reading, want 0", got)
			}
			reads := map[string]func() []Entry{
				"recent":       func() []Entry { return s.Recent(KindEvent, 10) },
				"resume":       func() []Entry { sub := s.SubscribeAfter(0); sub.Cancel(); return sub.Backlog },
				"replay":       func() []Entry { sub := s.SubscribeNew(5); sub.Cancel(); return sub.Backlog },
				"recent again": func() []Entry { return s.Recent("", 1) },
			}
			for _, name := range []string{"recent", "resume", "replay", "recent again"} {
				got := reads[name]()
				if len(got) != 1 || got[0].ID != 1 || got[0].Kind != KindEvent || !got[0].Time.Equal(testNow) {
					t.Fatalf("%s: %+v", name, got)
				}
				if string(got[0].Data) != tc.want {
					t.Errorf("%s: data\n%s\nwant\n%s", name, got[0].Data, tc.want)
				}
			}
			if got := n.Load(); got != 1 {
				t.Errorf("encoded %d times for 4 reads, want 1", got)
			}
		})
	}
}

// TestPublishEventEncodesLargeEventsAtOnce: the ring does not keep a large
// event (or one of unknown size) decoded until something reads it; it
// keeps its JSON, encoded as PublishEvent returns.
func TestPublishEventEncodesLargeEventsAtOnce(t *testing.T) {
	for _, size := range []int{0, lazyEventBytes + 1} {
		var n atomic.Int32
		s := NewStream(StreamConfig{Size: 10, Clock: engine.NewFakeClock(testNow)})
		s.PublishEvent(engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "ops", Name: "hook"},
			Event: engine.Event{"n": countedJSON{&n, "1"}, "meta": map[string]any{"uuid": "e1"}}, Size: size})
		if got := n.Load(); got != 1 {
			t.Errorf("size %d: encoded %d times by PublishEvent, want 1", size, got)
		}
		if got := s.Recent(KindEvent, 1); len(got) != 1 || !strings.Contains(string(got[0].Data), `"n":1`) || n.Load() != 1 {
			t.Errorf("size %d: read back %+v after %d encodings", size, got, n.Load())
		}
	}
}

// TestEntryEncodedOnceForSubscribers: every subscriber gets the same JSON,
// encoded once, before Publish returns.
func TestEntryEncodedOnceForSubscribers(t *testing.T) {
	var n atomic.Int32
	s := NewStream(StreamConfig{Size: 10, Clock: engine.NewFakeClock(testNow)})
	a, b := s.SubscribeNew(0), s.SubscribeNew(0)
	defer a.Cancel()
	defer b.Cancel()
	s.PublishEvent(engine.Record{Seq: 3, Source: engine.SourceRef{Ruleset: "ops", Name: "hook"},
		Event: engine.Event{"n": countedJSON{&n, `"v"`}}})
	want := `{"seq":3,"time":"2026-11-29T03:00:00Z","ruleset":"ops","source":"hook","event":{"n":"v"}}`
	for i, sub := range []*Subscription{a, b} {
		select {
		case e := <-sub.C:
			if e.ID != 1 || string(e.Data) != want {
				t.Errorf("subscriber %d got %d %s, want 1 %s", i, e.ID, e.Data, want)
			}
		default:
			t.Fatalf("subscriber %d was not handed the entry", i)
		}
	}
	if r := s.Recent("", 1); len(r) != 1 || string(r[0].Data) != want {
		t.Errorf("recent %+v", r)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("encoded %d times for two subscribers and a read, want 1", got)
	}
}

// TestEntryEncodedOnceConcurrently: readers that need an entry nobody has
// read yet at the same time encode it once and get the same bytes (run
// with -race).
func TestEntryEncodedOnceConcurrently(t *testing.T) {
	var n atomic.Int32
	s := NewStream(StreamConfig{Size: 10, Clock: engine.NewFakeClock(testNow)})
	for i := range 5 {
		s.PublishEvent(engine.Record{Seq: uint64(i + 1), Source: engine.SourceRef{Ruleset: "ops"},
			Event: engine.Event{"n": countedJSON{&n, strconv.Itoa(i)}}})
	}
	start := make(chan struct{})
	got := make([][]Entry, 8)
	var wg sync.WaitGroup
	for r := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if r%2 == 0 {
				got[r] = s.Recent(KindEvent, 10)
				return
			}
			sub := s.SubscribeAfter(0)
			sub.Cancel()
			got[r] = sub.Backlog
		}()
	}
	close(start)
	wg.Wait()
	for r, es := range got {
		if len(es) != 5 {
			t.Fatalf("reader %d: %d entries", r, len(es))
		}
		for i, e := range es {
			want := fmt.Sprintf(`{"seq":%d,"time":"2026-11-29T03:00:00Z","ruleset":"ops","event":{"n":%d}}`, i+1, i)
			if e.ID != uint64(i+1) || string(e.Data) != want {
				t.Errorf("reader %d: entry %d %s, want %s", r, e.ID, e.Data, want)
			}
		}
	}
	if got := n.Load(); got != 5 {
		t.Errorf("5 entries encoded %d times by 8 readers, want 5", got)
	}
}

// changingBackend changes an injected event as the bus path does
// (engine.NewEvent adds to its meta).
type changingBackend struct{ *fakeBackend }

func (b changingBackend) Inject(ctx context.Context, ruleset string, event map[string]any) error {
	engine.NewEvent(event, "admin", "admin", testNow)
	return b.fakeBackend.Inject(ctx, ruleset, event)
}

// TestInjectedEventShownAsPosted: the stream shows an injected event as it
// was posted, though the backend adds to it afterwards.
func TestInjectedEventShownAsPosted(t *testing.T) {
	fb := newFakeBackend()
	s := newTestServer(t, fb, func(c *Config) { c.Backend = changingBackend{fb} })
	w := do(t, s.Handler(), "POST", "/api/events", `{"ruleset":"ops","event":{"meta":{"uuid":"u1"},"a":1}}`, nil)
	if w.Code != 202 {
		t.Fatalf("inject: %d %s", w.Code, w.Body)
	}
	if len(fb.injected) != 1 || engine.Meta(fb.injected[0].event)[engine.MetaReceivedAt] == nil {
		t.Fatalf("the backend did not change the event: %+v", fb.injected)
	}
	want := `{"time":"2026-11-29T03:00:00Z","ruleset":"ops","source":"admin","event_id":"u1","event":{"a":1,"meta":{"uuid":"u1"}}}`
	if r := s.Stream().Recent(KindEvent, 1); len(r) != 1 || string(r[0].Data) != want {
		t.Errorf("stream has %+v, want %s", r, want)
	}
}

// TestEntriesCarryTheirTime: the data of every kind of entry says when it
// happened, so a client that receives it later (the dashboard replaying
// the ring on page load, a reconnect) shows that time, not its own clock.
func TestEntriesCarryTheirTime(t *testing.T) {
	clock := engine.NewFakeClock(testNow)
	s := NewStream(StreamConfig{Size: 20, Clock: clock})
	at := func(m int) time.Time { return testNow.Add(time.Duration(m) * time.Minute) }
	ev := func(id string) engine.Event { return engine.Event{"meta": map[string]any{"uuid": id}} }
	src := engine.SourceRef{Ruleset: "ops", Name: "hook"}

	// Journaled events carry their journal time, whenever published.
	s.PublishEvent(engine.Record{Seq: 1, Source: src, Event: ev("lazy"), Accepted: at(1), Size: 100})
	s.PublishEvent(engine.Record{Seq: 2, Source: src, Event: ev("now"), Accepted: at(2), Size: 1 << 20})
	clock.Advance(3 * time.Minute) // at(3)
	// Without a journal time: when it was published.
	s.PublishEvent(engine.Record{Source: src, Event: ev("unjournaled"), Size: 100})
	clock.Advance(time.Minute) // at(4)
	s.PublishReload(nil)
	s.PublishFiring(&engine.Firing{ID: "f", Time: at(5), Ruleset: "ops", Rule: "r"}, nil)
	s.PublishResult(&engine.InvocationState{Invocation: &engine.Invocation{ID: "i"}, Status: engine.StatusSucceeded, Updated: at(6)})

	// Read much later, as a page opened an hour on does.
	clock.Advance(time.Hour)
	want := []time.Time{at(1), at(2), at(3), at(4), at(5), at(6)}
	srv := httptest.NewServer(newTestServer(t, newFakeBackend(), func(c *Config) { c.Log = zerolog.Nop(); c.Stream = s }).Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, r := openStream(t, ctx, srv.URL+"/api/stream?after=0", nil)
	defer resp.Body.Close()
	msgs := readN(t, r, len(want))
	for i, m := range msgs {
		var d struct {
			Time    time.Time `json:"time"`
			Updated time.Time `json:"updated"`
		}
		if err := json.Unmarshal([]byte(m.data), &d); err != nil {
			t.Fatalf("entry %d: %v: %s", i, err, m.data)
		}
		got := d.Time
		if m.event == KindAction {
			got = d.Updated
		}
		if !got.Equal(want[i]) {
			t.Errorf("%s entry %d: time %v, want %v (data %s)", m.event, i+1, got, want[i], m.data)
		}
	}
}
