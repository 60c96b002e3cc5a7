package httpcall

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
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

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/testcerts"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newInv(args map[string]any) *engine.Invocation {
	return &engine.Invocation{ID: "inv-42", Ruleset: "rs", Rule: "r", Args: args}
}

func runArgs(t *testing.T, ctx context.Context, args map[string]any) engine.Result {
	t.Helper()
	if err := Check(args); err != nil {
		t.Fatalf("Check: %v", err)
	}
	h := New(zerolog.Nop(), engine.NewFakeClock(epoch))
	defer h.Close()
	return h.Run(ctx, newInv(args))
}

func TestCheck(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    map[string]any
		errPath string
		errHas  string
	}{
		{"minimal", map[string]any{"url": "https://example.test/hook"}, "", ""},
		{"all options", map[string]any{
			"url": "http://127.0.0.1:9/x", "method": "put", "headers": map[string]any{"X-A": "1", "X-N": 2},
			"body": map[string]any{"a": 1}, "tls": map[string]any{"ca": caFile, "insecure_skip_verify": false},
			"expect_status": []any{200, 202}, "output_limit": "4KiB", "timeout": "5s", "retries": 3,
		}, "", ""},
		{"templates", map[string]any{
			"url": "https://{{ event.host }}/x", "method": "{{ vars.m }}", "headers": "{{ vars.h }}",
			"body": "{{ event.payload }}", "expect_status": "{{ vars.s }}", "tls": map[string]any{"ca": "{{ vars.ca }}", "insecure_skip_verify": "{{ vars.i }}"},
		}, "", ""},
		{"secret in url", map[string]any{"url": "${env:HOOK_URL}"}, "", ""},
		{"raw body", map[string]any{"url": "http://h/", "raw_body": "a=b"}, "", ""},
		{"list body", map[string]any{"url": "http://h/", "body": []any{1, 2}}, "", ""},
		{"no url", map[string]any{"method": "GET"}, "url", "required"},
		{"bad scheme", map[string]any{"url": "ftp://h/x"}, "url", "http:// or https://"},
		{"no host", map[string]any{"url": "http:///x"}, "url", "no host"},
		{"bad url", map[string]any{"url": "http://h/%zz"}, "url", "not a URL"},
		{"bad method", map[string]any{"url": "http://h/", "method": "GET X"}, "method", "not an HTTP method"},
		{"method typo", map[string]any{"url": "http://h/", "method": "PSOT"}, "method", `"PSOT" is not an HTTP method (want one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE); did you mean "POST"?`},
		{"unknown method", map[string]any{"url": "http://h/", "method": "FETCH"}, "method", `"FETCH" is not an HTTP method`},
		{"connect refused", map[string]any{"url": "http://h/", "method": "CONNECT"}, "method", "not an HTTP method"},
		{"unknown key", map[string]any{"url": "http://h/", "header": map[string]any{}}, "header", "unknown key"},
		{"bad header name", map[string]any{"url": "http://h/", "headers": map[string]any{"X A": "1"}}, "headers.X A", "header name"},
		{"header injection", map[string]any{"url": "http://h/", "headers": map[string]any{"X-A": "1\r\nX-B: 2"}}, "headers.X-A", "line breaks"},
		{"string body", map[string]any{"url": "http://h/", "body": "text"}, "body", "raw_body"},
		{"number body", map[string]any{"url": "http://h/", "body": 3}, "body", "map or a list"},
		{"both bodies", map[string]any{"url": "http://h/", "body": map[string]any{}, "raw_body": "x"}, "raw_body", "together"},
		{"tls unknown", map[string]any{"url": "http://h/", "tls": map[string]any{"verify": false}}, "tls.verify", "unknown key"},
		{"tls missing ca", map[string]any{"url": "http://h/", "tls": map[string]any{"ca": "/nonexistent/ca.pem"}}, "tls.ca", "no such file"},
		{"tls cert without key", map[string]any{"url": "http://h/", "tls": map[string]any{"cert": caFile}}, "tls", "together"},
		{"tls not map", map[string]any{"url": "http://h/", "tls": true}, "tls", "must be a map"},
		{"bad status", map[string]any{"url": "http://h/", "expect_status": []any{99}}, "expect_status.0", "not an HTTP status"},
		{"empty statuses", map[string]any{"url": "http://h/", "expect_status": []any{}}, "expect_status", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checktest.ArgError(t, Check(tc.args), tc.errPath, tc.errHas)
		})
	}
}

func TestStatusClassification(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		expect     []any
		want       engine.Status
		wantAfter  time.Duration
	}{
		{"200", 200, "", nil, engine.Succeeded, 0},
		{"204", 204, "", nil, engine.Succeeded, 0},
		{"expected 201", 201, "", []any{201}, engine.Succeeded, 0},
		{"200 not expected", 200, "", []any{201}, engine.Failed, 0},
		{"expected 404", 404, "", []any{200, 404}, engine.Succeeded, 0},
		{"400 not retried", 400, "", nil, engine.Failed, 0},
		{"401", 401, "", nil, engine.Failed, 0},
		{"404", 404, "", nil, engine.Failed, 0},
		{"409", 409, "", nil, engine.Failed, 0},
		{"500", 500, "", nil, engine.Retryable, 0},
		{"502", 502, "", nil, engine.Retryable, 0},
		{"503 with date", 503, epoch.Add(90 * time.Second).Format(http.TimeFormat), nil, engine.Retryable, 90 * time.Second},
		{"500 not expected but retryable", 500, "", []any{200}, engine.Retryable, 0},
		{"429 seconds", 429, "7", nil, engine.Retryable, 7 * time.Second},
		{"429 past date", 429, epoch.Add(-time.Minute).Format(http.TimeFormat), nil, engine.Retryable, 0},
		{"429 garbage", 429, "soon", nil, engine.Retryable, 0},
		{"429 huge", 429, "99999999", nil, engine.Retryable, MaxRetryAfter},
		{"304", 304, "", nil, engine.Failed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, "reply line\nsecond line\n")
			}))
			defer srv.Close()
			args := map[string]any{"url": srv.URL + "/hook"}
			if tc.expect != nil {
				args["expect_status"] = tc.expect
			}
			res := runArgs(t, context.Background(), args)
			if res.Status != tc.want {
				t.Errorf("status = %s (%s), want %s", res.Status, res.Error, tc.want)
			}
			if res.HTTPStatus != tc.status {
				t.Errorf("HTTPStatus = %d, want %d", res.HTTPStatus, tc.status)
			}
			if res.RetryAfter != tc.wantAfter {
				t.Errorf("RetryAfter = %v, want %v", res.RetryAfter, tc.wantAfter)
			}
			if tc.status != 204 && tc.status != 304 && res.Output != "reply line\nsecond line\n" {
				t.Errorf("output = %q", res.Output)
			}
			if res.Status != engine.Succeeded && !strings.Contains(res.Error, "POST "+srv.URL+"/hook: ") {
				t.Errorf("error %q does not name the request", res.Error)
			}
		})
	}
}

type recorded struct {
	method, path, host string
	header             http.Header
	body               string
}

func recorder(t *testing.T) (*httptest.Server, func() recorded) {
	t.Helper()
	var (
		mu  sync.Mutex
		got recorded
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = recorded{r.Method, r.URL.RequestURI(), r.Host, r.Header.Clone(), string(b)}
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() recorded { mu.Lock(); defer mu.Unlock(); return got }
}

func TestRequest(t *testing.T) {
	srv, last := recorder(t)
	tests := []struct {
		name   string
		args   map[string]any
		method string
		body   string
		header map[string]string
		host   string
	}{
		{"json body", map[string]any{"url": srv.URL + "/a?x=1", "body": map[string]any{"alert": "down", "n": 2}}, "POST",
			`{"alert":"down","n":2}`, map[string]string{"Content-Type": "application/json", "Idempotency-Key": "inv-42", "User-Agent": "rulebook"}, ""},
		{"raw body", map[string]any{"url": srv.URL + "/a", "method": "put", "raw_body": "k=v&x", "headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"}}, "PUT",
			"k=v&x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, ""},
		{"no body", map[string]any{"url": srv.URL + "/a", "method": "GET"}, "GET", "", map[string]string{"Content-Type": ""}, ""},
		{"user idempotency key and headers", map[string]any{"url": srv.URL + "/a", "headers": map[string]any{"idempotency-key": "mine", "X-Count": 3, "Authorization": "Bearer t"}}, "POST",
			"", map[string]string{"Idempotency-Key": "mine", "X-Count": "3", "Authorization": "Bearer t"}, ""},
		{"host header", map[string]any{"url": srv.URL + "/a", "headers": map[string]any{"Host": "api.example.test"}}, "POST", "", nil, "api.example.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runArgs(t, context.Background(), tc.args)
			if res.Status != engine.Succeeded {
				t.Fatalf("status %s: %s", res.Status, res.Error)
			}
			got := last()
			if got.method != tc.method || got.body != tc.body {
				t.Errorf("request %s %q, want %s %q", got.method, got.body, tc.method, tc.body)
			}
			for k, v := range tc.header {
				if got.header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, got.header.Get(k), v)
				}
			}
			if tc.host != "" && got.host != tc.host {
				t.Errorf("Host = %q, want %q", got.host, tc.host)
			}
		})
	}
}

func TestConnectionErrorsAreRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res := runArgs(t, context.Background(), map[string]any{"url": "http://" + addr + "/x"})
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "refused") {
		t.Errorf("refused: %s %q, want retryable", res.Status, res.Error)
	}

	// A server that closes the connection without answering.
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 1024))
			c.Close()
		}
	}()
	res = runArgs(t, context.Background(), map[string]any{"url": "http://" + l.Addr().String() + "/x"})
	if res.Status != engine.Retryable {
		t.Errorf("closed connection: %s %q, want retryable", res.Status, res.Error)
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res := runArgs(t, ctx, map[string]any{"url": srv.URL})
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "timed out") {
		t.Errorf("result = %s %q, want retryable timed out", res.Status, res.Error)
	}
}

func TestSecretsAndLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = io.WriteString(w, "bad token "+r.URL.Query().Get("token")+"\n"+strings.Repeat("x", 5000))
	}))
	defer srv.Close()
	inv := newInv(map[string]any{"url": srv.URL + "/x?token=t0ps3cret", "output_limit": 100})
	inv.Secrets = []string{"t0ps3cret"}
	h := New(zerolog.Nop(), engine.SystemClock{})
	defer h.Close()
	res := h.Run(context.Background(), inv)
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), "t0ps3cret") {
		t.Errorf("secret leaked: %s", b)
	}
	if !strings.Contains(res.Error, "token=******") || !strings.Contains(res.Error, "bad token ******") {
		t.Errorf("error = %q", res.Error)
	}
	if !strings.HasSuffix(res.Output, "[... response truncated after 100 bytes ...]") || res.Details["output_truncated"] != true {
		t.Errorf("output not truncated: %q", res.Output)
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"120", 2 * time.Minute}, {" 5 ", 5 * time.Second}, {"-5", 0}, {"1.5", 0},
		{epoch.Add(time.Hour / 2).Format(http.TimeFormat), 30 * time.Minute},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0},
		{"Fri, 02 Jan 2026 03:05:05 GMT", time.Minute},
		{"Friday, 02-Jan-26 03:05:05 GMT", time.Minute}, // RFC 850
		{"Fri Jan  2 03:05:05 2026", time.Minute},       // asctime
		{"99999999999999999999", MaxRetryAfter},
		{epoch.Add(48 * time.Hour).Format(http.TimeFormat), MaxRetryAfter},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, epoch); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Fri, 02 Jan 2026 03:05:05 GMT", "", "-1", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := parseRetryAfter(s, epoch); d < 0 || d > MaxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v", s, d)
		}
	})
}

func FuzzCheck(f *testing.F) {
	checktest.FuzzArgs(f, Check,
		`{"url":"https://h/x","headers":{"A":"b"},"body":{"a":[1]}}`,
		`{"url":"{{ x }}","tls":{"insecure_skip_verify":"{{ y }}"},"expect_status":[200,"{{ z }}"]}`,
	)
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, and returns their paths.
type testPKI struct {
	caFile, clientCert, clientKey string
	caPool                        *x509.CertPool
	server                        tls.Certificate
	// ca signs more client certificates (ca.Client with the caller's t).
	ca *testcerts.CA
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "rulebook test CA")
	p := testPKI{caFile: testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM), caPool: ca.Pool, server: ca.Server(t, "127.0.0.1").TLS, ca: ca}
	p.clientCert, p.clientKey = ca.Client(t, "rulebook client").WriteFiles(t, dir, "client")
	return p
}

func TestTLS(t *testing.T) {
	pki := newPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.caPool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	client := map[string]any{"cert": pki.clientCert, "key": pki.clientKey}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name   string
		tls    map[string]any
		want   engine.Status
		errHas string
	}{
		{"test CA and client cert", with(client, "ca", pki.caFile), engine.Succeeded, ""},
		{"system roots reject the test CA", client, engine.Failed, "certificate"},
		{"insecure_skip_verify", with(client, "insecure_skip_verify", true), engine.Succeeded, ""},
		{"no client cert", map[string]any{"ca": pki.caFile}, engine.Failed, "tls: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runArgs(t, context.Background(), map[string]any{"url": srv.URL + "/", "method": "GET", "tls": tc.tls})
			if res.Status != tc.want || !strings.Contains(res.Error, tc.errHas) {
				t.Fatalf("result = %s %q, want %s containing %q", res.Status, res.Error, tc.want, tc.errHas)
			}
			if tc.want == engine.Succeeded && res.Output != "hello rulebook client" {
				t.Errorf("output = %q", res.Output)
			}
		})
	}
}

// Rendered whole-value templates may have any type; text arguments take
// their text form at run time.
func TestRenderedValuesBecomeText(t *testing.T) {
	srv, last := recorder(t)
	h := New(zerolog.Nop(), engine.SystemClock{})
	defer h.Close()
	res := h.Run(context.Background(), newInv(map[string]any{
		"url": srv.URL + "/x", "raw_body": map[string]any{"a": 1.0}, "headers": map[string]any{"X-N": 3.0},
	}))
	if res.Status != engine.Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Error)
	}
	if got := last(); got.body != `{"a":1}` || got.header.Get("X-N") != "3" {
		t.Errorf("request body %q, X-N %q", got.body, got.header.Get("X-N"))
	}
}

// TestRunTimeURLWithReferenceTextIsChecked: at run time the arguments are
// resolved, so text that still looks like a secret reference came from event
// data; it must not exempt the URL (or a TLS file) from validation.
func TestRunTimeURLWithReferenceTextIsChecked(t *testing.T) {
	for _, args := range []map[string]any{
		{"url": "file:///${env:HOME}"},
		{"url": "http://example.test/", "tls": map[string]any{"ca": "/nonexistent/${file:/etc/hostname}"}},
	} {
		if _, err := parse(args, false); err == nil {
			t.Errorf("parse(%v) at run time: no error", args)
		}
		// At load, the reference is the rulebook's own and is checked once resolved.
		if _, err := parse(args, true); err != nil {
			t.Errorf("parse(%v) at load: %v", args, err)
		}
	}
}
