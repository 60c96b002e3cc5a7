package websocket

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/coder/websocket"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
	"github.com/rulebook-dev/rulebook/internal/testcerts"
)

// feed is a WebSocket server that streams {"seq": i, "n": i} for i after
// the `since` of the client's subscription.
type feed struct {
	mu     sync.Mutex
	count  sourcetest.Counter // messages to send
	subs   []map[string]any
	reqs   []*http.Request
	protos []string
}

func (f *feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := ws.Accept(w, r, &ws.AcceptOptions{Subprotocols: []string{"events.v1"}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	_, data, err := c.Read(ctx)
	if err != nil {
		return
	}
	var sub map[string]any
	_ = json.Unmarshal(data, &sub)
	f.mu.Lock()
	f.subs = append(f.subs, sub)
	f.reqs = append(f.reqs, r)
	f.protos = append(f.protos, c.Subprotocol())
	f.mu.Unlock()
	sent := 0
	fmt.Sscan(fmt.Sprint(sub["since"]), &sent)
	ctx = c.CloseRead(ctx) // answers pings
	_ = c.Write(ctx, ws.MessageBinary, []byte{1, 2, 3})
	for {
		n, changed := f.count.Get()
		for sent < n {
			sent++
			if err := c.Write(ctx, ws.MessageText, []byte(fmt.Sprintf(`{"seq": %d, "n": %d}`, sent, sent))); err != nil {
				return
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// The server is killed mid-stream and restarted, then Rulebook restarts:
// with position_key and {{ position }} in the subscription every message
// is journaled exactly once, in order.
func TestResumeWithoutLossOrDuplicates(t *testing.T) {
	dir := t.TempDir()
	j := sourcetest.OpenJournal(t, dir)
	f := &feed{}
	f.count.Add(5)
	addr, kill := sourcetest.Serve(t, f, "127.0.0.1:0", nil)
	args := map[string]any{
		"url":                 "ws://" + addr + "/stream",
		"headers":             map[string]any{"X-Tenant": "blue"},
		"token":               "s3cret",
		"subprotocols":        []any{"events.v1"},
		"send":                []any{map[string]any{"op": "subscribe", "since": "{{ position }}"}},
		"position_key":        "seq",
		"reconnect_delay":     "10ms",
		"max_reconnect_delay": "50ms",
	}
	stop := sourcetest.Start(t, Spec(), "ws", args, engine.SystemClock{}, j)
	sourcetest.WaitFor(t, "5 events", func() bool { return j.LastSeq() == 5 })
	kill()
	f.count.Add(5)
	_, kill = sourcetest.Serve(t, f, addr, nil)
	sourcetest.WaitFor(t, "10 events", func() bool { return j.LastSeq() == 10 })
	stop()
	kill()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = sourcetest.OpenJournal(t, dir)
	defer j.Close()
	f.count.Add(2)
	_, kill = sourcetest.Serve(t, f, addr, nil)
	defer kill()
	sourcetest.Start(t, Spec(), "ws", args, engine.SystemClock{}, j)
	sourcetest.WaitFor(t, "12 events", func() bool { return j.LastSeq() == 12 })

	recs, err := j.Read(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for i, r := range recs {
		p, _ := r.Event["payload"].(map[string]any)
		got = append(got, fmt.Sprintf("%v/%v", p["n"], engine.Meta(r.Event)["position"]))
		want = append(want, fmt.Sprintf("%d/%d", i+1, i+1))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("journal holds %v, want %v", got, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var since []string
	for _, s := range f.subs {
		since = append(since, fmt.Sprint(s["since"]))
	}
	if since[0] != "" || since[1] != "5" || since[len(since)-1] != "10" {
		t.Fatalf("subscriptions since %q: want \"\", 5, then 10 after the restart", since)
	}
	r := f.reqs[0]
	if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("X-Tenant") != "blue" || f.protos[0] != "events.v1" {
		t.Fatalf("handshake headers %v, subprotocol %q", r.Header, f.protos[0])
	}
}

// A server that stops answering pings is left and connected to again;
// pings keep a live connection. Ping and reconnect waits run on the
// engine's clock.
func TestPingKeepalive(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var mu sync.Mutex
	conns := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		mu.Lock()
		conns++
		n := conns
		mu.Unlock()
		rctx := r.Context()
		if n > 1 {
			rctx = c.CloseRead(rctx) // a reader answers pings; the first server is silent
		}
		_ = c.Write(rctx, ws.MessageText, []byte(fmt.Sprintf("hello %d", n)))
		<-rctx.Done()
	})
	addr, _ := sourcetest.Serve(t, h, "127.0.0.1:0", nil)
	out := make(sourcetest.Events, 16)
	sourcetest.Start(t, Spec(), "ws", map[string]any{"url": "ws://" + addr, "ping_interval": "30s", "ping_timeout": "200ms", "reconnect_delay": "1s"}, clock, out)
	count := func() int { mu.Lock(); defer mu.Unlock(); return conns }
	next := func(want string) {
		t.Helper()
		select {
		case ev := <-out:
			if ev["payload"] != want {
				t.Fatalf("event %v, want payload %q", ev, want)
			}
		case <-ctx.Done():
			t.Fatal("no event")
		}
	}
	block := func() {
		t.Helper()
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	next("hello 1")
	block()
	clock.Advance(30 * time.Second) // ping: no pong within 200ms
	block()                         // the reconnect wait
	if got := count(); got != 1 {
		t.Fatalf("%d connections before the reconnect wait ended", got)
	}
	clock.Advance(time.Second)
	next("hello 2")
	for i := 0; i < 3; i++ {
		block()
		clock.Advance(30 * time.Second)
		block() // the next ping is due: this one got its pong
		if got := count(); got != 2 {
			t.Fatalf("ping %d on a live connection: %d connections, want 2", i, got)
		}
	}
	clock.Advance(time.Second) // a pending reconnect would happen now
	block()
	if got := count(); got != 2 {
		t.Fatalf("%d connections, want 2", got)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, `missing key "url"`},
		{map[string]any{"url": "http://x"}, `want a ws:// or wss:// URL`},
		{map[string]any{"url": "ws://x", "send": "hello"}, `send: want a list of messages`},
		{map[string]any{"url": "ws://x", "send": []any{1}}, `send.0: want a string or a mapping`},
		{map[string]any{"url": "ws://x", "ping": "1s"}, `ping: unknown key "ping"`},
		{map[string]any{"url": "ws://x", "reconnect_delay": "5s", "max_reconnect_delay": "1s"}, `must be at least reconnect_delay`},
	} {
		err := Spec().Check(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// wss:// with a private CA and a client certificate (mutual TLS).
func TestMutualTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "test ca")
	server := ca.Server(t, "127.0.0.1")
	client := ca.Client(t, "rulebook")
	dir := t.TempDir()
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	certFile, keyFile := client.WriteFiles(t, dir, "client")
	peer := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		peer <- r.TLS.PeerCertificates[0].Subject.CommonName
		_ = c.Write(r.Context(), ws.MessageText, []byte(`{"ok": true}`))
		<-c.CloseRead(r.Context()).Done()
	})
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	out := make(sourcetest.Events, 1)
	sourcetest.Start(t, Spec(), "ws", map[string]any{"url": "wss://" + strings.TrimPrefix(srv.URL, "https://"), "tls": map[string]any{"ca": caFile, "cert": certFile, "key": keyFile}}, engine.SystemClock{}, out)
	select {
	case ev := <-out:
		if p, _ := ev["payload"].(map[string]any); p["ok"] != true {
			t.Fatalf("event %v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	if cn := <-peer; cn != "rulebook" {
		t.Fatalf("client certificate %q", cn)
	}
}
