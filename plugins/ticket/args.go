package ticket

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// args are one invocation's arguments, checked after rendering (the engine
// checked the schema at load time, but template values only now have
// their real type).
type args struct {
	System   string
	URL      string
	Username string
	Password string
	Token    string

	Key    string
	Ticket string

	Summary     string
	Description string
	Comment     string
	Labels      []string
	Assignees   []string
	Fields      map[string]any

	// ServiceNow
	CommentField string
	CloseCode    string
	// Jira
	Project    string
	IssueType  string
	APIVersion int
	Transition string
	Resolution string
	// GitHub
	Repo        string
	StateReason string

	Note string
}

// Shared schema parts. Each action lists its own keys and rejects others.
const commonProps = `
	"system": {"enum": ["servicenow", "jira", "github"], "description": "the ticket system"},
	"url": {"type": "string", "description": "base URL: https://INSTANCE.service-now.com, https://SITE.atlassian.net, or the GitHub API (default https://api.github.com)"},
	"username": {"type": "string", "description": "basic auth user (ServiceNow user, Jira account e-mail)"},
	"password": {"type": "string", "description": "basic auth password or Jira API token; use ${env:...} or ${file:...}"},
	"token": {"type": "string", "description": "bearer token (GitHub token, ServiceNow OAuth token, Jira personal access token)"},
	"project": {"type": "string", "description": "Jira project key"},
	"api_version": {"enum": [2, 3, "2", "3"], "description": "Jira REST API version (default 3, Atlassian Document Format bodies)"},
	"repo": {"type": "string", "pattern": "^[^/]+/[^/]+$", "description": "GitHub OWNER/REPO"}`

const systemRules = `
	"allOf": [
		{"if": {"properties": {"system": {"const": "jira"}}, "required": ["system"]}, "then": {"required": ["project"]}},
		{"if": {"properties": {"system": {"const": "github"}}, "required": ["system"]}, "then": {"required": ["repo", "token"]}},
		{"if": {"properties": {"system": {"const": "servicenow"}}, "required": ["system"]}, "then": {"required": ["url"]}},
		{"if": {"properties": {"system": {"const": "jira"}}, "required": ["system"]}, "then": {"required": ["url"]}}
	]`

const openSchema = `{
	"type": "object",
	"properties": {` + commonProps + `,
		"correlation_key": {"type": "string", "minLength": 1, "description": "one ticket per key while it is open, e.g. the alert fingerprint"},
		"summary": {"type": "string", "minLength": 1, "description": "title / short description"},
		"description": {"type": "string"},
		"comment": {"type": "string", "description": "comment to add when the key's ticket is already open (default: the summary and description)"},
		"labels": {"type": "array", "items": {"type": "string"}, "description": "extra Jira or GitHub labels"},
		"assignees": {"type": "array", "items": {"type": "string"}, "description": "GitHub assignees"},
		"issue_type": {"type": "string", "description": "Jira issue type name (default Task)"},
		"comment_field": {"enum": ["work_notes", "comments"], "description": "ServiceNow journal field for comments (default work_notes)"},
		"fields": {"type": "object", "description": "extra fields for the ServiceNow incident or Jira issue (urgency, assignment_group, priority ...)"}
	},
	"required": ["system", "correlation_key", "summary"],
	"additionalProperties": false,` + systemRules + `
}`

const commentSchema = `{
	"type": "object",
	"properties": {` + commonProps + `,
		"correlation_key": {"type": "string", "minLength": 1},
		"ticket": {"type": "string", "minLength": 1, "description": "comment on this ticket instead: ServiceNow sys_id, Jira issue key, GitHub issue number"},
		"comment": {"type": "string", "minLength": 1},
		"comment_field": {"enum": ["work_notes", "comments"]}
	},
	"required": ["system", "comment"],
	"anyOf": [{"required": ["correlation_key"]}, {"required": ["ticket"]}],
	"additionalProperties": false,` + systemRules + `
}`

const resolveSchema = `{
	"type": "object",
	"properties": {` + commonProps + `,
		"correlation_key": {"type": "string", "minLength": 1},
		"ticket": {"type": "string", "minLength": 1, "description": "resolve this ticket instead: ServiceNow sys_id, Jira issue key, GitHub issue number"},
		"note": {"type": "string", "description": "resolution note (ServiceNow close_notes, a Jira or GitHub comment)"},
		"close_code": {"type": "string", "description": "ServiceNow close_code (default \"Solution provided\")"},
		"transition": {"type": "string", "description": "Jira transition name or id (default Done)"},
		"resolution": {"type": "string", "description": "Jira resolution name set by the transition, if its screen has the field"},
		"state_reason": {"enum": ["completed", "not_planned"], "description": "GitHub state_reason (default completed)"},
		"comment_field": {"enum": ["work_notes", "comments"]}
	},
	"required": ["system"],
	"anyOf": [{"required": ["correlation_key"]}, {"required": ["ticket"]}],
	"additionalProperties": false,` + systemRules + `
}`

// parseArgs reads rendered arguments. Unknown keys were rejected at load
// time by the schema; here they are rejected again in case the schema was
// bypassed, and values are checked for their rendered type.
func parseArgs(action string, m map[string]any) (*args, error) {
	allowed := map[string]bool{
		"system": true, "url": true, "username": true, "password": true, "token": true,
		"project": true, "api_version": true, "repo": true, "comment_field": true,
		"correlation_key": true,
	}
	switch action {
	case ActionOpen:
		for _, k := range []string{"summary", "description", "comment", "labels", "assignees", "issue_type", "fields"} {
			allowed[k] = true
		}
	case ActionComment:
		allowed["ticket"], allowed["comment"] = true, true
	case ActionResolve:
		for _, k := range []string{"ticket", "note", "close_code", "transition", "resolution", "state_reason"} {
			allowed[k] = true
		}
	default:
		return nil, fmt.Errorf("unknown action %q", action)
	}
	var unknown []string
	for k := range m {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown argument %q", unknown[0])
	}

	r := reader{m: m}
	a := &args{
		System:       r.str("system"),
		URL:          r.str("url"),
		Username:     r.str("username"),
		Password:     r.str("password"),
		Token:        r.str("token"),
		Key:          r.str("correlation_key"),
		Ticket:       r.str("ticket"),
		Summary:      r.str("summary"),
		Description:  r.str("description"),
		Comment:      r.str("comment"),
		Labels:       r.strs("labels"),
		Assignees:    r.strs("assignees"),
		Fields:       r.obj("fields"),
		CommentField: r.str("comment_field"),
		CloseCode:    r.str("close_code"),
		Project:      r.str("project"),
		IssueType:    r.str("issue_type"),
		Transition:   r.str("transition"),
		Resolution:   r.str("resolution"),
		Repo:         r.str("repo"),
		StateReason:  r.str("state_reason"),
		Note:         r.str("note"),
	}
	a.APIVersion = r.version("api_version")
	if r.err != nil {
		return nil, r.err
	}
	switch {
	case a.System == "":
		return nil, fmt.Errorf(`argument "system" is required`)
	case action == ActionOpen && a.Key == "":
		return nil, fmt.Errorf(`argument "correlation_key" is required`)
	case action == ActionOpen && strings.TrimSpace(a.Summary) == "":
		return nil, fmt.Errorf(`argument "summary" is required`)
	case action != ActionOpen && a.Key == "" && a.Ticket == "":
		return nil, fmt.Errorf(`argument "correlation_key" or "ticket" is required`)
	case action == ActionComment && strings.TrimSpace(a.Comment) == "":
		return nil, fmt.Errorf(`argument "comment" is required`)
	}
	if a.CommentField == "" {
		a.CommentField = "work_notes"
	}
	if a.CommentField != "work_notes" && a.CommentField != "comments" {
		return nil, fmt.Errorf(`argument "comment_field": %q is not work_notes or comments`, a.CommentField)
	}
	if a.StateReason == "" {
		a.StateReason = "completed"
	}
	if a.StateReason != "completed" && a.StateReason != "not_planned" {
		return nil, fmt.Errorf(`argument "state_reason": %q is not completed or not_planned`, a.StateReason)
	}
	if a.IssueType == "" {
		a.IssueType = "Task"
	}
	if a.Transition == "" {
		a.Transition = "Done"
	}
	if a.CloseCode == "" {
		a.CloseCode = "Solution provided"
	}
	return a, nil
}

type reader struct {
	m   map[string]any
	err error
}

func (r *reader) fail(key, want string, v any) {
	if r.err == nil {
		r.err = fmt.Errorf("argument %q: got %T, want %s", key, v, want)
	}
}

func (r *reader) str(key string) string {
	v, ok := r.m[key]
	if !ok || v == nil {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case float64, int, int64:
		// A rendered template may turn "{{ event.id }}" into a number.
		return fmt.Sprint(x)
	}
	r.fail(key, "a string", v)
	return ""
}

func (r *reader) strs(key string) []string {
	v, ok := r.m[key]
	if !ok || v == nil {
		return nil
	}
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				r.fail(key, "a list of strings", v)
				return nil
			}
			out = append(out, s)
		}
		return out
	case string:
		// "{{ event.labels | join(',') }}" renders to one string.
		var out []string
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	r.fail(key, "a list of strings", v)
	return nil
}

func (r *reader) obj(key string) map[string]any {
	v, ok := r.m[key]
	if !ok || v == nil {
		return nil
	}
	if x, ok := v.(map[string]any); ok {
		return x
	}
	r.fail(key, "an object", v)
	return nil
}

func (r *reader) version(key string) int {
	v, ok := r.m[key]
	if !ok || v == nil {
		return 3
	}
	var n int
	switch x := v.(type) {
	case float64:
		n = int(x)
	case int:
		n = x
	case int64:
		n = int(x)
	case string:
		n, _ = strconv.Atoi(strings.TrimSpace(x))
	}
	if n != 2 && n != 3 {
		if r.err == nil {
			r.err = fmt.Errorf("argument %q: %v is not 2 or 3", key, v)
		}
		return 0
	}
	return n
}
