package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rulebook-dev/rulebook/engine"
)

// Explainer is implemented by a Backend that can explain an event against
// the live engine state (POST /api/explain); without it the endpoint
// answers 501.
type Explainer interface {
	// Explain tells what each rule of ruleset (every ruleset when empty)
	// would do with event now, changing nothing (engine.Engine.Explain).
	// ErrExplainUnavailable says this process cannot answer for the live
	// state (the reason follows it); another error is a bad request.
	Explain(ruleset string, event map[string]any) ([]engine.Explanation, error)
}

// ErrExplainUnavailable is wrapped by an Explainer that cannot explain
// against the live state in this set-up: /api/explain answers 501.
var ErrExplainUnavailable = errors.New("explain is not available")

// ExplainRequest is the body of POST /api/explain. Ruleset is optional:
// without it every ruleset is explained.
type ExplainRequest struct {
	Ruleset string         `json:"ruleset,omitempty"`
	Event   map[string]any `json:"event"`
}

// ExplainResponse is its answer.
type ExplainResponse struct {
	Explanations []engine.Explanation `json:"explanations"`
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	ex, ok := s.cfg.Backend.(Explainer)
	if !ok {
		writeError(w, http.StatusNotImplemented, "explain is not available on this listener")
		return
	}
	body, ok := readBody(w, r, MaxInjectBytes)
	if !ok {
		return
	}
	var req ExplainRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "body: more than one JSON value")
		return
	}
	if req.Event == nil {
		writeError(w, http.StatusBadRequest, "event: required (a JSON object)")
		return
	}
	ev, err := normalizeNumbers(req.Event)
	if err != nil {
		writeError(w, http.StatusBadRequest, "event: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Ruleset) != "" && !s.knownRuleset(req.Ruleset) {
		writeError(w, http.StatusNotFound, "ruleset: no ruleset named "+strconv.Quote(req.Ruleset))
		return
	}
	xs, err := ex.Explain(req.Ruleset, ev.(map[string]any))
	if err != nil {
		if errors.Is(err, ErrExplainUnavailable) {
			writeError(w, http.StatusNotImplemented, err.Error())
			return
		}
		writeError(w, http.StatusBadRequest, "explain: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ExplainResponse{Explanations: xs})
}

// Explain explains event against the engine's live state.
func (b *EngineBackend) Explain(ruleset string, event map[string]any) ([]engine.Explanation, error) {
	return b.Engine.Explain(ruleset, event)
}

var _ Explainer = (*EngineBackend)(nil)
