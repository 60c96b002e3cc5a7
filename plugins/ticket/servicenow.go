package ticket

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// serviceNow talks to the Table API of the incident table:
// POST /api/now/table/incident opens, PATCH /api/now/table/incident/{sys_id}
// comments (work_notes or comments) and resolves (state 6 with close_code
// and close_notes). The correlation marker goes into correlation_id.
type serviceNow struct {
	api          *api
	commentField string
}

const snIncidents = "/api/now/table/incident"

// Incident states that are no longer open: Resolved, Closed, Canceled.
const snClosedStates = "6,7,8"

type snIncident struct {
	SysID  string `json:"sys_id"`
	Number string `json:"number"`
	State  string `json:"state"`
	Active string `json:"active"`
}

func (s *serviceNow) scope() string { return s.api.base + "|incident" }

func (s *serviceNow) ref(in snIncident) ref {
	return ref{ID: in.SysID, Number: in.Number, Link: s.api.base + "/nav_to.do?uri=incident.do?sys_id=" + url.QueryEscape(in.SysID)}
}

func (s *serviceNow) find(ctx context.Context, marker string) (*ref, error) {
	q := url.Values{}
	q.Set("sysparm_query", "correlation_id="+marker+"^stateNOT IN"+snClosedStates+"^ORDERBYDESCsys_created_on")
	q.Set("sysparm_limit", "1")
	q.Set("sysparm_fields", "sys_id,number,state")
	var out struct {
		Result []snIncident `json:"result"`
	}
	if err := s.api.call(ctx, http.MethodGet, snIncidents, q, nil, &out); err != nil {
		return nil, err
	}
	if len(out.Result) == 0 || out.Result[0].SysID == "" {
		return nil, nil
	}
	r := s.ref(out.Result[0])
	return &r, nil
}

func (s *serviceNow) isOpen(ctx context.Context, r ref) (bool, error) {
	q := url.Values{}
	q.Set("sysparm_fields", "sys_id,number,state")
	var out struct {
		Result snIncident `json:"result"`
	}
	err := s.api.call(ctx, http.MethodGet, snIncidents+"/"+url.PathEscape(r.ID), q, nil, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch out.Result.State {
	case "6", "7", "8":
		return false, nil
	}
	return true, nil
}

func (s *serviceNow) open(ctx context.Context, t newTicket) (ref, error) {
	body := map[string]any{}
	for k, v := range t.Fields {
		body[k] = v
	}
	body["short_description"] = truncate(t.Summary, 160)
	if t.Description != "" {
		body["description"] = t.Description
	}
	body["correlation_id"] = t.Marker
	body["correlation_display"] = "rulebook"
	var out struct {
		Result snIncident `json:"result"`
	}
	if err := s.api.call(ctx, http.MethodPost, snIncidents, nil, body, &out); err != nil {
		return ref{}, err
	}
	if out.Result.SysID == "" {
		return ref{}, &apiError{Msg: "servicenow: the created incident has no sys_id in the answer"}
	}
	return s.ref(out.Result), nil
}

func (s *serviceNow) comment(ctx context.Context, r ref, text string) error {
	return s.api.call(ctx, http.MethodPatch, snIncidents+"/"+url.PathEscape(r.ID), nil,
		map[string]any{s.commentField: text}, nil)
}

func (s *serviceNow) resolve(ctx context.Context, r ref, res resolution) error {
	note := res.Note
	if note == "" {
		note = "Resolved by Rulebook: the condition cleared."
	}
	return s.api.call(ctx, http.MethodPatch, snIncidents+"/"+url.PathEscape(r.ID), nil, map[string]any{
		"state":       "6",
		"close_code":  res.CloseCode,
		"close_notes": note,
	}, nil)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
