// Package awx implements run_job_template and run_workflow_template: they
// launch a job template or a workflow job template on AWX / Ansible
// Automation Platform's controller through its REST API, as
// ansible-rulebook does. The template is looked up by name and
// organization, launched with the matched events in
// extra_vars.ansible_eda, and the job is polled until it has finished; its
// artifacts (set_stats) can be fed back as facts or events, and the job's id
// and URL are recorded in the attempt's details.
//
// A failed job is a Retryable result, so `retries` relaunches it as EDA
// does; a job in error or canceled is final. Errors the controller may
// recover from (5xx, 429, connection errors) while looking up or launching
// are Retryable; while polling a launched job they are tried again at the
// next poll, never by launching a second job. A launched job's id is kept
// in the data directory until the attempt ends, so after a crash or a
// shutdown the next attempt follows the same job instead of launching
// another.
package awx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Action types.
const (
	JobTemplateType      = "run_job_template"
	WorkflowTemplateType = "run_workflow_template"
)

// DefaultPollInterval is how often a running job is polled, as EDA's
// EDA_JOB_TEMPLATE_REFRESH_DELAY default.
const DefaultPollInterval = 10 * time.Second

// requestTimeout bounds one HTTP request to the controller.
const requestTimeout = time.Minute

// maxBody bounds a controller response that is read.
const maxBody = 16 << 20

// Controller is where templates are launched: ansible-rulebook's
// --controller-url, --controller-token and --controller-ssl-verify.
type Controller struct {
	// URL is the controller's base URL: https://awx.example.com, or an
	// Automation Platform gateway's controller path such as
	// https://aap.example.com/api/controller/.
	URL string
	// Token is an OAuth2 token sent as a Bearer token. It is a secret:
	// never logged, never in an error or the audit trail.
	Token string
	// Username and Password, used when there is no Token, authenticate
	// with HTTP basic authentication (EDA's --controller-username and
	// --controller-password). The password is a secret.
	Username, Password string
	// SSLVerify is "yes"/"true" (default), "no"/"false", or the path of a
	// CA bundle to verify the controller's certificate with.
	SSLVerify string
	// PollInterval is the wait between two polls of a job (0: default).
	PollInterval time.Duration
	// Clock times the polls (nil: the system clock).
	Clock engine.Clock
	// Client, when set, is the HTTP client (tests).
	Client *http.Client
}

// JobTemplateSpec registers run_job_template.
func JobTemplateSpec(c Controller) engine.ActionSpec {
	return spec(c, kindJob)
}

// WorkflowTemplateSpec registers run_workflow_template.
func WorkflowTemplateSpec(c Controller) engine.ActionSpec {
	return spec(c, kindWorkflow)
}

func spec(c Controller, k kind) engine.ActionSpec {
	return engine.ActionSpec{
		Type:        k.typ,
		Description: k.description,
		Check:       Check,
		Schema:      Schema(k.typ, k.description),
		New: func(env engine.ActionEnv) (engine.Action, error) {
			return New(c, k == kindWorkflow, env)
		},
	}
}

// kind is what differs between job templates and workflow job templates.
type kind struct {
	typ, description string
	templates        string // API collection of the templates
	jobs             string // API collection of the jobs
	jobKey           string // the launch answer's key holding the job id
	ui               string // UI path of a job, before its id
	what             string
}

var (
	kindJob = kind{
		typ: JobTemplateType, description: "launch a job template on AWX / Automation Platform and wait for the job; the matched events are extra_vars.ansible_eda",
		templates: "job_templates", jobs: "jobs", jobKey: "job", ui: "#/jobs/playbook/", what: "job template",
	}
	kindWorkflow = kind{
		typ: WorkflowTemplateType, description: "launch a workflow job template on AWX / Automation Platform and wait for the workflow job; the matched events are extra_vars.ansible_eda",
		templates: "workflow_job_templates", jobs: "workflow_jobs", jobKey: "workflow_job", ui: "#/jobs/workflow/", what: "workflow template",
	}
)

// Template runs one kind of template. It is safe for concurrent use.
type Template struct {
	k     kind
	base  *url.URL // the controller's URL, with a trailing slash
	api   *url.URL // base + "api/v2/" (or "v2/" behind a gateway path)
	token string
	// user and password authenticate when token is empty.
	user, password string
	client         *http.Client
	poll           time.Duration
	clock          engine.Clock
	state          string // directory of the launched jobs' ids ("" keeps none)
	log            zerolog.Logger
}

var _ engine.Action = (*Template)(nil)

// New returns the action. It fails when the controller is not configured.
func New(c Controller, workflow bool, env engine.ActionEnv) (*Template, error) {
	k := kindJob
	if workflow {
		k = kindWorkflow
	}
	if strings.TrimSpace(c.URL) == "" {
		return nil, fmt.Errorf("%s needs a controller: give --controller-url (or EDA_CONTROLLER_URL) and --controller-token (or EDA_CONTROLLER_TOKEN)", k.typ)
	}
	base, err := url.Parse(strings.TrimSpace(c.URL))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("controller url %q: want http(s)://HOST[/PATH]", c.URL)
	}
	base.RawQuery, base.Fragment = "", ""
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	// Behind an Automation Platform gateway the controller's API is the
	// URL's path + v2/ (https://aap/api/controller/v2/), as EDA does.
	slug := "api/v2/"
	if base.Path != "/" {
		slug = "v2/"
	}
	if c.Token == "" && (c.Username == "" || c.Password == "") {
		return nil, fmt.Errorf("%s needs the controller's token: give --controller-token (or EDA_CONTROLLER_TOKEN), or --controller-username and --controller-password", k.typ)
	}
	client := c.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig, err = tlsConfig(c.SSLVerify)
		if err != nil {
			return nil, err
		}
		client = &http.Client{Transport: tr}
	}
	t := &Template{
		k: k, base: base, api: base.ResolveReference(&url.URL{Path: slug}), token: c.Token, user: c.Username, password: c.Password, client: client,
		poll: c.PollInterval, clock: c.Clock, log: env.Log,
	}
	if t.poll <= 0 {
		t.poll = DefaultPollInterval
	}
	if t.clock == nil {
		t.clock = engine.SystemClock{}
	}
	if env.DataDir != "" {
		t.state = filepath.Join(env.DataDir, "awx")
	}
	return t, nil
}

// tlsConfig reads --controller-ssl-verify as EDA does.
func tlsConfig(verify string) (*tls.Config, error) {
	switch strings.ToLower(strings.TrimSpace(verify)) {
	case "", "yes", "true":
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	case "no", "false":
		return &tls.Config{InsecureSkipVerify: true}, nil //nolint:gosec // the operator asked for it
	}
	pem, err := os.ReadFile(verify)
	if err != nil {
		return nil, fmt.Errorf("controller ssl verify: want yes, no or a CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("controller ssl verify: %q holds no PEM certificate", verify)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// apiError is an answer of the controller that is not a success.
type apiError struct {
	status int
	detail string
}

func (e *apiError) Error() string {
	if e.detail != "" {
		return fmt.Sprintf("controller answered %d: %s", e.status, e.detail)
	}
	return fmt.Sprintf("controller answered %d", e.status)
}

// retryable reports whether trying again may help.
func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status >= 500 || ae.status == http.StatusTooManyRequests || ae.status == http.StatusRequestTimeout
	}
	return true // connection errors, timeouts, bad answers from a proxy
}

// do sends one request and decodes a JSON answer into out.
func (t *Template) do(ctx context.Context, method string, u *url.URL, body any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	} else {
		req.SetBasicAuth(t.user, t.password)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s %s: %w", method, u.Path, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &apiError{status: resp.StatusCode, detail: errorDetail(data)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer is not JSON: %w", method, u.Path, err)
	}
	return nil
}

// errorDetail is the reason in an error answer: AWX's {"detail": ...}, or
// the field errors of a refused launch ({"variables_needed_to_start": [...]}).
func errorDetail(data []byte) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		s := strings.TrimSpace(string(data))
		if len(s) > 300 {
			s = s[:300] + "..."
		}
		return s
	}
	if d, ok := m["detail"].(string); ok {
		return d
	}
	b, _ := json.Marshal(m)
	s := string(b)
	if len(s) > 1000 {
		s = s[:1000] + "..."
	}
	return s
}

// template is what a lookup needs of a template.
type template struct {
	ID                   int                     `json:"id"`
	Name                 string                  `json:"name"`
	AskLimitOnLaunch     bool                    `json:"ask_limit_on_launch"`
	AskVariablesOnLaunch bool                    `json:"ask_variables_on_launch"`
	Related              struct{ Launch string } `json:"related"`
	SummaryFields        struct {
		Organization struct{ Name string } `json:"organization"`
	} `json:"summary_fields"`
}

// page is AWX's list answer.
type page struct {
	Count   int             `json:"count"`
	Next    *string         `json:"next"`
	Results json.RawMessage `json:"results"`
}

// maxPages bounds a lookup that the controller keeps paging.
const maxPages = 100

// find looks the template up by name and organization.
func (t *Template) find(ctx context.Context, name, org string) (*template, error) {
	q := url.Values{"name": {name}, "organization__name": {org}}
	u := t.api.ResolveReference(&url.URL{Path: t.k.templates + "/", RawQuery: q.Encode()})
	for i := 0; i < maxPages; i++ {
		var p page
		if err := t.do(ctx, http.MethodGet, u, nil, &p); err != nil {
			return nil, fmt.Errorf("look up %s %q: %w", t.k.what, name, err)
		}
		var list []template
		if err := json.Unmarshal(p.Results, &list); err != nil {
			return nil, fmt.Errorf("look up %s %q: results: %w", t.k.what, name, err)
		}
		for i := range list {
			if list[i].Name == name && list[i].SummaryFields.Organization.Name == org {
				return &list[i], nil
			}
		}
		if p.Next == nil || *p.Next == "" {
			return nil, nil
		}
		next, err := url.Parse(*p.Next)
		if err != nil {
			return nil, fmt.Errorf("look up %s %q: next page %q: %w", t.k.what, name, *p.Next, err)
		}
		u = t.base.ResolveReference(next)
	}
	return nil, fmt.Errorf("look up %s %q: more than %d pages", t.k.what, name, maxPages)
}

// job is what polling reads of a job.
type job struct {
	ID         int            `json:"id"`
	Status     string         `json:"status"`
	Failed     bool           `json:"failed"`
	Artifacts  map[string]any `json:"artifacts"`
	Elapsed    float64        `json:"elapsed"`
	Started    *string        `json:"started"`
	Finished   *string        `json:"finished"`
	URL        string         `json:"url"`
	ExplainTxt string         `json:"job_explanation"`
}

// finished reports whether a job status is final.
func finished(status string) bool {
	switch status {
	case "successful", "failed", "error", "canceled":
		return true
	}
	return false
}

// launched is the state kept while a job runs: the job's API URL.
type launched struct {
	ID  int    `json:"id"`
	URL string `json:"url"`
}

// Run launches the template and waits for its job.
func (t *Template) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	cfg, err := parse(inv.Args, false)
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	log := t.log.With().Str("invocation", inv.ID).Str("template", cfg.name).Str("organization", cfg.organization).Logger()
	details := map[string]any{"template": cfg.name, "organization": cfg.organization}

	l, resumed := t.resume(inv)
	if resumed {
		log.Info().Int("job_id", l.ID).Msg("following the job launched before the restart")
	} else {
		var res *engine.Result
		l, res = t.launch(ctx, inv, cfg, details, log)
		if res != nil {
			return t.finish(inv, *res, details)
		}
	}
	details["job_id"] = l.ID
	details["url"] = t.jobUI(l.ID)
	details["api_url"] = l.URL
	if resumed {
		details["resumed"] = true
	}
	keep := false
	defer func() {
		if !keep {
			t.forget(inv)
		}
	}()
	ju, err := t.base.Parse(l.URL)
	if err != nil {
		return t.finish(inv, engine.Failure("job url %q: %v", l.URL, err), details)
	}
	j, err := t.wait(ctx, ju, log)
	if err != nil {
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				// Shutdown: the job runs on; the next attempt follows it.
				keep = true
				return t.finish(inv, engine.RetryableFailure("stopped waiting for job %d by shutdown; the next attempt follows it", l.ID), details)
			}
			t.cancel(l, log)
			return t.finish(inv, engine.RetryableFailure("job %d did not finish in time; cancel requested", l.ID), details)
		}
		return t.finish(inv, engine.Failure("job %d: %v", l.ID, err), details)
	}
	details["status"] = j.Status
	details["elapsed"] = j.Elapsed
	if j.Artifacts != nil {
		details["artifacts"] = j.Artifacts
	}
	if j.ExplainTxt != "" {
		details["job_explanation"] = j.ExplainTxt
	}
	var res engine.Result
	switch j.Status {
	case "successful":
		res = engine.Success(fmt.Sprintf("%s %q: job %d successful: %s", t.k.what, cfg.name, l.ID, t.jobUI(l.ID)))
		if len(j.Artifacts) > 0 && (cfg.setFacts || cfg.postEvents) {
			if cfg.setFacts {
				res.Facts = []map[string]any{copyMap(j.Artifacts)}
			}
			if cfg.postEvents {
				res.Events = []map[string]any{copyMap(j.Artifacts)}
			}
			res.FeedbackRuleset = cfg.ruleset
		}
	case "failed":
		// As EDA: a failed job is launched again while retries remain.
		res = engine.RetryableFailure("%s %q: job %d failed: %s", t.k.what, cfg.name, l.ID, t.jobUI(l.ID))
	default:
		res = engine.Failure("%s %q: job %d ended %s: %s", t.k.what, cfg.name, l.ID, j.Status, t.jobUI(l.ID))
	}
	res.Output = res.Error
	if res.Status == engine.Succeeded {
		res.Output = fmt.Sprintf("job %d successful: %s", l.ID, t.jobUI(l.ID))
	}
	return t.finish(inv, res, details)
}

// finish redacts what the result carries from the invocation's secrets.
func (t *Template) finish(inv *engine.Invocation, res engine.Result, details map[string]any) engine.Result {
	res.Error = inv.Redact(res.Error)
	res.Output = inv.Redact(res.Output)
	d, _ := inv.RedactValue(details).(map[string]any)
	res.Details = d
	return res
}

// launch looks the template up and launches it. A non-nil result ends the
// attempt.
func (t *Template) launch(ctx context.Context, inv *engine.Invocation, cfg config, details map[string]any, log zerolog.Logger) (launched, *engine.Result) {
	fail := func(err error) (launched, *engine.Result) {
		r := engine.Failure("%v", err)
		if retryable(err) {
			r = engine.RetryableFailure("%v", err)
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				r.Error = "cancelled by shutdown"
			}
		}
		return launched{}, &r
	}
	limit, err := cfg.limitFor(inv)
	if err != nil {
		r := engine.Failure("%v", err)
		return launched{}, &r
	}
	tpl, err := t.find(ctx, cfg.name, cfg.organization)
	if err != nil {
		return fail(err)
	}
	if tpl == nil {
		r := engine.Failure("%s %q in organization %q does not exist (or the token may not see it)", t.k.what, cfg.name, cfg.organization)
		return launched{}, &r
	}
	details["template_id"] = tpl.ID
	body := make(map[string]any, len(cfg.jobArgs)+2)
	for k, v := range cfg.jobArgs {
		body[k] = v
	}
	body["extra_vars"] = t.extraVars(cfg, inv)
	if limit != "" {
		body["limit"] = limit
	}
	if t.k == kindWorkflow {
		// As EDA: a workflow that does not prompt for them refuses them.
		if !tpl.AskLimitOnLaunch {
			if _, ok := body["limit"]; ok && cfg.limitSet {
				log.Warn().Msg("workflow template does not prompt for a limit; job_args.limit not sent")
			}
			delete(body, "limit")
		}
		if !tpl.AskVariablesOnLaunch {
			log.Warn().Msg("workflow template does not prompt for variables; extra_vars (and ansible_eda) not sent")
			delete(body, "extra_vars")
		}
	}
	launchURL := t.api.ResolveReference(&url.URL{Path: fmt.Sprintf("%s/%d/launch/", t.k.templates, tpl.ID)})
	if tpl.Related.Launch != "" {
		if u, err := t.base.Parse(tpl.Related.Launch); err == nil {
			launchURL = u
		}
	}
	var answer map[string]any
	if err := t.do(ctx, http.MethodPost, launchURL, body, &answer); err != nil {
		return fail(fmt.Errorf("launch %s %q: %w", t.k.what, cfg.name, err))
	}
	l := launched{ID: intField(answer, t.k.jobKey)}
	if l.ID == 0 {
		l.ID = intField(answer, "id")
	}
	if s, ok := answer["url"].(string); ok && s != "" {
		l.URL = s
	} else if l.ID != 0 {
		l.URL = t.api.ResolveReference(&url.URL{Path: fmt.Sprintf("%s/%d/", t.k.jobs, l.ID)}).Path
	}
	if l.ID == 0 || l.URL == "" {
		r := engine.Failure("launch %s %q: the controller's answer has no job id", t.k.what, cfg.name)
		return launched{}, &r
	}
	if ign, ok := answer["ignored_fields"].(map[string]any); ok && len(ign) > 0 {
		details["ignored_fields"] = keys(ign) // their values echo the request
		log.Warn().Strs("fields", keys(ign)).Msg("the template does not prompt for these launch fields; the controller ignored them")
	}
	t.remember(inv, l, log)
	log.Info().Int("job_id", l.ID).Str("url", t.jobUI(l.ID)).Msg("job launched")
	return l, nil
}

// extraVars are job_args.extra_vars plus ansible_eda in EDA's shape:
// ruleset, rule, and event (one matched event) or events (several, by
// name), unless include_events is false.
func (t *Template) extraVars(cfg config, inv *engine.Invocation) map[string]any {
	ev, _ := cfg.jobArgs["extra_vars"].(map[string]any)
	out := make(map[string]any, len(ev)+1)
	for k, v := range ev {
		out[k] = v
	}
	eda := map[string]any{"ruleset": inv.Ruleset, "rule": inv.Rule}
	if cfg.includeEvents {
		if len(inv.Events) > 1 {
			events := make(map[string]any, len(inv.Events))
			for k, v := range inv.Events {
				events[k] = v
			}
			eda["events"] = events
		} else if inv.Event != nil {
			eda["event"] = inv.Event
		} else {
			for _, v := range inv.Events {
				eda["event"] = v
			}
		}
	}
	out["ansible_eda"] = eda
	return out
}

// wait polls the job until it has finished. Errors the controller may
// recover from are tried again at the next poll; a job that is gone (404)
// or a token that is refused (401, 403) ends the wait.
func (t *Template) wait(ctx context.Context, u *url.URL, log zerolog.Logger) (*job, error) {
	last := ""
	for {
		var j job
		err := t.do(ctx, http.MethodGet, u, nil, &j)
		switch {
		case err == nil:
			if j.Status != last {
				log.Debug().Int("job_id", j.ID).Str("status", j.Status).Msg("job status")
				last = j.Status
			}
			if finished(j.Status) {
				return &j, nil
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !retryable(err):
			return nil, err
		default:
			log.Warn().Err(err).Msg("polling the job failed; trying again")
		}
		if !engine.Sleep(ctx, t.clock, t.poll) {
			return nil, ctx.Err()
		}
	}
}

// cancel asks the controller to cancel a job whose attempt timed out.
func (t *Template) cancel(l launched, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := t.base.Parse(l.URL)
	if err != nil {
		return
	}
	u = u.ResolveReference(&url.URL{Path: "cancel/"})
	if err := t.do(ctx, http.MethodPost, u, nil, nil); err != nil {
		log.Warn().Err(err).Int("job_id", l.ID).Msg("cancelling the timed-out job failed")
		return
	}
	log.Info().Int("job_id", l.ID).Msg("timed-out job cancelled")
}

// jobUI is the job's page in the controller's UI.
func (t *Template) jobUI(id int) string {
	root := url.URL{Scheme: t.base.Scheme, Host: t.base.Host, Path: "/"}
	return root.String() + t.k.ui + strconv.Itoa(id) + "/details"
}

// stateFile is where the job launched by an invocation is kept.
func (t *Template) stateFile(inv *engine.Invocation) string {
	if t.state == "" {
		return ""
	}
	b := []byte(inv.ID)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return filepath.Join(t.state, t.k.typ+"-"+string(b)+".json")
}

// resume returns the job an earlier attempt of inv launched and did not see
// finish (a crash, a shutdown).
func (t *Template) resume(inv *engine.Invocation) (launched, bool) {
	p := t.stateFile(inv)
	if p == "" {
		return launched{}, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return launched{}, false
	}
	var l launched
	if json.Unmarshal(b, &l) != nil || l.ID == 0 || l.URL == "" {
		return launched{}, false
	}
	return l, true
}

// remember keeps the launched job until the attempt ends.
func (t *Template) remember(inv *engine.Invocation, l launched, log zerolog.Logger) {
	p := t.stateFile(inv)
	if p == "" {
		return
	}
	b, _ := json.Marshal(l)
	err := os.MkdirAll(filepath.Dir(p), 0o700)
	if err == nil {
		tmp := p + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, p)
		}
	}
	if err != nil {
		log.Warn().Err(err).Int("job_id", l.ID).Msg("cannot keep the launched job's id; a restart would launch again")
	}
}

func (t *Template) forget(inv *engine.Invocation) {
	if p := t.stateFile(inv); p != "" {
		_ = os.Remove(p)
	}
}

func intField(m map[string]any, k string) int {
	switch v := m[k].(type) {
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func copyMap(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}
