// Package httpingesttest holds the test doubles the HTTP sources share: a
// recording engine.Emitter with the journal's dedupe and stale semantics, a
// runner that starts a source on a loopback port of its own hub, and a
// request helper. Import it from _test.go files only.
package httpingesttest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// Journal is a recording engine.Emitter with the journal's dedupe and stale
// semantics, in memory: an entry whose DedupeKey was accepted before is a
// Duplicate, one older than the newest accepted for its OrderKey is Stale.
// It records every Emit call, so a test can check that one request is one
// call. The zero value is ready; it is safe for concurrent use.
type Journal struct {
	mu      sync.Mutex
	calls   [][]engine.Entry
	entries []engine.Entry
	refs    []engine.SourceRef
	seen    map[string]bool
	newest  map[string]time.Time
	err     error
}

var _ engine.Emitter = (*Journal)(nil)

// Emit records es and answers one outcome per entry, or the error set with
// Fail (after recording the call).
func (j *Journal) Emit(_ context.Context, src engine.SourceRef, es []engine.Entry) ([]engine.Outcome, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, es)
	if j.err != nil {
		return nil, j.err
	}
	if j.seen == nil {
		j.seen, j.newest = map[string]bool{}, map[string]time.Time{}
	}
	out := make([]engine.Outcome, len(es))
	for i, e := range es {
		switch {
		case e.DedupeKey != "" && j.seen[e.DedupeKey]:
			out[i] = engine.Duplicate
		case e.OrderKey != "" && e.Timestamp.Before(j.newest[e.OrderKey]):
			out[i] = engine.Stale
		default:
			if e.DedupeKey != "" {
				j.seen[e.DedupeKey] = true
			}
			if e.OrderKey != "" {
				j.newest[e.OrderKey] = e.Timestamp
			}
			j.entries = append(j.entries, e)
			j.refs = append(j.refs, src)
		}
	}
	return out, nil
}

// Fail makes every later Emit return err (nil: accept again).
func (j *Journal) Fail(err error) {
	j.mu.Lock()
	j.err = err
	j.mu.Unlock()
}

// Accepted are the entries accepted so far, in order.
func (j *Journal) Accepted() []engine.Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]engine.Entry(nil), j.entries...)
}

// Refs are the source references of the accepted entries, in order.
func (j *Journal) Refs() []engine.SourceRef {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]engine.SourceRef(nil), j.refs...)
}

// CallSizes is the number of entries of each Emit call, in order.
func (j *Journal) CallSizes() []int {
	j.mu.Lock()
	defer j.mu.Unlock()
	var n []int
	for _, c := range j.calls {
		n = append(n, len(c))
	}
	return n
}

// Calls is the number of Emit calls.
func (j *Journal) Calls() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.calls)
}

// Served is what Start needs of a source beyond engine.Source: where it
// listens.
type Served interface {
	engine.Source
	Listener() httpingest.Listener
	Paths() []string
}

// Server is a source running on its own hub.
type Server struct {
	// Addr is "http://host:port" of the listener.
	Addr string
	// Path is the first path the source serves.
	Path   string
	Hub    *httpingest.Hub
	Source engine.Source
}

// URL is Addr followed by the first path served.
func (s *Server) URL() string { return s.Addr + s.Path }

// Start checks args with spec (built on a new hub), resolves their secret
// references, builds the source with sc (Args replaced) and runs it with out
// until the test ends. args["address"] defaults to "127.0.0.1:0". It returns
// once the source listens (polling the hub, for at most 5 seconds) and stops
// the source and the hub in t.Cleanup.
func Start(t testing.TB, spec func(*httpingest.Hub) engine.SourceSpec, sc engine.SourceConfig, args map[string]any, out engine.Emitter) *Server {
	t.Helper()
	if _, ok := args["address"]; !ok {
		args["address"] = "127.0.0.1:0"
	}
	hub := httpingest.NewHub(httpingest.HubConfig{Log: zerolog.Nop()})
	sp := spec(hub)
	if err := sp.Check(args); err != nil {
		t.Fatalf("check: %v", err)
	}
	resolved, _, err := engine.ResolveSecrets(args)
	if err != nil {
		t.Fatal(err)
	}
	sc.Args = resolved.(map[string]any)
	src, err := sp.New(sc)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	served, ok := src.(Served)
	if !ok {
		t.Fatalf("source %T does not say where it listens", src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		hub.Stop(context.Background())
	})
	path := served.Paths()[0]
	deadline := time.Now().Add(5 * time.Second)
	for {
		if a, ok := hub.Lookup(served.Listener().Address, path); ok {
			return &Server{Addr: "http://" + a.String(), Path: path, Hub: hub, Source: src}
		}
		select {
		case err := <-done:
			t.Fatalf("run ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("source never listened")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Reply is an answer of the source.
type Reply struct {
	Status int
	Header http.Header
	// Raw is the body; Body its JSON object, nil when it is not one.
	Raw  []byte
	Body map[string]any
}

// Send sends one request to url with the defaults headers, except those
// that headers names: headers are name, value pairs, added in order (a name
// given twice is sent twice).
func Send(t testing.TB, method, url, body string, defaults http.Header, headers ...string) Reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range defaults {
		req.Header[k] = append([]string(nil), vs...)
	}
	replaced := map[string]bool{}
	for i := 0; i+1 < len(headers); i += 2 {
		k := http.CanonicalHeaderKey(headers[i])
		if !replaced[k] {
			req.Header.Del(k)
			replaced[k] = true
		}
		req.Header.Add(k, headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := Reply{Status: resp.StatusCode, Header: resp.Header, Raw: b}
	_ = json.Unmarshal(b, &r.Body)
	return r
}

// WantArgError checks err from a source's Check or New: nil when want is
// empty, else an *engine.ArgError whose text contains want and none of
// secrets.
func WantArgError(t testing.TB, err error, want string, secrets ...string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want %q", err, want)
	}
	var ae *engine.ArgError
	if !errors.As(err, &ae) {
		t.Errorf("error %T is not an *engine.ArgError", err)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q mentions the secret %q", err, s)
		}
	}
}

// WantAnswer checks an answer's status (fatal when it differs), its
// Retry-After header and, when errPart is not empty, that its "error"
// contains errPart.
func WantAnswer(t testing.TB, r Reply, status int, retryAfter, errPart string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d %s, want %d", r.Status, r.Raw, status)
	}
	if got := r.Header.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After %q, want %q", got, retryAfter)
	}
	if msg, _ := r.Body["error"].(string); errPart != "" && !strings.Contains(msg, errPart) {
		t.Errorf("error %q, want it to contain %q", msg, errPart)
	}
}
