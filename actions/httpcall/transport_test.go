package httpcall

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// connCount counts the connections a server accepted and saw closed.
type connCount struct {
	mu             sync.Mutex
	opened, closed int
}

func (c *connCount) get() (opened, closed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.closed
}

// countingServer starts a TLS server that verifies a client certificate if
// one is given, answers "hello <client CN>" (or "hello anonymous"), and
// counts its connections. A request to /slow waits for release; started
// receives a value once such a request is being served.
func countingServer(t *testing.T, pki testPKI) (srv *httptest.Server, conns *connCount, started, release chan struct{}) {
	t.Helper()
	conns = &connCount{}
	started, release = make(chan struct{}, 1), make(chan struct{})
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		name := "anonymous"
		if len(r.TLS.PeerCertificates) > 0 {
			name = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		_, _ = io.WriteString(w, "hello "+name)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.caPool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		conns.mu.Lock()
		defer conns.mu.Unlock()
		switch s {
		case http.StateNew:
			conns.opened++
		case http.StateClosed, http.StateHijacked:
			conns.closed++
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, conns, started, release
}

// tlsConfigs are tls arguments by name, with the greeting each gets.
func tlsConfigs(pki testPKI) map[byte]struct {
	args  map[string]any
	greet string
} {
	type c = struct {
		args  map[string]any
		greet string
	}
	return map[byte]c{
		'a': {map[string]any{"ca": pki.caFile, "cert": pki.clientCert, "key": pki.clientKey}, "hello rulebook client"},
		'b': {map[string]any{"ca": pki.caFile}, "hello anonymous"},
		'c': {map[string]any{"ca": pki.caFile, "cert": pki.clientCert, "key": pki.clientKey, "insecure_skip_verify": true}, "hello rulebook client"},
	}
}

// call runs one GET with tls arguments and returns the response body.
func call(t *testing.T, h *HTTP, url string, tlsArgs map[string]any) string {
	t.Helper()
	res := h.Run(context.Background(), newInv(map[string]any{"url": url, "method": "GET", "tls": tlsArgs}))
	if res.Status != engine.Succeeded {
		t.Fatalf("call: %s %q", res.Status, res.Error)
	}
	return res.Output
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTLSConnectionReuse(t *testing.T) {
	pki := newPKI(t)
	confs := tlsConfigs(pki)
	tests := []struct {
		name       string
		calls      string // configuration names, in call order
		maxTLS     int
		wantOpened int
		wantClosed int // connections of evicted transports
	}{
		{"one config reuses one connection", "aaaaa", 0, 1, 0},
		{"two configs keep two transports", "ababab", 0, 2, 0},
		{"insecure_skip_verify is part of the config", "acac", 0, 2, 0},
		// b is the least recently used when c arrives; a stays.
		{"bounded, least recently used evicted", "abacaa", 2, 3, 1},
		{"evicted config reconnects", "abacb", 2, 4, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, conns, _, _ := countingServer(t, pki)
			h := New(zerolog.Nop(), engine.SystemClock{})
			defer h.Close()
			if tc.maxTLS > 0 {
				h.maxTLS = tc.maxTLS
			}
			for i := range len(tc.calls) {
				c := confs[tc.calls[i]]
				if got := call(t, h, srv.URL+"/", c.args); got != c.greet {
					t.Fatalf("call %d (%c): %q, want %q", i, tc.calls[i], got, c.greet)
				}
			}
			if opened, _ := conns.get(); opened != tc.wantOpened {
				t.Errorf("server accepted %d connections, want %d", opened, tc.wantOpened)
			}
			waitFor(t, "evicted connections to close", func() bool { _, closed := conns.get(); return closed == tc.wantClosed })
			if n, limit := len(h.tlsTransports), h.maxTLS; n > limit {
				t.Errorf("%d transports cached, limit %d", n, limit)
			}
		})
	}
}

func TestTLSCertificateRotation(t *testing.T) {
	pki := newPKI(t)
	tests := []struct {
		name  string
		mtime func(old time.Time) time.Time
	}{
		{"new mtime", func(old time.Time) time.Time { return old.Add(time.Minute) }},
		// cp -p, tar and coarse file systems can leave the time as it was.
		{"same mtime", func(old time.Time) time.Time { return old }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, conns, _, _ := countingServer(t, pki)
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			install := func(cn string, mtime func(time.Time) time.Time) {
				c := pki.ca.Client(t, cn)
				for _, f := range []struct {
					path string
					b    []byte
				}{{certFile, c.CertPEM}, {keyFile, c.KeyPEM}} {
					old := time.Now()
					if st, err := os.Stat(f.path); err == nil {
						old = st.ModTime()
					}
					if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
						t.Fatal(err)
					}
					if mtime != nil {
						if err := os.Chtimes(f.path, old, mtime(old)); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			install("client-1", nil)
			args := map[string]any{"ca": pki.caFile, "cert": certFile, "key": keyFile}
			h := New(zerolog.Nop(), engine.SystemClock{})
			defer h.Close()
			for range 2 {
				if got := call(t, h, srv.URL+"/", args); got != "hello client-1" {
					t.Fatalf("before rotation: %q", got)
				}
			}

			install("client-2", tc.mtime)
			for range 2 {
				if got := call(t, h, srv.URL+"/", args); got != "hello client-2" {
					t.Fatalf("after rotation: %q, want the new certificate", got)
				}
			}
			if opened, _ := conns.get(); opened != 2 {
				t.Errorf("server accepted %d connections, want 2 (one per certificate)", opened)
			}
			waitFor(t, "the old certificate's connection to close", func() bool { _, closed := conns.get(); return closed == 1 })

			// A key that does not match fails the call; fixing it recovers.
			other := pki.ca.Client(t, "client-3")
			if err := os.WriteFile(certFile, other.CertPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			res := h.Run(context.Background(), newInv(map[string]any{"url": srv.URL + "/", "tls": args}))
			if res.Status != engine.Failed || !strings.Contains(res.Error, "tls.cert/tls.key") {
				t.Errorf("mismatched pair: %s %q, want failed naming tls.cert/tls.key", res.Status, res.Error)
			}
			install("client-4", nil)
			if got := call(t, h, srv.URL+"/", args); got != "hello client-4" {
				t.Errorf("after repair: %q", got)
			}
		})
	}
}

func TestCloseClosesTLSConnections(t *testing.T) {
	pki := newPKI(t)
	confs := tlsConfigs(pki)
	srv, conns, started, release := countingServer(t, pki)
	h := New(zerolog.Nop(), engine.SystemClock{})
	call(t, h, srv.URL+"/", confs['a'].args)
	// b's request is in flight when the action closes: its connection
	// closes once the request ends instead of idling.
	done := make(chan string)
	go func() {
		res := h.Run(context.Background(), newInv(map[string]any{"url": srv.URL + "/slow", "method": "GET", "tls": confs['b'].args}))
		done <- string(res.Status) + " " + res.Output + res.Error
	}()
	<-started
	h.Close()
	waitFor(t, "the idle connection to close", func() bool { _, closed := conns.get(); return closed == 1 })
	close(release)
	if got := <-done; got != "succeeded hello anonymous" {
		t.Fatalf("in-flight call: %q", got)
	}
	waitFor(t, "the in-flight call's connection to close", func() bool { _, closed := conns.get(); return closed == 2 })
	h.Close()

	// Calls after Close still work and leave no connection behind.
	if got := call(t, h, srv.URL+"/", confs['a'].args); got != confs['a'].greet {
		t.Fatalf("after Close: %q", got)
	}
	waitFor(t, "the connection after Close to close", func() bool { opened, closed := conns.get(); return opened == 3 && closed == 3 })
}

func TestTLSConcurrentCalls(t *testing.T) {
	pki := newPKI(t)
	a := tlsConfigs(pki)['a']
	srv, conns, _, _ := countingServer(t, pki)
	h := New(zerolog.Nop(), engine.SystemClock{})
	defer h.Close()
	const workers, calls = 8, 5
	var wg sync.WaitGroup
	errs := make(chan string, workers*calls)
	for range workers {
		wg.Go(func() {
			for range calls {
				res := h.Run(context.Background(), newInv(map[string]any{"url": srv.URL + "/", "method": "GET", "tls": a.args}))
				if res.Status != engine.Succeeded || res.Output != a.greet {
					errs <- string(res.Status) + " " + res.Output + res.Error
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// A shared transport reuses connections (it keeps up to 4 idle, so a
	// few are redialled); a transport per call would open one per call.
	if opened, _ := conns.get(); opened >= workers*calls {
		t.Errorf("server accepted %d connections for %d calls", opened, workers*calls)
	}
	if n := len(h.tlsTransports); n != 1 {
		t.Errorf("%d transports cached, want 1", n)
	}
}
