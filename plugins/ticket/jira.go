package ticket

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// jira talks to the Jira REST API, version 2 (plain-text bodies; Jira Data
// Center and Cloud) or 3 (Atlassian Document Format bodies; Cloud):
// POST /rest/api/{v}/issue opens, POST .../issue/{key}/comment comments,
// and resolving posts the configured transition to
// .../issue/{key}/transitions. The correlation marker is a label.
type jira struct {
	api       *api
	version   int
	project   string
	issueType string
}

type jiraIssue struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Fields struct {
		Status struct {
			StatusCategory struct {
				Key string `json:"key"`
			} `json:"statusCategory"`
		} `json:"status"`
	} `json:"fields"`
}

func (j *jira) scope() string { return j.api.base + "|" + j.project }

func (j *jira) prefix() string { return "/rest/api/" + strconv.Itoa(j.version) }

func (j *jira) ref(key string) ref {
	return ref{ID: key, Number: key, Link: j.api.base + "/browse/" + url.PathEscape(key)}
}

// text returns a body in the API version's format: a string for v2, an
// Atlassian Document Format document for v3.
func (j *jira) text(s string) any {
	if j.version == 3 {
		return adf(s)
	}
	return s
}

func (j *jira) find(ctx context.Context, marker string) (*ref, error) {
	jql := fmt.Sprintf(`project = %s AND labels = %s AND statusCategory != Done ORDER BY created DESC`,
		jqlString(j.project), jqlString(marker))
	q := url.Values{}
	q.Set("jql", jql)
	q.Set("maxResults", "1")
	q.Set("fields", "status")
	// Cloud replaced /rest/api/3/search with /rest/api/3/search/jql; v2
	// servers (Data Center) keep /rest/api/2/search.
	path := j.prefix() + "/search"
	if j.version == 3 {
		path += "/jql"
	}
	var out struct {
		Issues []jiraIssue `json:"issues"`
	}
	if err := j.api.call(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	if len(out.Issues) == 0 || out.Issues[0].Key == "" {
		return nil, nil
	}
	r := j.ref(out.Issues[0].Key)
	return &r, nil
}

func (j *jira) isOpen(ctx context.Context, r ref) (bool, error) {
	q := url.Values{}
	q.Set("fields", "status")
	var out jiraIssue
	err := j.api.call(ctx, http.MethodGet, j.prefix()+"/issue/"+url.PathEscape(r.ID), q, nil, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return out.Fields.Status.StatusCategory.Key != "done", nil
}

func (j *jira) open(ctx context.Context, t newTicket) (ref, error) {
	fields := map[string]any{}
	for k, v := range t.Fields {
		fields[k] = v
	}
	fields["project"] = map[string]any{"key": j.project}
	fields["summary"] = truncate(strings.ReplaceAll(t.Summary, "\n", " "), 255)
	fields["issuetype"] = map[string]any{"name": j.issueType}
	if t.Description != "" {
		fields["description"] = j.text(t.Description)
	}
	fields["labels"] = append([]string{t.Marker}, t.Labels...)
	var out jiraIssue
	if err := j.api.call(ctx, http.MethodPost, j.prefix()+"/issue", nil, map[string]any{"fields": fields}, &out); err != nil {
		return ref{}, err
	}
	if out.Key == "" {
		return ref{}, &apiError{Msg: "jira: the created issue has no key in the answer"}
	}
	return j.ref(out.Key), nil
}

func (j *jira) comment(ctx context.Context, r ref, text string) error {
	return j.api.call(ctx, http.MethodPost, j.prefix()+"/issue/"+url.PathEscape(r.ID)+"/comment", nil,
		map[string]any{"body": j.text(text)}, nil)
}

func (j *jira) resolve(ctx context.Context, r ref, res resolution) error {
	path := j.prefix() + "/issue/" + url.PathEscape(r.ID) + "/transitions"
	var list struct {
		Transitions []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"transitions"`
	}
	if err := j.api.call(ctx, http.MethodGet, path, nil, nil, &list); err != nil {
		return err
	}
	id := ""
	var names []string
	for _, t := range list.Transitions {
		names = append(names, strconv.Quote(t.Name))
		if t.ID == res.Transition || strings.EqualFold(t.Name, res.Transition) {
			id = t.ID
			break
		}
	}
	if id == "" {
		return &apiError{Msg: fmt.Sprintf("jira: issue %s has no transition %q (available: %s)", r.ID, res.Transition, strings.Join(names, ", "))}
	}
	if res.Note != "" {
		if err := j.comment(ctx, r, res.Note); err != nil {
			return err
		}
	}
	body := map[string]any{"transition": map[string]any{"id": id}}
	if res.Resolution != "" {
		body["fields"] = map[string]any{"resolution": map[string]any{"name": res.Resolution}}
	}
	return j.api.call(ctx, http.MethodPost, path, nil, body, nil)
}

// jqlString quotes s as a JQL string literal.
func jqlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// adf converts plain text to an Atlassian Document Format document: blank
// lines separate paragraphs, single newlines become hard breaks. ADF text
// nodes must not be empty, so empty lines and an empty text produce none.
func adf(s string) map[string]any {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	content := []any{}
	for _, para := range strings.Split(s, "\n\n") {
		var nodes []any
		for _, line := range strings.Split(para, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if len(nodes) > 0 {
				nodes = append(nodes, map[string]any{"type": "hardBreak"})
			}
			nodes = append(nodes, map[string]any{"type": "text", "text": line})
		}
		if len(nodes) > 0 {
			content = append(content, map[string]any{"type": "paragraph", "content": nodes})
		}
	}
	return map[string]any{"type": "doc", "version": 1, "content": content}
}
