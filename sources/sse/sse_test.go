package sse

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
	"github.com/rulebook-dev/rulebook/internal/testcerts"
)

// feed is the server side: events 1..n, each {"n": i} with id i, served
// after the client's Last-Event-ID.
type feed struct {
	mu    sync.Mutex
	count sourcetest.Counter // messages to send
	// partial, when set, is written after the events: a message cut
	// before its blank line (the server dies mid-message).
	partial string
	// retry, when set, is sent first.
	retry string
	// closeAfterSend ends each response once the events are written.
	closeAfterSend bool
	status         int
	lastIDs        []string
	reqs           []*http.Request
}

func (f *feed) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lastIDs)
}

func (f *feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
	f.reqs = append(f.reqs, r)
	status, retry, partial := f.status, f.retry, f.partial
	f.mu.Unlock()
	if status != 0 {
		http.Error(w, "unavailable", status)
		return
	}
	sent := 0
	fmt.Sscan(r.Header.Get("Last-Event-ID"), &sent)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	if retry != "" {
		fmt.Fprintf(w, "retry: %s\n\n", retry)
	}
	fmt.Fprint(w, ": hello\n\n")
	w.(http.Flusher).Flush()
	for {
		n, changed := f.count.Get()
		for sent < n {
			sent++
			// Alternate line ends; a multi-line data field for every 3rd.
			if sent%3 == 0 {
				fmt.Fprintf(w, "event: tick\r\nid: %d\r\ndata: {\"n\":\r\ndata: %d}\r\n\r\n", sent, sent)
			} else {
				fmt.Fprintf(w, "event: tick\nid: %d\ndata: {\"n\": %d}\n\n", sent, sent)
			}
			w.(http.Flusher).Flush()
		}
		if partial != "" {
			fmt.Fprint(w, partial)
			w.(http.Flusher).Flush()
			partial = ""
		}
		if f.closeAfterSend {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// The server dies mid-stream (in the middle of a message), comes back, and
// then Rulebook restarts: every event is journaled once, in order, and each
// connection resumes after the last durable id.
func TestResumeWithoutLossOrDuplicates(t *testing.T) {
	dir := t.TempDir()
	j := sourcetest.OpenJournal(t, dir)
	f := &feed{}
	f.count.Add(5)
	f.partial = "id: 6\ndata: {\"n\": 6"
	addr, kill := sourcetest.Serve(t, f, "127.0.0.1:0", nil)
	args := map[string]any{"url": "http://" + addr + "/events", "reconnect_delay": "10ms", "max_reconnect_delay": "50ms"}
	stop := sourcetest.Start(t, Spec(), "feed", args, engine.SystemClock{}, j)
	sourcetest.WaitFor(t, "5 events", func() bool { return j.LastSeq() == 5 })

	kill()
	f.mu.Lock()
	f.partial = ""
	f.mu.Unlock()
	f.count.Add(5)
	_, kill = sourcetest.Serve(t, f, addr, nil)
	sourcetest.WaitFor(t, "10 events", func() bool { return j.LastSeq() == 10 })
	stop()
	kill()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// Rulebook restarts: the position comes from the journal.
	j = sourcetest.OpenJournal(t, dir)
	defer j.Close()
	f.count.Add(2)
	_, kill = sourcetest.Serve(t, f, addr, nil)
	defer kill()
	sourcetest.Start(t, Spec(), "feed", args, engine.SystemClock{}, j)
	sourcetest.WaitFor(t, "12 events", func() bool { return j.LastSeq() == 12 })

	recs, err := j.Read(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		meta := engine.Meta(r.Event)
		p, _ := r.Event["payload"].(map[string]any)
		got = append(got, fmt.Sprintf("%v/%v/%v", meta["id"], p["n"], meta["event"]))
	}
	var want []string
	for i := 1; i <= 12; i++ {
		want = append(want, fmt.Sprintf("%d/%d/tick", i, i))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("journal holds\n %v\nwant\n %v", got, want)
	}
	f.mu.Lock()
	ids := f.lastIDs
	f.mu.Unlock()
	if ids[0] != "" || ids[1] != "5" || ids[len(ids)-1] != "10" {
		t.Fatalf("Last-Event-ID per connection %q: want \"\", then 5 (not the cut 6), then 10 after the restart", ids)
	}
}

// The reconnect waits run on the engine's clock: doubling from
// reconnect_delay on failures, and the server's retry: replaces the delay.
func TestReconnectBackoffAndServerRetry(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	f := &feed{}
	f.status = http.StatusServiceUnavailable
	addr, _ := sourcetest.Serve(t, f, "127.0.0.1:0", nil)
	out := make(sourcetest.Events, 16)
	sourcetest.Start(t, Spec(), "feed", map[string]any{"url": "http://" + addr, "reconnect_delay": "1s", "max_reconnect_delay": "3s"}, clock, out)

	// step waits until the source sleeps, advances d, and checks how many
	// connections were made by then.
	// The source's only timer is its reconnect wait: once it is pending
	// again after an advance, any reconnect the advance caused is done.
	step := func(d time.Duration, conns int) {
		t.Helper()
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(d)
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if got := f.connections(); got != conns {
			t.Fatalf("after %s more: %d connections, want %d", d, got, conns)
		}
	}
	sourcetest.WaitFor(t, "first connection", func() bool { return f.connections() == 1 })
	step(time.Second, 2)   // waited 1s
	step(time.Second, 2)   // now 2s: not yet
	step(time.Second, 3)   // 2s done
	step(3*time.Second, 4) // 4s capped at 3s
	f.mu.Lock()
	f.status, f.retry, f.closeAfterSend = 0, "30000", true
	f.mu.Unlock()
	f.count.Add(1)
	step(3*time.Second, 5) // connects, gets retry: 30000 and one event, then the server closes
	select {
	case ev := <-out:
		if engine.Meta(ev)["id"] != "1" {
			t.Fatalf("event %v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
	step(29*time.Second, 5)
	step(time.Second, 6) // 30s, as the server asked
}

// Headers, a bearer token and a client certificate (mTLS); data that is not
// JSON stays a string.
func TestHeadersTokenAndMutualTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "test ca")
	server := ca.Server(t, "127.0.0.1")
	client := ca.Client(t, "rulebook")
	dir := t.TempDir()
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	certFile, keyFile := client.WriteFiles(t, dir, "client")
	seen := make(chan *http.Request, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		fmt.Fprint(w, "data: plain text\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	addr, _ := sourcetest.Serve(t, h, "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert})
	out := make(sourcetest.Events, 4)
	sourcetest.Start(t, Spec(), "feed", map[string]any{
		"url":     "https://" + addr + "/s",
		"headers": map[string]any{"X-Tenant": "blue"},
		"token":   "s3cret",
		"tls":     map[string]any{"ca": caFile, "cert": certFile, "key": keyFile},
	}, engine.SystemClock{}, out)
	var ev engine.Event
	select {
	case ev = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	r := <-seen
	if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("X-Tenant") != "blue" || r.Header.Get("Accept") != "text/event-stream" {
		t.Fatalf("request headers %v", r.Header)
	}
	if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "rulebook" {
		t.Fatal("no client certificate")
	}
	if ev["payload"] != "plain text" || engine.Meta(ev)["event"] != "message" {
		t.Fatalf("event %v", ev)
	}
}

func TestParser(t *testing.T) {
	in := "\xEF\xBB\xBF: comment\n" +
		"data: a\n" + "data:b\n" + "\n" + // two data lines, one without the space
		"id: 7\n" + "retry: 250\n" + "\n" + // no data: not dispatched, but id and retry count
		"event: x\rdata: c\r\r" + // CR line ends; carries id 7
		"id: bad\x00\ndata: d\n\n" + // an id with NUL is ignored
		"retry: soon\ndata\n\n" // a field without colon: empty data
	p := newParser(strings.NewReader(in), 1024, "")
	var got []string
	for {
		m, err := p.next()
		if err != nil {
			break
		}
		got = append(got, fmt.Sprintf("%v|%s|%q|%s|%s", m.dispatch, m.event, m.data, m.id, m.retry))
	}
	want := []string{
		`true|message|"a\nb"||0s`,
		`false|message|""|7|250ms`,
		`true|x|"c"|7|0s`,
		`true|message|"d"|7|0s`,
		`true|message|""|7|0s`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := newParser(strings.NewReader("data: 0123456789\n\n"), 8, "").next(); err == nil || !strings.Contains(err.Error(), "max_event_size") {
		t.Fatalf("long line: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, `missing key "url"`},
		{map[string]any{"url": "ftp://x"}, `want an http:// or https:// URL`},
		{map[string]any{"url": "http://x", "header": map[string]any{}}, `header: unknown key "header"`},
		{map[string]any{"url": "http://x", "tls": map[string]any{"cert": "c"}}, `give both cert and key`},
		{map[string]any{"url": "http://x", "reconnect_delay": "5s", "max_reconnect_delay": "1s"}, `must be at least reconnect_delay`},
	} {
		err := Spec().Check(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// A stream that goes silent (not even a keep-alive comment) for
// idle_timeout is dropped and connected to again, resuming after the last
// durable id. The wait runs on the engine's clock.
func TestIdleTimeoutReconnects(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	f := &feed{}
	f.count.Add(1)
	addr, _ := sourcetest.Serve(t, f, "127.0.0.1:0", nil)
	out := make(sourcetest.Events, 4)
	sourcetest.Start(t, Spec(), "feed", map[string]any{"url": "http://" + addr, "idle_timeout": "1m", "reconnect_delay": "1s"}, clock, out)
	select {
	case <-out:
	case <-ctx.Done():
		t.Fatal("no event")
	}
	if err := clock.BlockUntil(ctx, 1); err != nil { // the idle timer
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	if f.connections() != 1 {
		t.Fatal("reconnected before the idle timeout")
	}
	clock.Advance(time.Second)                       // silent for 1m: dropped
	if err := clock.BlockUntil(ctx, 1); err != nil { // the reconnect wait
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	sourcetest.WaitFor(t, "the second connection", func() bool { return f.connections() == 2 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastIDs[1] != "1" {
		t.Fatalf("second connection sent Last-Event-ID %q, want 1", f.lastIDs[1])
	}
}

// FuzzParser: any byte stream parses without panicking, and no message's
// data is longer than the limit.
func FuzzParser(f *testing.F) {
	f.Add([]byte("data: a\n\n"), 64)
	f.Add([]byte("\xEF\xBB\xBFid: 1\r\nretry: 10\rdata:x\r\n\r\n: c\n"), 8)
	f.Add([]byte("event\ndata\n\ndata: {\"n\": 1}\n\n"), 1024)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<16 {
			max = 1024
		}
		p := newParser(bytes.NewReader(in), max, "")
		for i := 0; i < len(in)+1; i++ {
			m, err := p.next()
			if err != nil {
				return
			}
			if len(m.data) > max {
				t.Fatalf("data of %d bytes over the limit %d", len(m.data), max)
			}
		}
	})
}
