package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Action performs one kind of remediation (run a playbook, call a URL, ...).
//
// Run makes one attempt. ctx carries the invocation's timeout and is cancelled
// on shutdown; an action must stop promptly when it ends and report
// Retryable. Run must be safe for concurrent use: the dispatcher runs several
// invocations of one action at once. The invocation ID is stable across
// attempts and restarts, so an action that talks to an external system can use
// it as an idempotency key.
type Action interface {
	Run(ctx context.Context, inv *Invocation) Result
}

// Reattacher is an optional interface of an Action whose attempt can
// outlive the engine's process (a program the action started). After a
// crash, the dispatcher calls Reattach for every invocation it finds
// recorded as running, before anything else runs it and with its lock key
// held.
//
// Reattach makes sure that nothing of the interrupted attempt runs any
// more when it returns: it waits for what still runs, and kills it when
// ctx ends (ctx carries what is left of the attempt's timeout and is
// cancelled on shutdown). known reports that the attempt's result is
// known: it then stands for the attempt, which is not run again. When the
// result is lost (or there was no such attempt), known is false and the
// dispatcher runs the invocation again as any interrupted one.
type Reattacher interface {
	Reattach(ctx context.Context, inv *Invocation) (res Result, known bool)
}

// An AttemptRecorder is a Reattacher that keeps, outside the action store,
// a record of every attempt it starts (a program's process and, once it
// ended, its exit status), written before the attempt starts and kept
// until the dispatcher says the attempt's result is durable. Those records
// stand in for the store's "running" state: the dispatcher records an
// attempt of such an action as running, and its final result, without
// waiting for them to be durable (a store's next synced write, or the
// dispatcher's own group sync, makes them so), because after a crash the
// records say what the store may have lost.
type AttemptRecorder interface {
	Reattacher
	// Records reports whether the action keeps those records (it may run
	// without them, without a data directory): when false, the
	// dispatcher treats it as a plain Reattacher.
	Records() bool
	// LeftBehind reports whether an earlier process left a record of an
	// attempt of invocation id: the dispatcher then treats the invocation
	// as found running, whatever the store says.
	LeftBehind(id string) bool
	// Settle says that the final result of inv's last attempt is durable
	// in the store: its record may go.
	Settle(inv *Invocation)
	// Prune removes the records of attempts that ended, left by earlier
	// processes, of invocations not in keep (the unfinished ones), and
	// returns how many it removed.
	Prune(keep map[string]bool) int
}

// Status is the outcome class of one attempt.
type Status string

const (
	// Succeeded: done; the invocation is final.
	Succeeded Status = "succeeded"
	// Retryable: failed, but trying again may help (a timeout, a 5xx, a
	// connection error, a crashed plugin). The dispatcher retries with backoff
	// while retries remain.
	Retryable Status = "retryable"
	// Failed: failed permanently (a 4xx, a failing playbook task, a missing
	// file); retrying cannot help.
	Failed Status = "failed"
)

// Result is what one attempt produced.
type Result struct {
	Status Status
	// Error says what went wrong when Status is not Succeeded.
	Error string
	// RetryAfter, when set, is the earliest time the next attempt may start
	// (an HTTP 429's Retry-After); the dispatcher waits at least this long.
	RetryAfter time.Duration
	// Output is what the action printed or received; the dispatcher keeps the
	// beginning of it in the audit trail.
	Output string
	// ExitCode is a process's exit status (nil when there was no process).
	ExitCode *int `json:",omitempty"`
	// HTTPStatus is the HTTP response status (0 when there was none).
	HTTPStatus int `json:",omitempty"`
	// Signal names the signal that ended the action's process ("SIGTERM")
	// when one did and the action did not send it itself (a timeout). The
	// dispatcher takes such an attempt, when the engine begins to shut
	// down at the same time (a signal sent to the whole service), as
	// interrupted by the shutdown, not failed.
	Signal string `json:",omitempty"`
	// Details holds structured, action-specific results (a playbook recap).
	Details map[string]any `json:",omitempty"`
	// Facts and Events are fed back into the invocation's ruleset, as
	// set_fact and post_event would (a playbook's set_stats).
	Facts  []map[string]any `json:",omitempty"`
	Events []map[string]any `json:",omitempty"`
	// FeedbackRuleset, when set, is the ruleset Facts and Events go to
	// instead of the invocation's (EDA's `ruleset` argument of
	// run_job_template and run_playbook).
	FeedbackRuleset string `json:",omitempty"`
}

// Success returns a Succeeded result with output.
func Success(output string) Result { return Result{Status: Succeeded, Output: output} }

// Failure returns a permanent failure.
func Failure(format string, args ...any) Result {
	return Result{Status: Failed, Error: fmt.Sprintf(format, args...)}
}

// RetryableFailure returns a failure that may succeed when tried again.
func RetryableFailure(format string, args ...any) Result {
	return Result{Status: Retryable, Error: fmt.Sprintf(format, args...)}
}

// Policy is how the dispatcher runs one action: the keys `timeout`,
// `retries`, `delay`, `max_delay` and `lock` that every action accepts.
type Policy struct {
	// Timeout bounds one attempt; zero means the dispatcher's default.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retries is how many times a Retryable failure is tried again.
	Retries int `json:"retries,omitempty"`
	// Delay is the first backoff; each retry doubles it, with jitter, up to
	// MaxDelay.
	Delay    time.Duration `json:"delay,omitempty"`
	MaxDelay time.Duration `json:"max_delay,omitempty"`
	// Lock, when not empty, is a key (rendered from the rule's `lock:`
	// template, e.g. the host) that no two invocations hold at once.
	Lock string `json:"lock,omitempty"`
}

// Invocation is one action to run, created from a rule firing.
type Invocation struct {
	// ID is stable: derived from the firing and the action's position, so the
	// same firing processed twice yields the same IDs.
	ID       string `json:"id"`
	FiringID string `json:"firing_id"`
	// Index is the action's position in its rule's action list.
	Index   int    `json:"index"`
	Action  string `json:"action"`
	Ruleset string `json:"ruleset"`
	Rule    string `json:"rule"`
	// Args are the action's arguments with templates rendered. Secret
	// references (${env:NAME}, ${file:PATH}) are still references: the
	// dispatcher resolves them with ResolveArgs just before Run, so secrets
	// are never stored or audited.
	Args map[string]any `json:"args"`
	// SecretRefs are the places in Args where the rulebook's literal text
	// put a secret reference: the only places a value is substituted. A
	// "${env:X}" anywhere else in Args (from event data) is plain text.
	SecretRefs []SecretUse `json:"secret_refs,omitempty"`
	// RefsListed is true on every invocation the engine creates: SecretRefs
	// lists all of Args' references. An invocation queued by a version
	// before SecretRefs existed has it false; see ResolveArgs.
	RefsListed bool `json:"refs_listed,omitempty"`
	// Event is the event that completed the match; Events are all matched
	// events by name (m_0, m_1, or the names the rule gave them).
	Event  Event            `json:"event,omitempty"`
	Events map[string]Event `json:"events,omitempty"`
	// Hosts are the hosts of the matched events (meta.hosts); HostPattern is
	// the ruleset's `hosts:`, used when Hosts is empty.
	Hosts       []string `json:"hosts,omitempty"`
	HostPattern string   `json:"host_pattern,omitempty"`
	Policy      Policy   `json:"policy"`
	// Sequential invocations of a ruleset with execution_strategy sequential
	// wait for the ruleset's earlier firings.
	Sequential bool `json:"sequential,omitempty"`
	// Mode is the rule's mode when the firing was submitted (ModeShadow,
	// ModeApprove; empty is auto), and Approval the approve mode's policy.
	// The dispatcher sets them at submit from its Config.Mode.
	Mode     string          `json:"mode,omitempty"`
	Approval *ApprovalPolicy `json:"approval,omitempty"`
	// RenderError is set when the arguments could not be rendered; the
	// dispatcher records the invocation as failed without running it.
	RenderError string `json:"render_error,omitempty"`
	// Created is when the firing happened.
	Created time.Time `json:"created"`
	// Stream is the firing engine's Options.Stream (a bus partition), so
	// the action's feedback (facts and events it returns) goes back to that
	// engine; empty with one engine.
	Stream string `json:"stream,omitempty"`
	// Secrets are the values ResolveArgs substituted in Args; Redact masks
	// them in output. They are never stored.
	Secrets []string `json:"-"`
}

// ResolveArgs returns a copy of Args with the secrets substituted where
// SecretRefs says, and the values (for Secrets). An invocation queued by an
// earlier version (RefsListed false) whose Args hold a reference is an
// error, not run: its text cannot tell a reference the rulebook wrote from
// one an event supplied.
func (inv *Invocation) ResolveArgs() (map[string]any, []string, error) {
	if !inv.RefsListed && len(inv.SecretRefs) == 0 && valueHasSecretRef(inv.Args) {
		return nil, nil, errors.New("queued by an earlier version of rulebook, whose arguments cannot tell a secret reference of the rulebook from event data: not run; fire the rule again")
	}
	return ResolveArgs(inv.Args, inv.SecretRefs)
}

func valueHasSecretRef(v any) bool {
	switch x := v.(type) {
	case string:
		return HasSecretRef(x)
	case map[string]any:
		for k, vv := range x {
			if HasSecretRef(k) || valueHasSecretRef(vv) {
				return true
			}
		}
	case []any:
		for _, vv := range x {
			if valueHasSecretRef(vv) {
				return true
			}
		}
	}
	return false
}

// LiteralArgs reads args as rulebook text with no template: it unescapes
// "$${" and returns the arguments and the places of their secret
// references, as rendering would (for an Invocation built by hand).
func LiteralArgs(args map[string]any) (map[string]any, []SecretUse) {
	var uses []SecretUse
	v := literalValue(args, refSink{uses: &uses})
	m, _ := v.(map[string]any)
	return m, uses
}

func literalValue(v any, at refSink) any {
	switch x := v.(type) {
	case string:
		s, refs := parseLiteral(x)
		at.add(refs, 0)
		return s
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[k] = literalValue(vv, at.child(k))
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, vv := range x {
			l[i] = literalValue(vv, at.child(strconv.Itoa(i)))
		}
		return l
	}
	return v
}

// Redact replaces every secret value of the invocation in s with "******".
func (inv *Invocation) Redact(s string) string {
	for _, sec := range inv.Secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "******")
		}
	}
	return s
}

// RedactValue returns a deep copy of v (an action's result details) with
// every secret value of the invocation masked in its strings, map keys
// included.
func (inv *Invocation) RedactValue(v any) any {
	switch x := v.(type) {
	case string:
		return inv.Redact(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[inv.Redact(k)] = inv.RedactValue(vv)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, vv := range x {
			l[i] = inv.RedactValue(vv)
		}
		return l
	case []string:
		l := make([]string, len(x))
		for i, vv := range x {
			l[i] = inv.Redact(vv)
		}
		return l
	case []map[string]any:
		l := make([]map[string]any, len(x))
		for i, vv := range x {
			l[i], _ = inv.RedactValue(vv).(map[string]any)
		}
		return l
	}
	return v
}

// ActionEnv is what an action constructor receives.
type ActionEnv struct {
	// DataDir is the engine's data directory (for scratch files).
	DataDir string
	// Log carries the field action (the type), set by the caller: an
	// action adds no action field of its own, or its log lines would
	// hold the key twice.
	Log zerolog.Logger
}

// ActionSpec registers an action type.
type ActionSpec struct {
	// Type is the key used in rulebooks (`run_playbook:`, `http:` ...).
	Type        string
	Description string
	// Check validates the arguments at load time, before templates are
	// rendered: a value that is a template string ("{{ ... }}") must be
	// accepted wherever a rendered value could be valid. Errors should be
	// *ArgError so the loader can point at the offending key.
	Check func(args map[string]any) error
	// Schema is the JSON Schema of the arguments, published in the rulebook
	// schema (optional).
	Schema map[string]any
	// PathArgs are argument keys (dotted for nested ones: "tls.ca") that
	// hold file paths. The loader makes a relative literal path absolute
	// against the rulebook's directory when the file exists there, before
	// Check, so rulebooks work whatever the working directory.
	PathArgs []string
	// URLArgs are argument keys (dotted for nested ones) that hold URLs. The
	// loader compiles their templates with EscapeURLTemplate, so that each
	// value a template inserts is percent-encoded for its place in the URL
	// (path segment, query value or fragment).
	URLArgs []string
	// Warn, when set, reports valid but dangerous uses in the arguments as
	// written (before rendering; called once Check passed), such as event
	// data inserted into a shell command line. The loader gives each warning
	// the argument's file:line:col; `validate` prints them and `run` logs
	// them at start. Optional.
	Warn func(args map[string]any) []ArgWarning
	// New builds the action once per engine.
	New func(env ActionEnv) (Action, error)
}

// ArgWarning is a danger an ActionSpec's Warn found in the arguments.
type ArgWarning struct {
	// Path is the key path inside the arguments (e.g. ["argv"]).
	Path []string
	// Column is the 1-based byte offset of the offending part inside the
	// string at Path (a TemplatePart's Column); 0 points at the value.
	Column int
	// Message says what is dangerous and what to do instead; lowercase.
	Message string
}

// ArgError is an argument problem found by a Check, with the path of the key
// inside the arguments (e.g. ["headers", "Authorization"]).
type ArgError struct {
	Path []string
	Err  error
}

func (e *ArgError) Error() string {
	if len(e.Path) == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", strings.Join(e.Path, "."), e.Err)
}

func (e *ArgError) Unwrap() error { return e.Err }

// ArgErrorf returns an *ArgError for the key at path.
func ArgErrorf(path []string, format string, args ...any) *ArgError {
	return &ArgError{Path: path, Err: fmt.Errorf(format, args...)}
}

// IsTemplate reports whether a string argument contains a "{{ ... }}"
// template and so can only be checked once rendered.
func IsTemplate(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "{{")
}
