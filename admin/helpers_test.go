package admin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// fakeBackend is an in-memory Backend that records what it was asked.
type fakeBackend struct {
	mu        sync.Mutex
	rules     []RuleInfo
	facts     map[string][]map[string]any
	entries   []engine.AuditEntry
	auditErr  error
	filters   []engine.AuditFilter
	injected  []injected
	injectErr error
	reloadErr error
	reloads   int
	ready     bool
	reasons   []string
}

type injected struct {
	ruleset string
	event   map[string]any
}

var _ Backend = (*fakeBackend)(nil)

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		rules: []RuleInfo{
			{Ruleset: "ops", Rule: "restart nginx", Enabled: true, Kind: "condition", Fired: 2,
				LastFired: time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)},
			{Ruleset: "ops", Rule: "page", Enabled: false, Kind: "all"},
			{Ruleset: "security", Rule: "block", Enabled: true, Kind: "any"},
		},
		facts: map[string][]map[string]any{"ops": {{"host": "web1", "state": "down"}}},
		ready: true,
	}
}

func (b *fakeBackend) Rules() []RuleInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]RuleInfo(nil), b.rules...)
}

func (b *fakeBackend) Facts(ruleset string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.facts[ruleset]
}

func (b *fakeBackend) Audit(_ context.Context, f engine.AuditFilter) ([]engine.AuditEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.filters = append(b.filters, f)
	return b.entries, b.auditErr
}

func (b *fakeBackend) Inject(_ context.Context, ruleset string, event map[string]any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.injectErr != nil {
		return b.injectErr
	}
	b.injected = append(b.injected, injected{ruleset, event})
	return nil
}

func (b *fakeBackend) Reload(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	return b.reloadErr
}

func (b *fakeBackend) Ready() (bool, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready, b.reasons
}

// sseMessage is one parsed Server-Sent Events message.
type sseMessage struct {
	id, event, data string
}

// sseReader parses an SSE body.
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReader(r)} }

// next returns the next message with data; comments and retry-only blocks
// are skipped.
func (s *sseReader) next() (sseMessage, error) {
	var m sseMessage
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(data) > 0 {
				m.data = strings.Join(data, "\n")
				return m, nil
			}
			m = sseMessage{}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.id = value
		case "event":
			m.event = value
		case "data":
			data = append(data, value)
		}
	}
}

// openStream connects to the SSE endpoint; header may set Last-Event-ID.
func openStream(t *testing.T, ctx context.Context, url string, header map[string]string) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	return resp, newSSEReader(resp.Body)
}

// readN reads n messages or fails after the deadline.
func readN(t *testing.T, r *sseReader, n int) []sseMessage {
	t.Helper()
	type res struct {
		m   sseMessage
		err error
	}
	var out []sseMessage
	for len(out) < n {
		ch := make(chan res, 1)
		go func() {
			m, err := r.next()
			ch <- res{m, err}
		}()
		select {
		case got := <-ch:
			if got.err != nil {
				t.Fatalf("reading message %d of %d: %v", len(out)+1, n, got.err)
			}
			out = append(out, got.m)
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for message %d of %d", len(out)+1, n)
		}
	}
	return out
}

var errBoom = errors.New("boom")
