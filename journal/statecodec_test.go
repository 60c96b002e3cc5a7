package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// stateRest must stay engine.InvocationState without its invocation: a
// field added to one and not the other would be lost from (or added to)
// the states recorded without encoding the invocation again.
func TestStateRestMatchesInvocationState(t *testing.T) {
	full, rest := reflect.TypeFor[engine.InvocationState](), reflect.TypeFor[stateRest]()
	if full.NumField() == 0 || full.Field(0).Name != "Invocation" || full.Field(0).Tag.Get("json") != "invocation" {
		t.Fatalf("engine.InvocationState must begin with Invocation `json:\"invocation\"` (statePrefix)")
	}
	if full.NumField()-1 != rest.NumField() {
		t.Fatalf("engine.InvocationState has %d fields besides Invocation, stateRest %d", full.NumField()-1, rest.NumField())
	}
	for i := range rest.NumField() {
		f, r := full.Field(i+1), rest.Field(i)
		if f.Name != r.Name || f.Type != r.Type || f.Tag != r.Tag {
			t.Errorf("field %d: InvocationState has %s %s %q, stateRest %s %s %q", i+1, f.Name, f.Type, f.Tag, r.Name, r.Type, r.Tag)
		}
	}
}

// trickyStates are states whose invocations hold what could end a naive
// scan early: braces and quotes in strings, escapes, nested "status" keys,
// HTML characters encoding/json escapes, and every optional part.
func trickyStates() []*engine.InvocationState {
	at := time.Date(2026, 12, 7, 20, 0, 0, 123, time.UTC)
	code := 3
	inv := &engine.Invocation{
		ID: "f1/0", FiringID: "f1", Action: "run_command", Ruleset: "rs", Rule: "r}\"{",
		Args:   map[string]any{"argv": []any{"echo", `}"],"status":"x"`, `\\`, "<a&b>"}, "n": 1.5, "nested": map[string]any{"status": "failed", "attempts": []any{}}},
		Event:  engine.Event{"payload": map[string]any{"status": "firing", "text": "brace } bracket ] quote \" backslash \\ é \u2028"}},
		Events: map[string]engine.Event{"m_0": {"x": nil, "y": true}},
		Hosts:  []string{"web1"}, Created: at,
		Policy: engine.Policy{Lock: "host:{{ x }}"},
	}
	return []*engine.InvocationState{
		{Invocation: inv, Status: engine.StatusQueued, Updated: at},
		{Invocation: inv, Status: engine.StatusRunning, Updated: at.Add(time.Second),
			Attempts: []engine.Attempt{{N: 1, Start: at, Status: engine.Failed, Error: `}{"`, Output: "x", ExitCode: &code, Details: map[string]any{"k": "}"}}}},
		{Invocation: inv, Status: engine.StatusRetrying, NextAttempt: at.Add(time.Minute), Updated: at},
		{Invocation: inv, Status: engine.StatusQueued, Updated: at,
			Approval: &engine.Approval{Requested: at, Deadline: at.Add(time.Hour), Reason: "}"}},
		{Invocation: &engine.Invocation{ID: "f2/0"}, Status: engine.StatusSucceeded, Updated: at},
	}
}

// A state recorded with the invocation's JSON read from the store is the
// state json.Marshal writes, byte for byte, and the JSON found in a stored
// state is that of its invocation.
func TestEncodeStateWithStoredInvocation(t *testing.T) {
	for i, st := range trickyStates() {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		inv := invocationJSON(want)
		wantInv, _ := json.Marshal(st.Invocation)
		if !bytes.Equal(inv, wantInv) {
			t.Fatalf("state %d: invocation JSON\n%s\nwant\n%s", i, inv, wantInv)
		}
		got, err := encodeState(st, inv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("state %d:\n got %s\nwant %s", i, got, want)
		}
	}
	for _, v := range []string{``, `{}`, `{"invocation":null,"status":"queued"}`, `{"invocation":{"id":"x"`, `{"status":"queued"}`, `{"invocation":{"id":"x"}}`} {
		if inv := invocationJSON([]byte(v)); inv != nil {
			t.Errorf("invocationJSON(%s) = %s, want nil", v, inv)
		}
	}
}

// The dispatcher's path: read an invocation back, record it running, then
// finished. The records read back are the states written, the backlog
// counters follow, and nothing read is kept once the invocation is final.
func TestUpdateAfterReadReusesInvocation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	as := s.Actions().(*actionStore)
	f := firing("f1", t0, "rs", "r", nil, 2)
	f.Invocations[0].Args["text"] = `}"{` + "\\"
	if err := as.Submit(ctx, f); err != nil {
		t.Fatal(err)
	}
	_, bytesQueued := s.Pending()
	if n := as.raw.len(); n != 2 {
		t.Fatalf("%d invocations kept after a submit of 2, want 2", n)
	}
	st, err := as.Invocation(ctx, "f1/0")
	if err != nil || st == nil {
		t.Fatalf("read: %v, %v", st, err)
	}
	if n := as.raw.len(); n != 3 {
		t.Fatalf("%d invocations kept after a read, want 3 (the 2 submitted and the one read)", n)
	}
	code := 0
	for _, status := range []engine.InvocationStatus{engine.StatusRunning, engine.StatusSucceeded} {
		st.Status = status
		st.Updated = st.Updated.Add(time.Second)
		st.Attempts = []engine.Attempt{{N: 1, Start: t0, Status: engine.Succeeded, Output: "out", ExitCode: &code}}
		if err := as.UpdateDeferred(ctx, st); err != nil {
			t.Fatal(err)
		}
		readBackAs(t, as, st)
	}
	if _, ok := as.raw.get(st.Invocation); ok {
		t.Fatal("a final invocation's JSON is still kept")
	}
	if count, _ := s.Pending(); count != 1 {
		t.Fatalf("pending %d after one of two invocations finished, want 1", count)
	}
	if _, b := s.Pending(); b >= bytesQueued {
		t.Fatalf("pending bytes %d not below %d after one finished", b, bytesQueued)
	}
	// f1/1 as the dispatcher runs one that starts at once: with the
	// Invocation it submitted.
	st2 := &engine.InvocationState{Invocation: f.Invocations[1], Status: engine.StatusFailed, Updated: t0.Add(time.Minute)}
	if err := as.UpdateDeferred(ctx, st2); err != nil {
		t.Fatal(err)
	}
	if _, ok := as.raw.get(st2.Invocation); ok {
		t.Fatal("a final invocation's JSON is still kept")
	}
	if count, b := s.Pending(); count != 0 || b != 0 {
		t.Fatalf("pending %d, %d bytes with every invocation final", count, b)
	}
	readBackAs(t, as, st2)
}

// readBackAs fails t unless the store reads st's invocation back as st,
// byte for byte in JSON.
func readBackAs(t *testing.T, as *actionStore, st *engine.InvocationState) {
	t.Helper()
	back, err := as.Invocation(context.Background(), st.Invocation.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(back)
	want, _ := json.Marshal(st)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s %s: read back\n%s\nwant\n%s", st.Invocation.ID, st.Status, got, want)
	}
}

// benchState is the state of a run_command invocation of bench/actions.yml
// (a webhook event, matched once), as `rulebook audit` shows it.
const benchState = `{"invocation":{"id":"0963cd374a8f3c91ff6a7e1be35da1d5-0","firing_id":"0963cd374a8f3c91ff6a7e1be35da1d5","index":0,"action":"run_command","ruleset":"actions benchmark","rule":"every request runs the program","args":{"argv":["/tmp/ab/tiny","/tmp/ab/out",4799]},"refs_listed":true,"event":{"meta":{"endpoint":"/","headers":{"Accept-Encoding":"gzip","Content-Length":"11","Content-Type":"application/json","User-Agent":"Go-http-client/1.1"},"method":"POST","query":{},"received_at":"2026-12-07T20:11:18.729192096Z","remote_addr":"127.0.0.1:34422","source":{"name":"bench","type":"webhook"},"uuid":"991b2975-9b3b-473a-bbb4-2aa4e07c4368"},"payload":{"n":4799}},"events":{"m_0":{"meta":{"endpoint":"/","headers":{"Accept-Encoding":"gzip","Content-Length":"11","Content-Type":"application/json","User-Agent":"Go-http-client/1.1"},"method":"POST","query":{},"received_at":"2026-12-07T20:11:18.729192096Z","remote_addr":"127.0.0.1:34422","source":{"name":"bench","type":"webhook"},"uuid":"991b2975-9b3b-473a-bbb4-2aa4e07c4368"},"payload":{"n":4799}}},"host_pattern":"all","policy":{},"created":"2026-12-07T20:11:18.776909591Z"},"status":"succeeded","attempts":[{"n":1,"start":"2026-12-07T20:11:18.850517647Z","duration":7946077,"status":"succeeded","exit_code":0,"details":{"duration_ms":7,"output_bytes":0}}],"next_attempt":"0001-01-01T00:00:00Z","updated":"2026-12-07T20:11:18.858465406Z"}`

// BenchmarkEncodeState records a command's result: the whole state
// encoded, against the invocation's JSON as read with it.
//
//	go test ./journal -run '^$' -bench EncodeState -benchmem
func BenchmarkEncodeState(b *testing.B) {
	st, err := decodeState([]byte(benchState))
	if err != nil {
		b.Fatal(err)
	}
	inv := invocationJSON([]byte(benchState))
	if inv == nil {
		b.Fatal("no invocation JSON in benchState")
	}
	for _, bc := range []struct {
		name string
		inv  []byte
	}{{"whole", nil}, {"stored-invocation", inv}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeState(st, bc.inv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("find-invocation", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = invocationJSON([]byte(benchState))
		}
	})
}

// The cache of invocations read or submitted stays within its bounds, in
// entries and in bytes, whatever the invocations' sizes: an entry keeps
// its (possibly large) Invocation alive.
func TestRawCacheBounds(t *testing.T) {
	var c rawCache
	small := make([]byte, 100)
	for range 3 * rawCacheMax {
		c.put(&engine.Invocation{}, rawInvocation{json: small})
		if n := c.len(); n > rawCacheMax {
			t.Fatalf("%d entries, bound %d", n, rawCacheMax)
		}
	}
	big := &engine.Invocation{}
	c.put(big, rawInvocation{json: make([]byte, rawEntryMax+1)})
	if _, ok := c.get(big); ok {
		t.Fatal("an invocation over rawEntryMax was kept")
	}
	mid := make([]byte, rawEntryMax)
	for range 4 * rawCacheBytes / rawEntryMax {
		c.put(&engine.Invocation{}, rawInvocation{json: mid})
		if c.bytes > rawCacheBytes {
			t.Fatalf("%d bytes kept, bound %d", c.bytes, rawCacheBytes)
		}
	}
	inv := &engine.Invocation{}
	c.put(inv, rawInvocation{json: mid})
	c.put(inv, rawInvocation{json: small})
	before := c.bytes
	c.drop(inv)
	if c.bytes != before-len(small) {
		t.Fatalf("bytes %d after dropping a %d-byte entry from %d", c.bytes, len(small), before)
	}
}
