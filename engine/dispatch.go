package engine

import (
	"context"
	"time"
)

// Firing is one rule match: the events that made it and the actions it
// starts.
type Firing struct {
	// ID is stable: derived from the journal position of the event that
	// completed the match, the ruleset, rule and match, so reprocessing the
	// same journal record after a crash yields the same ID.
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Ruleset string    `json:"ruleset"`
	Rule    string    `json:"rule"`
	// EventIDs are the meta.uuid of every matched event.
	EventIDs []string `json:"event_ids"`
	// Events are the matched events by name (m_0, or the rule's names).
	Events map[string]Event `json:"-"`
	// Invocations are the firing's non-engine actions, in rule order.
	Invocations []*Invocation `json:"-"`
	// Redelivered says the firing may already be stored: it comes from a
	// record that was delivered before (Record.Redelivered). A store looks
	// up only such firings' IDs; any other is new (its ID derives from a
	// journal position processed for the first time, or is random).
	Redelivered bool `json:"-"`
}

// Dispatcher runs the actions of firings. Submit stores the firing and its
// invocations durably and returns; running them (timeouts, retries,
// concurrency, locks) happens afterwards. An error means nothing was stored
// and the engine must not mark the event done.
type Dispatcher interface {
	Submit(ctx context.Context, f *Firing) error
}

// BatchDispatcher is a Dispatcher that stores several firings with one
// durable write. Engine.ProcessBatch uses it, so a batch of journal records
// costs one sync for all its firings, not one per firing.
type BatchDispatcher interface {
	Dispatcher
	SubmitAll(ctx context.Context, fs []*Firing) error
}

// BatchActionStore is an ActionStore that stores several firings atomically
// with one durable write.
type BatchActionStore interface {
	ActionStore
	SubmitAll(ctx context.Context, fs []*Firing) error
}

// A DeferredActionStore is an ActionStore that can record an invocation's
// state without waiting for it to be durable.
type DeferredActionStore interface {
	ActionStore
	// UpdateDeferred replaces the recorded state like Update, visible to
	// reads at once and in order with every other write (any later durable
	// write makes it durable too), but returns before it is durable.
	UpdateDeferred(ctx context.Context, st *InvocationState) error
	// Sync makes every write before it durable.
	Sync(ctx context.Context) error
}

// InvocationStatus is where an invocation stands.
type InvocationStatus string

const (
	StatusQueued    InvocationStatus = "queued"
	StatusRunning   InvocationStatus = "running"
	StatusRetrying  InvocationStatus = "retrying"
	StatusSucceeded InvocationStatus = "succeeded"
	// StatusFailed is final: a permanent failure or retries exhausted (a dead
	// letter).
	StatusFailed InvocationStatus = "failed"
	// StatusShadowed is final: the rule is in shadow mode; the invocation
	// was recorded with its rendered arguments and never run.
	StatusShadowed InvocationStatus = "shadowed"
	// StatusPendingApproval: the rule is in approve mode; the invocation
	// waits for a decision (InvocationState.Approval).
	StatusPendingApproval InvocationStatus = "pending_approval"
	// StatusRejected is final: someone rejected it, or its approval timed
	// out with on_timeout: reject.
	StatusRejected InvocationStatus = "rejected"
	// StatusCancelled is final: its rule was switched to shadow mode while
	// it waited for approval.
	StatusCancelled InvocationStatus = "cancelled"
)

// Final reports whether nothing more will happen to the invocation.
func (s InvocationStatus) Final() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusShadowed, StatusRejected, StatusCancelled:
		return true
	}
	return false
}

// Rule modes (a rule's or a ruleset's `mode:`).
const (
	ModeAuto    = "auto"
	ModeShadow  = "shadow"
	ModeApprove = "approve"
)

// Approval is the approval record of an invocation of an approve-mode rule.
type Approval struct {
	// Requested is when the invocation began to wait; Deadline when it
	// times out.
	Requested time.Time `json:"requested"`
	Deadline  time.Time `json:"deadline,omitzero"`
	// Decision is "approved" or "rejected"; empty while pending.
	Decision string `json:"decision,omitempty"`
	// By is who decided (the admin token's identity, the CLI user), or
	// "timeout" when the deadline decided (Expired).
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
	// Expired says the deadline passed without a decision; Decision is
	// then the rule's on_timeout.
	Expired bool `json:"expired,omitempty"`
}

// Approval decisions.
const (
	DecisionApproved = "approved"
	DecisionRejected = "rejected"
)

// Attempt is one run of an invocation, as recorded.
type Attempt struct {
	N        int           `json:"n"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	Status   Status        `json:"status"`
	Error    string        `json:"error,omitempty"`
	// Output is the beginning of the attempt's output, secrets masked.
	Output     string         `json:"output,omitempty"`
	ExitCode   *int           `json:"exit_code,omitempty"`
	HTTPStatus int            `json:"http_status,omitempty"`
	Details    map[string]any `json:"details,omitempty"`
}

// InvocationState is the recorded state of one invocation.
type InvocationState struct {
	Invocation *Invocation      `json:"invocation"`
	Status     InvocationStatus `json:"status"`
	Attempts   []Attempt        `json:"attempts,omitempty"`
	// NextAttempt is when a retrying invocation may run again.
	NextAttempt time.Time `json:"next_attempt,omitempty"`
	Updated     time.Time `json:"updated"`
	// Approval is set on invocations of approve-mode rules once they wait.
	Approval *Approval `json:"approval,omitempty"`
}

// ActionStore is the durable queue of invocations and the audit trail, kept
// in the same embedded store as the journal.
type ActionStore interface {
	// Submit stores a firing and its invocations (status queued) atomically
	// and durably. A firing with no invocations (an audit record only) may
	// instead become durable with the store's next synced write, provided
	// that anything written after it (the Done of its journal record)
	// cannot survive a crash without it. A firing marked Redelivered whose
	// ID is already stored is left as it is, so resubmitting after a crash
	// is harmless.
	Submit(ctx context.Context, f *Firing) error
	// Unfinished returns every invocation not in a final state, in the order
	// they were submitted: what a restarted dispatcher must run.
	Unfinished(ctx context.Context) ([]*InvocationState, error)
	// Update durably replaces the recorded state of one invocation.
	Update(ctx context.Context, st *InvocationState) error
	// Query reads the audit trail: firings with their invocations' states,
	// newest first.
	Query(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// Compact deletes firings older than before whose invocations are all
	// final.
	Compact(ctx context.Context, before time.Time) (int, error)
}

// AuditFilter selects audit entries; zero fields do not filter.
type AuditFilter struct {
	Ruleset string
	Rule    string
	// Status matches firings having at least one invocation in that status.
	Status  InvocationStatus
	EventID string
	Since   time.Time
	Until   time.Time
	Limit   int
}

// AuditEntry is one firing and what became of its actions.
type AuditEntry struct {
	Firing      Firing             `json:"firing"`
	Invocations []*InvocationState `json:"invocations"`
}
