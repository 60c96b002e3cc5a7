// Package ticket is the first-party ticket plugin: actions ticket.open,
// ticket.comment and ticket.resolve for ServiceNow (Table API, incident),
// Jira (REST API v2, and v3 with Atlassian Document Format bodies) and
// GitHub issues, chosen per invocation with the `system` argument.
//
// Correlation: ticket.open takes a correlation_key (an alert's fingerprint,
// say). A key whose ticket is still open gets a comment instead of a second
// ticket, and ticket.resolve closes the ticket of a key. The key -> ticket
// map is kept in StateDir/tickets.json, and the key is also written into
// the ticket itself (ServiceNow correlation_id, a Jira label, a GitHub
// label plus a marker in the body), so a lost state file is rebuilt from
// the systems' search APIs.
//
// The command rulebook-plugin-ticket serves it (cmd/rulebook-plugin-ticket).
package ticket

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Options configure a Plugin.
type Options struct {
	// StateDir holds tickets.json; empty keeps the map in memory only.
	StateDir string
	// HTTPClient defaults to a client without timeout: each invocation's
	// context bounds its requests.
	HTTPClient *http.Client
	// Now defaults to time.Now (read for HTTP-date Retry-After values).
	Now func() time.Time
}

// Plugin implements sdk.Plugin.
type Plugin struct {
	http  *http.Client
	now   func() time.Time
	store *store
	locks keyLocks
}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the ticket plugin.
func New(o Options) *Plugin {
	p := &Plugin{http: o.HTTPClient, now: o.Now, store: newStore(o.StateDir)}
	if p.http == nil {
		p.http = &http.Client{}
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Action types.
const (
	ActionOpen    = "ticket.open"
	ActionComment = "ticket.comment"
	ActionResolve = "ticket.resolve"
)

// Describe lists the three actions and their argument schemas.
func (p *Plugin) Describe() sdk.Info {
	return sdk.Info{
		Name:        "ticket",
		Version:     Version,
		Description: "open, comment on and resolve tickets in ServiceNow, Jira and GitHub issues, one ticket per correlation key",
		Actions: []sdk.Action{
			{Name: ActionOpen, Description: "open a ticket for a correlation key, or comment on the one already open", Schema: openSchema},
			{Name: ActionComment, Description: "comment on the open ticket of a correlation key (or a given ticket)", Schema: commentSchema},
			{Name: ActionResolve, Description: "resolve the open ticket of a correlation key (or a given ticket)", Schema: resolveSchema},
		},
	}
}

// Invoke runs one action.
func (p *Plugin) Invoke(ctx context.Context, req *sdk.Request) sdk.Response {
	a, err := parseArgs(req.Action, req.Args)
	if err != nil {
		return sdk.Failure("%s: %v", req.Action, err)
	}
	be, err := p.backend(a)
	if err != nil {
		return sdk.Failure("%s: %v", req.Action, err)
	}
	t := &task{p: p, a: a, be: be, req: req}
	switch req.Action {
	case ActionOpen:
		return t.open(ctx)
	case ActionComment:
		return t.comment(ctx)
	case ActionResolve:
		return t.resolve(ctx)
	}
	return sdk.Failure("unknown action %q", req.Action)
}

// ref identifies a ticket in its system.
type ref struct {
	// ID is what the API addresses: a ServiceNow sys_id, a Jira issue key,
	// a GitHub issue number.
	ID string `json:"id"`
	// Number is what people read: INC0010001, OPS-7, #42.
	Number string `json:"number"`
	Link   string `json:"link,omitempty"`
}

type newTicket struct {
	Summary     string
	Description string
	Key         string // correlation key as given
	Marker      string // correlation marker written into the ticket
	Labels      []string
	Assignees   []string
	Fields      map[string]any
}

type resolution struct {
	Note        string
	CloseCode   string
	Transition  string
	Resolution  string
	StateReason string
}

// backend is one ticket system.
type backend interface {
	// scope names the system instance and container (project, repo) so
	// that the same key in two projects is two tickets.
	scope() string
	// find returns the open ticket carrying marker, or nil.
	find(ctx context.Context, marker string) (*ref, error)
	// isOpen reports whether the ticket is still open (false if deleted).
	isOpen(ctx context.Context, r ref) (bool, error)
	open(ctx context.Context, t newTicket) (ref, error)
	comment(ctx context.Context, r ref, text string) error
	resolve(ctx context.Context, r ref, res resolution) error
}

func (p *Plugin) backend(a *args) (backend, error) {
	base := strings.TrimRight(a.URL, "/")
	if a.System == "github" && base == "" {
		base = "https://api.github.com"
	}
	if base == "" {
		return nil, errors.New(`argument "url" is required`)
	}
	if !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
		return nil, fmt.Errorf(`argument "url": %q is not an http(s) URL`, redactURL(base))
	}
	api := &api{http: p.http, base: base, header: http.Header{}, now: p.now}
	api.header.Set("User-Agent", "rulebook-plugin-ticket/"+Version)
	switch {
	case a.Token != "":
		api.header.Set("Authorization", "Bearer "+a.Token)
	case a.Username != "" || a.Password != "":
		api.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	default:
		return nil, errors.New(`credentials missing: give "token", or "username" and "password"`)
	}
	switch a.System {
	case "servicenow":
		api.system = "servicenow"
		api.header.Set("Accept", "application/json")
		return &serviceNow{api: api, commentField: a.CommentField}, nil
	case "jira":
		api.system = "jira"
		api.header.Set("Accept", "application/json")
		if a.Project == "" {
			return nil, errors.New(`argument "project" is required for jira`)
		}
		return &jira{api: api, version: a.APIVersion, project: a.Project, issueType: a.IssueType}, nil
	case "github":
		api.system = "github"
		if a.Token == "" {
			return nil, errors.New(`argument "token" is required for github`)
		}
		api.header.Set("Accept", "application/vnd.github+json")
		api.header.Set("X-GitHub-Api-Version", "2022-11-28")
		owner, repo, ok := strings.Cut(a.Repo, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return nil, fmt.Errorf(`argument "repo": %q is not OWNER/REPO`, a.Repo)
		}
		return &github{api: api, owner: owner, repo: repo}, nil
	}
	return nil, fmt.Errorf(`argument "system": %q is not servicenow, jira or github`, a.System)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9._-]{1,40}$`)

// marker is the correlation marker written into a ticket: "rulebook-KEY"
// when the key is short and plain (so people can read it), otherwise a
// hash of the key, which every system accepts as a label or correlation id
// (GitHub labels are at most 50 characters; Jira labels have no spaces).
func marker(key string) string {
	if plainKey.MatchString(key) {
		return "rulebook-" + key
	}
	sum := sha256.Sum256([]byte(key))
	return "rulebook-" + hex.EncodeToString(sum[:10])
}

// task is one invocation.
type task struct {
	p   *Plugin
	a   *args
	be  backend
	req *sdk.Request
}

func (t *task) storeKey() string {
	return t.a.System + "|" + t.be.scope() + "|" + t.a.Key
}

func (t *task) lock(ctx context.Context) (func(), bool) {
	k := t.storeKey()
	if !t.p.locks.lock(k, ctx.Done()) {
		return nil, false
	}
	return func() { t.p.locks.unlock(k) }, true
}

// current returns the open ticket of the correlation key: from the state
// file when it is still open there, else from the system's search.
func (t *task) current(ctx context.Context) (*ref, error) {
	sk := t.storeKey()
	rec, ok, err := t.p.store.get(sk)
	if err != nil {
		t.req.Log.Warn("ticket state unreadable; searching the system instead", "error", err)
	}
	if ok {
		open, err := t.be.isOpen(ctx, rec.Ref)
		if err != nil {
			return nil, err
		}
		if open {
			return &rec.Ref, nil
		}
		if err := t.p.store.remove(sk); err != nil {
			t.req.Log.Warn("ticket state not saved", "error", err)
		}
	}
	found, err := t.be.find(ctx, marker(t.a.Key))
	if err != nil || found == nil {
		return nil, err
	}
	t.remember(*found)
	return found, nil
}

func (t *task) remember(r ref) {
	if err := t.p.store.put(t.storeKey(), record{System: t.a.System, Ref: r, Opened: t.p.now().UTC()}); err != nil {
		// The marker in the ticket still finds it next time.
		t.req.Log.Warn("ticket state not saved", "error", err)
	}
}

func (t *task) open(ctx context.Context) sdk.Response {
	unlock, ok := t.lock(ctx)
	if !ok {
		return sdk.RetryableFailure("ticket.open: cancelled while waiting for another invocation on key %q", t.a.Key)
	}
	defer unlock()

	cur, err := t.current(ctx)
	if err != nil {
		return failure(err)
	}
	if cur != nil {
		text := t.a.Comment
		if text == "" {
			text = "Still occurring: " + t.a.Summary
			if t.a.Description != "" {
				text += "\n\n" + t.a.Description
			}
		}
		if err := t.be.comment(ctx, *cur, text); err != nil {
			return failure(err)
		}
		return t.done("commented", *cur, fmt.Sprintf("%s %s is already open for key %q: commented", t.a.System, cur.Number, t.a.Key))
	}
	r, err := t.be.open(ctx, newTicket{
		Summary:     t.a.Summary,
		Description: t.a.Description,
		Key:         t.a.Key,
		Marker:      marker(t.a.Key),
		Labels:      t.a.Labels,
		Assignees:   t.a.Assignees,
		Fields:      t.a.Fields,
	})
	if err != nil {
		return failure(err)
	}
	t.remember(r)
	return t.done("opened", r, fmt.Sprintf("opened %s %s for key %q", t.a.System, r.Number, t.a.Key))
}

func (t *task) comment(ctx context.Context) sdk.Response {
	if t.a.Ticket != "" {
		r := ref{ID: t.a.Ticket, Number: t.a.Ticket}
		if err := t.be.comment(ctx, r, t.a.Comment); err != nil {
			return failure(err)
		}
		return t.done("commented", r, fmt.Sprintf("commented on %s %s", t.a.System, r.Number))
	}
	unlock, ok := t.lock(ctx)
	if !ok {
		return sdk.RetryableFailure("ticket.comment: cancelled while waiting for another invocation on key %q", t.a.Key)
	}
	defer unlock()
	cur, err := t.current(ctx)
	if err != nil {
		return failure(err)
	}
	if cur == nil {
		return sdk.Failure("ticket.comment: no open %s ticket for key %q", t.a.System, t.a.Key)
	}
	if err := t.be.comment(ctx, *cur, t.a.Comment); err != nil {
		return failure(err)
	}
	return t.done("commented", *cur, fmt.Sprintf("commented on %s %s", t.a.System, cur.Number))
}

func (t *task) resolve(ctx context.Context) sdk.Response {
	res := resolution{
		Note:        t.a.Note,
		CloseCode:   t.a.CloseCode,
		Transition:  t.a.Transition,
		Resolution:  t.a.Resolution,
		StateReason: t.a.StateReason,
	}
	if t.a.Ticket != "" {
		r := ref{ID: t.a.Ticket, Number: t.a.Ticket}
		if err := t.be.resolve(ctx, r, res); err != nil {
			return failure(err)
		}
		return t.done("resolved", r, fmt.Sprintf("resolved %s %s", t.a.System, r.Number))
	}
	unlock, ok := t.lock(ctx)
	if !ok {
		return sdk.RetryableFailure("ticket.resolve: cancelled while waiting for another invocation on key %q", t.a.Key)
	}
	defer unlock()
	cur, err := t.current(ctx)
	if err != nil {
		return failure(err)
	}
	if cur == nil {
		// Nothing open: the alert resolved before a ticket was opened, or
		// someone closed it already. Resolving is idempotent.
		r := sdk.Success(fmt.Sprintf("no open %s ticket for key %q; nothing to resolve", t.a.System, t.a.Key))
		r.Details = map[string]any{"system": t.a.System, "action": "none", "correlation_key": t.a.Key}
		return r
	}
	if err := t.be.resolve(ctx, *cur, res); err != nil {
		return failure(err)
	}
	if err := t.p.store.remove(t.storeKey()); err != nil {
		t.req.Log.Warn("ticket state not saved", "error", err)
	}
	return t.done("resolved", *cur, fmt.Sprintf("resolved %s %s for key %q", t.a.System, cur.Number, t.a.Key))
}

func (t *task) done(action string, r ref, output string) sdk.Response {
	t.req.Log.Info("ticket "+action, "system", t.a.System, "ticket", r.Number, "correlation_key", t.a.Key)
	resp := sdk.Success(output)
	resp.Details = map[string]any{
		"system": t.a.System,
		"action": action,
		"ticket": r.Number,
		"id":     r.ID,
	}
	if t.a.Key != "" {
		resp.Details["correlation_key"] = t.a.Key
	}
	if r.Link != "" {
		resp.Details["link"] = r.Link
	}
	return resp
}

// failure turns an error into a response: an *apiError keeps its class.
func failure(err error) sdk.Response {
	var ae *apiError
	if errors.As(err, &ae) {
		r := sdk.Response{Status: sdk.Failed, Error: ae.Msg, HTTPStatus: ae.Status, RetryAfter: ae.RetryAfter}
		if ae.Retryable {
			r.Status = sdk.Retryable
		}
		return r
	}
	return sdk.Failure("%v", err)
}
