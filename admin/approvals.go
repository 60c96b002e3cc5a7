package admin

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rulebook-dev/rulebook/engine"
)

// Approver is implemented by a Backend whose dispatcher has approve-mode
// rules: GET /api/approvals lists what waits, POST /api/approvals/{id}
// decides. Without it those endpoints answer 404.
type Approver interface {
	// Pending returns the invocations waiting for approval, oldest first.
	Pending(ctx context.Context) ([]*engine.InvocationState, error)
	// Decide approves or rejects one; an error wrapping ErrNotPending
	// means no invocation with that id waits.
	Decide(ctx context.Context, id, decision, by, reason string) (*engine.InvocationState, error)
}

// ErrNotPending is what an Approver's Decide wraps when the id does not
// wait for approval (unknown, or already decided): answered 404.
var ErrNotPending = errors.New("not waiting for approval")

// maxDecisionBytes bounds the body of POST /api/approvals/{id}.
const maxDecisionBytes = 16 << 10

// DecisionRequest is the body of POST /api/approvals/{id}.
type DecisionRequest struct {
	// Decision is "approved" or "rejected" ("approve"/"reject" accepted).
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	// User is who the caller says decides; it is recorded beside the
	// identity the listener authenticated (the token), never instead.
	User string `json:"user,omitempty"`
}

func (s *Server) approvals(w http.ResponseWriter, r *http.Request) {
	ap, ok := s.cfg.Backend.(Approver)
	if !ok {
		writeError(w, http.StatusNotFound, "approvals are not available")
		return
	}
	list, err := ap.Pending(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if list == nil {
		list = []*engine.InvocationState{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": list})
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	ap, ok := s.cfg.Backend.(Approver)
	if !ok {
		writeError(w, http.StatusNotFound, "approvals are not available")
		return
	}
	body, ok := readBody(w, r, maxDecisionBytes)
	if !ok {
		return
	}
	var req DecisionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "want {\"decision\": \"approved\"|\"rejected\", \"reason\": ...}: "+err.Error())
		return
	}
	switch req.Decision {
	case "approve", engine.DecisionApproved:
		req.Decision = engine.DecisionApproved
	case "reject", engine.DecisionRejected:
		req.Decision = engine.DecisionRejected
	default:
		writeError(w, http.StatusBadRequest, "decision: want \"approved\" or \"rejected\", got "+strconv.Quote(req.Decision))
		return
	}
	by := s.identity()
	if u := strings.TrimSpace(req.User); u != "" {
		by = u + " (" + by + ")"
	}
	st, err := ap.Decide(r.Context(), r.PathValue("id"), req.Decision, by, req.Reason)
	if errors.Is(err, ErrNotPending) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info().Str("invocation_id", st.Invocation.ID).Str("decision", req.Decision).Str("by", by).Msg("approval decided")
	writeJSON(w, http.StatusOK, st)
}

// identity names who the listener authenticated: the token, by a prefix
// of its hash (never the token itself), or the loopback client.
func (s *Server) identity() string {
	if s.token == nil {
		return "admin (loopback, no token)"
	}
	return "admin token sha256:" + hex.EncodeToString(s.token)[:12]
}
