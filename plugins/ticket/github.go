package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// github talks to the GitHub issues REST API: POST /repos/{o}/{r}/issues
// opens, POST .../issues/{n}/comments comments, PATCH .../issues/{n} with
// state=closed resolves. The correlation marker is a label, and the key is
// also written into the body as an HTML comment.
type github struct {
	api   *api
	owner string
	repo  string
}

type ghIssue struct {
	Number      int             `json:"number"`
	HTMLURL     string          `json:"html_url"`
	State       string          `json:"state"`
	PullRequest json.RawMessage `json:"pull_request"`
}

func (g *github) scope() string { return g.api.base + "|" + g.owner + "/" + g.repo }

func (g *github) path(parts ...string) string {
	p := "/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + "/issues"
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

func (g *github) ref(in ghIssue) ref {
	n := strconv.Itoa(in.Number)
	return ref{ID: n, Number: "#" + n, Link: in.HTMLURL}
}

func (g *github) find(ctx context.Context, marker string) (*ref, error) {
	q := url.Values{}
	q.Set("state", "open")
	q.Set("labels", marker)
	q.Set("per_page", "20")
	var out []ghIssue
	if err := g.api.call(ctx, http.MethodGet, g.path(), q, nil, &out); err != nil {
		return nil, err
	}
	for _, in := range out {
		if len(in.PullRequest) == 0 && in.Number > 0 { // the endpoint lists pull requests too
			r := g.ref(in)
			return &r, nil
		}
	}
	return nil, nil
}

func (g *github) isOpen(ctx context.Context, r ref) (bool, error) {
	var out ghIssue
	err := g.api.call(ctx, http.MethodGet, g.path(r.ID), nil, nil, &out)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusGone) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return out.State == "open", nil
}

func (g *github) open(ctx context.Context, t newTicket) (ref, error) {
	body := t.Description
	if body != "" {
		body += "\n\n"
	}
	body += fmt.Sprintf("<!-- rulebook-correlation-key: %s -->", htmlCommentSafe(t.Key))
	labels := append([]string{t.Marker}, t.Labels...)
	req := map[string]any{"title": t.Summary, "body": body, "labels": labels}
	if len(t.Assignees) > 0 {
		req["assignees"] = t.Assignees
	}
	var out ghIssue
	if err := g.api.call(ctx, http.MethodPost, g.path(), nil, req, &out); err != nil {
		return ref{}, err
	}
	if out.Number == 0 {
		return ref{}, &apiError{Msg: "github: the created issue has no number in the answer"}
	}
	return g.ref(out), nil
}

func (g *github) comment(ctx context.Context, r ref, text string) error {
	return g.api.call(ctx, http.MethodPost, g.path(r.ID, "comments"), nil, map[string]any{"body": text}, nil)
}

func (g *github) resolve(ctx context.Context, r ref, res resolution) error {
	if res.Note != "" {
		if err := g.comment(ctx, r, res.Note); err != nil {
			return err
		}
	}
	return g.api.call(ctx, http.MethodPatch, g.path(r.ID), nil,
		map[string]any{"state": "closed", "state_reason": res.StateReason}, nil)
}

// htmlCommentSafe keeps a key from ending the HTML comment it sits in.
func htmlCommentSafe(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '>' || r == '<' || r == '\n' || r == '\r' {
			r = '_'
		}
		out = append(out, r)
	}
	return string(out)
}
