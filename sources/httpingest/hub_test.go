package httpingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/testcerts"
)

func newHub(t *testing.T) *Hub {
	t.Helper()
	h := NewHub(HubConfig{Log: zerolog.Nop(), ShutdownGrace: 5 * time.Second, Linger: -1})
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return h
}

func text(s string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) })
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestHubSharesAnAddress(t *testing.T) {
	h := newHub(t)
	l := Listener{Address: "127.0.0.1:0"}
	a, err := h.Register(l, []string{"/a", "/a2"}, text("A"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Register(l, []string{"/b"}, text("B"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr().String() != b.Addr().String() {
		t.Fatalf("two listeners: %s and %s", a.Addr(), b.Addr())
	}
	base := "http://" + a.Addr().String()
	for path, want := range map[string]string{"/a": "A", "/a2": "A", "/b": "B"} {
		if code, body := get(t, http.DefaultClient, base+path); code != 200 || body != want {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	if code, body := get(t, http.DefaultClient, base+"/c"); code != 404 || body != `{"error":"no source on this path"}` {
		t.Errorf("/c: %d %q", code, body)
	}
	if got := h.Paths(l.Address); strings.Join(got, ",") != "/a,/a2,/b" {
		t.Errorf("paths %v", got)
	}

	// Conflicts.
	if _, err := h.Register(l, []string{"/b"}, text("X")); err == nil || !strings.Contains(err.Error(), `path "/b" on "127.0.0.1:0" is already served by another source`) {
		t.Errorf("path conflict: %v", err)
	}
	if _, err := h.Register(Listener{Address: l.Address, TLS: &TLSFiles{Cert: "c", Key: "k"}}, []string{"/t"}, text("T")); err == nil || !strings.Contains(err.Error(), "one source uses tls and the other does not") {
		t.Errorf("tls conflict: %v", err)
	}
	if _, err := h.Register(Listener{Address: l.Address, Timeouts: Timeouts{Read: time.Second}}, []string{"/t"}, text("T")); err == nil || !strings.Contains(err.Error(), "timeouts differ") {
		t.Errorf("timeouts conflict: %v", err)
	}

	// Closing one registration keeps the other; closing the last closes the
	// listener.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if code, _ := get(t, http.DefaultClient, base+"/a"); code != 404 {
		t.Errorf("/a after close: %d", code)
	}
	if code, body := get(t, http.DefaultClient, base+"/b"); code != 200 || body != "B" {
		t.Errorf("/b after closing a: %d %q", code, body)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", b.Addr().String()); err == nil {
		c.Close()
		t.Fatal("listener still open after the last registration closed")
	}
	if _, ok := h.Lookup(l.Address, "/b"); ok {
		t.Fatal("lookup finds a closed path")
	}
}

func TestHubConflictingTLSWhenTLSFirst(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir)
	h := newHub(t)
	l := Listener{Address: "127.0.0.1:0", TLS: &TLSFiles{Cert: pki.serverCert, Key: pki.serverKey}}
	if _, err := h.Register(l, []string{"/a"}, text("A")); err != nil {
		t.Fatal(err)
	}
	other := Listener{Address: l.Address, TLS: &TLSFiles{Cert: pki.serverCert, Key: pki.serverKey, ClientCA: pki.caFile}}
	if _, err := h.Register(other, []string{"/b"}, text("B")); err == nil || !strings.Contains(err.Error(), "tls settings differ") {
		t.Fatalf("err = %v", err)
	}
}

func TestHubBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := newHub(t)
	if _, err := h.Register(Listener{Address: ln.Addr().String()}, []string{"/"}, text("x")); err == nil || !strings.Contains(err.Error(), "listening on") {
		t.Fatalf("err = %v", err)
	}
}

func TestHubStopAndServe(t *testing.T) {
	h := NewHub(HubConfig{Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx, Listener{Address: "127.0.0.1:0"}, []string{"/s"}, text("S")) }()
	addr := waitLookup(t, h, "127.0.0.1:0", "/s")
	if code, body := get(t, http.DefaultClient, "http://"+addr+"/s"); code != 200 || body != "S" {
		t.Fatalf("%d %q", code, body)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := h.Register(Listener{Address: "127.0.0.1:0"}, []string{"/"}, text("x")); !errors.Is(err, ErrHubStopped) {
		t.Fatalf("register after stop: %v", err)
	}
}

// TestCloseWaitsForRequestsInFlight: Close does not return before the
// handlers on its paths finished, unless its context ends first; when the
// context ends while the listener must close, remaining connections are
// dropped.
func TestCloseWaitsForRequestsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shared  bool // another registration keeps the listener open
		expired bool // Close's context has already ended
		want    string
	}{
		{name: "shared listener, patient close", shared: true, want: "done"},
		{name: "own listener, patient close", want: "done"},
		{name: "shared listener, impatient close", shared: true, expired: true, want: "done"},
		{name: "own listener, impatient close drops the request", expired: true, want: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t)
			inside, release := make(chan struct{}), make(chan struct{})
			l := Listener{Address: "127.0.0.1:0"}
			reg, err := h.Register(l, []string{"/slow"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(inside)
				<-release
				io.WriteString(w, "done")
			}))
			if err != nil {
				t.Fatal(err)
			}
			if tc.shared {
				if _, err := h.Register(l, []string{"/other"}, text("o")); err != nil {
					t.Fatal(err)
				}
			}
			got := make(chan string, 1)
			go func() {
				resp, err := http.Get("http://" + reg.Addr().String() + "/slow")
				if err != nil {
					got <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- string(b)
			}()
			<-inside
			ctx, cancel := context.WithCancel(context.Background())
			if tc.expired {
				cancel()
			}
			defer cancel()
			closed := make(chan error, 1)
			go func() { closed <- reg.Close(ctx) }()
			if tc.expired {
				if err := <-closed; !errors.Is(err, context.Canceled) {
					t.Fatalf("impatient close: %v", err)
				}
			} else {
				select {
				case err := <-closed:
					t.Fatalf("close returned (%v) with a request in flight", err)
				default:
				}
			}
			close(release)
			if s := <-got; !strings.Contains(s, tc.want) {
				t.Fatalf("in-flight request got %q, want %q", s, tc.want)
			}
			if !tc.expired {
				if err := <-closed; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func waitLookup(t *testing.T, h *Hub, address, path string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if a, ok := h.Lookup(address, path); ok {
			return a.String()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s%s never served", address, path)
	return ""
}

// waitClosed reads from c until the server closes it or the deadline passes.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", within)
	}
	return string(b)
}

// TestSlowClientsCannotHoldTheListener: a client that never finishes its
// headers, or its body, is cut off by the listener's timeouts and nothing is
// emitted.
func TestSlowClientsCannotHoldTheListener(t *testing.T) {
	h := newHub(t)
	rec := &recorder{}
	ep := newEndpoint(rec, func(e *Endpoint) { e.Now = nil })
	reg, err := h.Register(Listener{Address: "127.0.0.1:0", Timeouts: Timeouts{ReadHeader: 150 * time.Millisecond, Read: 300 * time.Millisecond}}, []string{"/hook"}, ep)
	if err != nil {
		t.Fatal(err)
	}
	addr := reg.Addr().String()

	t.Run("headers never finished", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n")
		waitClosed(t, c, 5*time.Second)
	})
	t.Run("body never finished", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly a little")
		out := waitClosed(t, c, 5*time.Second)
		if out != "" && !strings.HasPrefix(out, "HTTP/1.1 400") {
			t.Fatalf("answer %q", out)
		}
	})
	t.Run("a normal request still works", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	if n := len(rec.entries()); n != 1 {
		t.Fatalf("emitted %d entries, want only the normal one", n)
	}
}

type pki struct {
	caFile, serverCert, serverKey string
	ca                            *testcerts.CA
}

// newPKI writes a CA and a server certificate for 127.0.0.1 to dir.
func newPKI(t *testing.T, dir string) *pki {
	p := &pki{ca: testcerts.NewCA(t, "test ca")}
	p.caFile = testcerts.WriteFile(t, dir, "ca.pem", p.ca.CertPEM)
	p.serverCert, p.serverKey = p.ca.Server(t, "server").WriteFiles(t, dir, "server")
	return p
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t, t.TempDir())
	otherCA := testcerts.NewCA(t, "other ca")
	h := newHub(t)
	rec := &recorder{}
	l := Listener{Address: "127.0.0.1:0", TLS: &TLSFiles{Cert: p.serverCert, Key: p.serverKey, ClientCA: p.caFile}}
	open := newEndpoint(rec, nil)
	named := newEndpoint(rec, func(e *Endpoint) { e.ClientNames = []string{"alertmanager", "am.example.com"} })
	reg, err := h.Register(l, []string{"/open"}, open)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Register(l, []string{"/named"}, named); err != nil {
		t.Fatal(err)
	}
	base := "https://" + reg.Addr().String()

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool, Certificates: certs}}}
	}
	cases := []struct {
		name   string
		client *http.Client
		path   string
		status int // 0: the TLS handshake must fail
	}{
		{"no client certificate", client(), "/open", 0},
		{"certificate from another CA", client(otherCA.Client(t, "alertmanager").TLS), "/open", 0},
		{"certificate from the CA", client(p.ca.Client(t, "someone").TLS), "/open", 200},
		{"right CA, name not allowed", client(p.ca.Client(t, "someone", "x.example.com").TLS), "/named", 403},
		{"right CA, allowed common name", client(p.ca.Client(t, "alertmanager").TLS), "/named", 200},
		{"right CA, allowed DNS name", client(p.ca.Client(t, "other", "AM.example.com").TLS), "/named", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.entries())
			resp, err := tc.client.Post(base+tc.path, "text/plain", strings.NewReader("x"))
			if tc.status == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("handshake succeeded: %d", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
			}
			want := before
			if tc.status == 200 {
				want++
			}
			if n := len(rec.entries()); n != want {
				t.Fatalf("emitted %d, want %d", n, want)
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir)
	bad := testcerts.WriteFile(t, dir, "bad.pem", []byte("not pem"))
	h := newHub(t)
	cases := []struct {
		name string
		tls  TLSFiles
		want string
	}{
		{"missing key file", TLSFiles{Cert: p.serverCert, Key: filepath.Join(dir, "nope.key")}, "loading tls cert"},
		{"client ca not pem", TLSFiles{Cert: p.serverCert, Key: p.serverKey, ClientCA: bad}, "holds no PEM certificate"},
		{"client ca missing", TLSFiles{Cert: p.serverCert, Key: p.serverKey, ClientCA: filepath.Join(dir, "none")}, "reading tls client_ca"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.tls
			_, err := h.Register(Listener{Address: "127.0.0.1:0", TLS: &f}, []string{"/"}, text("x"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLingerKeepsTheListenerForARestart: after its last path leaves, a
// listener stays bound for the linger time, answers that path 503 with
// Retry-After, and a source registering again reuses it; with other TLS
// settings it is replaced; once the linger time passed it closes.
func TestLingerKeepsTheListenerForARestart(t *testing.T) {
	h := NewHub(HubConfig{Log: zerolog.Nop(), Linger: time.Hour})
	defer h.Stop(context.Background())
	l := Listener{Address: "127.0.0.1:0"}
	reg, err := h.Register(l, []string{"/hook"}, text("v1"))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + reg.Addr().String()
	if err := reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/hook", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("listener closed during linger: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("left path: %d retry-after %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := get(t, http.DefaultClient, base+"/never"); code != 404 {
		t.Fatalf("never-served path: %d", code)
	}
	reg2, err := h.Register(l, []string{"/hook"}, text("v2"))
	if err != nil {
		t.Fatal(err)
	}
	if reg2.Addr().String() != reg.Addr().String() {
		t.Fatalf("rebound: %s then %s", reg.Addr(), reg2.Addr())
	}
	if code, body := get(t, http.DefaultClient, base+"/hook"); code != 200 || body != "v2" {
		t.Fatalf("after restart: %d %q", code, body)
	}

	// Other settings on a lingering listener replace it.
	if err := reg2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg3, err := h.Register(Listener{Address: l.Address, Timeouts: Timeouts{Read: time.Second}}, []string{"/other"}, text("v3"))
	if err != nil {
		t.Fatalf("replacing a lingering listener: %v", err)
	}
	if code, body := get(t, http.DefaultClient, "http://"+reg3.Addr().String()+"/other"); code != 200 || body != "v3" {
		t.Fatalf("replacement: %d %q", code, body)
	}
}

// lingerHub is a hub whose linger window runs on a fake clock.
func lingerHub(t *testing.T, linger time.Duration) (*Hub, *engine.FakeClock) {
	t.Helper()
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := NewHub(HubConfig{Log: zerolog.Nop(), Linger: linger, Clock: clock})
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return h, clock
}

// open reports whether something accepts connections on addr. A closed
// listener's port refuses at once.
func open(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestLingerExpires: a listener whose last path left stays open for the
// whole linger window on the hub's clock and closes once it passed.
func TestLingerExpires(t *testing.T) {
	h, clock := lingerHub(t, 5*time.Second)
	reg, err := h.Register(Listener{Address: "127.0.0.1:0"}, []string{"/"}, text("x"))
	if err != nil {
		t.Fatal(err)
	}
	addr := reg.Addr().String()
	if n := clock.Timers(); n != 0 {
		t.Fatalf("%d timers pending while a path is served", n)
	}
	if err := reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := clock.Timers(); n != 1 {
		t.Fatalf("%d timers pending after the last path left, want the linger timer", n)
	}
	clock.Advance(5*time.Second - time.Nanosecond)
	if !open(addr) {
		t.Fatal("listener closed before the linger window passed")
	}
	// The timer's function closes the listener before Advance returns.
	clock.Advance(time.Nanosecond)
	if open(addr) {
		t.Fatal("listener still open after the linger window passed")
	}
	if _, ok := h.Lookup("127.0.0.1:0", "/"); ok || len(h.Paths("127.0.0.1:0")) != 0 {
		t.Fatal("the hub still knows the closed listener")
	}
	if n := clock.Timers(); n != 0 {
		t.Fatalf("%d timers pending after the listener closed", n)
	}
}

// TestLingerRejoinKeepsTheListener: a source registering again within the
// window gets the same listener, which then stays open however long the
// clock runs, until that source leaves too and a new window passes.
func TestLingerRejoinKeepsTheListener(t *testing.T) {
	h, clock := lingerHub(t, 5*time.Second)
	l := Listener{Address: "127.0.0.1:0"}
	reg, err := h.Register(l, []string{"/hook"}, text("v1"))
	if err != nil {
		t.Fatal(err)
	}
	addr := reg.Addr().String()
	if err := reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(4 * time.Second)
	if code, _ := get(t, http.DefaultClient, "http://"+addr+"/hook"); code != 503 {
		t.Fatalf("left path within the window: %d, want 503", code)
	}
	reg2, err := h.Register(l, []string{"/hook"}, text("v2"))
	if err != nil {
		t.Fatal(err)
	}
	if reg2.Addr().String() != addr {
		t.Fatalf("rebound: %s then %s", addr, reg2.Addr())
	}
	if n := clock.Timers(); n != 0 {
		t.Fatalf("%d timers pending after the rejoin: the linger timer was not stopped", n)
	}
	clock.Advance(time.Hour)
	if code, body := get(t, http.DefaultClient, "http://"+addr+"/hook"); code != 200 || body != "v2" {
		t.Fatalf("after the old window passed: %d %q, want the rejoined source", code, body)
	}

	if err := reg2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5*time.Second - time.Nanosecond)
	if !open(addr) {
		t.Fatal("listener closed before the second window passed")
	}
	clock.Advance(time.Nanosecond)
	if open(addr) {
		t.Fatal("listener open after the second window passed")
	}
}

// TestLingerGonePathOnTheClock: a path that left a listener still in use
// answers 503 for the linger window on the hub's clock, then 404.
func TestLingerGonePathOnTheClock(t *testing.T) {
	h, clock := lingerHub(t, 5*time.Second)
	l := Listener{Address: "127.0.0.1:0"}
	a, err := h.Register(l, []string{"/a"}, text("A"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Register(l, []string{"/b"}, text("B")); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.Addr().String()
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := clock.Timers(); n != 0 {
		t.Fatalf("%d timers armed while /b still uses the listener", n)
	}
	clock.Advance(5*time.Second - time.Nanosecond)
	if code, _ := get(t, http.DefaultClient, base+"/a"); code != 503 {
		t.Fatalf("/a within the window: %d, want 503", code)
	}
	clock.Advance(time.Nanosecond)
	if code, _ := get(t, http.DefaultClient, base+"/a"); code != 404 {
		t.Fatalf("/a after the window: %d, want 404", code)
	}
	if code, body := get(t, http.DefaultClient, base+"/b"); code != 200 || body != "B" {
		t.Fatalf("/b: %d %q", code, body)
	}
}

// TestTLSFilesReloaded: a renewed server certificate is served from the next
// handshake on; a broken replacement keeps the previous one.
func TestTLSFilesReloaded(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir)
	h := newHub(t)
	reg, err := h.Register(Listener{Address: "127.0.0.1:0", TLS: &TLSFiles{Cert: p.serverCert, Key: p.serverKey}}, []string{"/"}, text("ok"))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", reg.Addr().String(), &tls.Config{RootCAs: p.ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	if again := serial(); again != first {
		t.Fatalf("certificate changed without a file change: %s, %s", first, again)
	}

	// Renew: new key pair in place, with a distinct modification time.
	renewed := p.ca.Server(t, "server")
	if c, k := renewed.WriteFiles(t, dir, "server"); c != p.serverCert || k != p.serverKey {
		t.Fatalf("renewal written to %s and %s, not over %s and %s", c, k, p.serverCert, p.serverKey)
	}
	later := time.Now().Add(time.Minute)
	for _, f := range []string{p.serverCert, p.serverKey} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	second := serial()
	if second == first {
		t.Fatal("renewed certificate not served")
	}
	want := renewed.X509.Raw
	c, err := tls.Dial("tcp", reg.Addr().String(), &tls.Config{RootCAs: p.ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0].Raw; string(got) != string(want) {
		t.Fatal("served certificate is not the renewed one")
	}
	c.Close()

	// A broken replacement: the previous certificate stays.
	if err := os.WriteFile(p.serverCert, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p.serverCert, later.Add(time.Minute), later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != second {
		t.Fatalf("broken files changed the certificate to %s", got)
	}
}

// TestHubAnyPath: a source on AnyPath gets every path no other source on
// the listener serves; exact paths win.
func TestHubAnyPath(t *testing.T) {
	h := newHub(t)
	l := Listener{Address: "127.0.0.1:0"}
	a, err := h.Register(l, []string{"/a"}, text("A"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Register(l, []string{AnyPath}, text("ANY")); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.Addr().String()
	for path, want := range map[string]string{"/a": "A", "/": "ANY", "/x/y": "ANY"} {
		if code, body := get(t, http.DefaultClient, base+path); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
	if _, err := h.Register(l, []string{AnyPath}, text("X")); err == nil {
		t.Error("a second AnyPath source on one listener accepted")
	}
}
