package httpingest

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// probing is a recorder whose backlog is full before any Emit.
type probing struct {
	*recorder
	full *engine.BacklogError
}

func (p *probing) BacklogFull(engine.SourceRef) *engine.BacklogError { return p.full }

// unreadable is a body that fails the test when read.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the body was read although the backlog was full")
	return 0, errors.New("read")
}

// A full backlog answers 503 with Retry-After before the body is read,
// and nothing is emitted.
func TestBacklogFullRefusesBeforeReading(t *testing.T) {
	p := &probing{recorder: &recorder{}, full: &engine.BacklogError{RetryAfter: 2 * time.Second}}
	ep := newEndpoint(p, nil)
	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/", unreadable{t})
	req.Header.Set("Content-Type", "application/json")
	ep.ServeHTTP(w, req)
	if w.Code != 503 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("answer %d, Retry-After %q; want 503, 2", w.Code, w.Header().Get("Retry-After"))
	}
	if len(p.calls) != 0 {
		t.Errorf("%d Emit calls, want none", len(p.calls))
	}
	p.full = nil
	w = httptest.NewRecorder()
	ep.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(`{"a": 1}`)))
	if w.Code != 200 || len(p.calls) != 1 {
		t.Errorf("with room: answer %d, %d Emit calls; want 200, 1", w.Code, len(p.calls))
	}
}
