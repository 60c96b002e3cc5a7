package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

type approverBackend struct {
	*fakeBackend
	pending map[string]bool
	by      []string
}

func (b *approverBackend) Pending(context.Context) ([]*engine.InvocationState, error) {
	var out []*engine.InvocationState
	for id := range b.pending {
		out = append(out, &engine.InvocationState{Invocation: &engine.Invocation{ID: id}, Status: engine.StatusPendingApproval})
	}
	return out, nil
}

func (b *approverBackend) Decide(_ context.Context, id, decision, by, reason string) (*engine.InvocationState, error) {
	if !b.pending[id] {
		return nil, fmt.Errorf("%w: %q", ErrNotPending, id)
	}
	delete(b.pending, id)
	b.by = append(b.by, decision+" "+by+" "+reason)
	return &engine.InvocationState{Invocation: &engine.Invocation{ID: id}, Approval: &engine.Approval{Decision: decision, By: by, Reason: reason}}, nil
}

func TestApprovalsAPI(t *testing.T) {
	b := &approverBackend{fakeBackend: newFakeBackend(), pending: map[string]bool{"f1-0": true, "f2-0": true}}
	s, err := New(Config{Address: "127.0.0.1:0", Token: "s3cret", Backend: b, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	do := func(method, target, body string, auth bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://127.0.0.1"+target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer s3cret")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	sum := sha256.Sum256([]byte("s3cret"))
	id := "admin token sha256:" + hex.EncodeToString(sum[:])[:12]
	for _, tc := range []struct {
		name, method, target, body string
		auth                       bool
		want                       int
		contains                   string
	}{
		{"list needs the token", "GET", "/api/approvals", "", false, 401, "unauthorized"},
		{"list", "GET", "/api/approvals", "", true, 200, `"f1-0"`},
		{"decide needs the token", "POST", "/api/approvals/f1-0", `{"decision":"approved"}`, false, 401, ""},
		{"bad decision", "POST", "/api/approvals/f1-0", `{"decision":"maybe"}`, true, 400, `decision: want \"approved\" or \"rejected\", got \"maybe\"`},
		{"unknown field", "POST", "/api/approvals/f1-0", `{"decison":"approved"}`, true, 400, "unknown field"},
		{"approve", "POST", "/api/approvals/f1-0", `{"decision":"approve","reason":"ok","user":"alice"}`, true, 200, `"by":"alice (` + id + `)"`},
		{"again", "POST", "/api/approvals/f1-0", `{"decision":"rejected"}`, true, 404, "not waiting for approval"},
		{"unknown id", "POST", "/api/approvals/nope", `{"decision":"rejected"}`, true, 404, "not waiting for approval"},
		{"reject", "POST", "/api/approvals/f2-0", `{"decision":"rejected"}`, true, 200, `"by":"` + id + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(tc.method, tc.target, tc.body, tc.auth)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.target, w.Code, w.Body.String(), tc.want, tc.contains)
			}
			if strings.Contains(w.Body.String(), "s3cret") {
				t.Error("the answer contains the token")
			}
		})
	}
	if len(b.by) != 2 {
		t.Errorf("decisions %v", b.by)
	}

	// A body that cannot be read is a 400, only one over the bound a 413.
	for _, tc := range []struct {
		name     string
		body     io.Reader
		want     int
		contains string
	}{
		{"too large", strings.NewReader(`{"reason":"` + strings.Repeat("x", maxDecisionBytes) + `"}`), 413, fmt.Sprintf("body larger than %d bytes", maxDecisionBytes)},
		{"read fails", iotest.ErrReader(errors.New("connection reset")), 400, "reading body failed"},
	} {
		req := httptest.NewRequest("POST", "http://127.0.0.1/api/approvals/f2-0", tc.body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer s3cret")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, w.Code, w.Body.String(), tc.want, tc.contains)
		}
	}

	// A backend without approvals: 404.
	s2, err := New(Config{Address: "127.0.0.1:0", Backend: newFakeBackend(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://127.0.0.1/api/approvals", nil)
	w := httptest.NewRecorder()
	s2.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusNotFound {
		t.Errorf("no approver: %d", w.Code)
	}
}
