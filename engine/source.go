package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Source produces events. Run emits through out until ctx is cancelled or the
// source is exhausted; it returns nil in both cases and an error only when the
// source cannot go on (a listener that cannot bind, a broker that refuses the
// credentials). A source acknowledges its sender only after out.Emit has
// returned without error: only then is the event durable.
type Source interface {
	Run(ctx context.Context, out Emitter) error
}

// Entry is one event offered to an Emitter, with what the ingest path needs
// to recognise repeats and stale deliveries.
type Entry struct {
	Event Event
	// DedupeKey identifies a delivery within its source (a delivery id, an
	// alert fingerprint+status+startsAt). A key seen within the source's
	// dedupe window makes the entry a Duplicate. Empty: never a duplicate.
	DedupeKey string
	// DedupeWindow is how long DedupeKey is remembered. Zero: the journal's
	// default.
	DedupeWindow time.Duration
	// OrderKey and Timestamp recognise stale deliveries: an entry whose
	// Timestamp is older than the newest already accepted for the same
	// OrderKey of the same source is Stale. Empty key or zero time: never stale.
	OrderKey  string
	Timestamp time.Time
	// Position, when set, is the source's resume position after this entry
	// (an SSE event id, a plugin's cursor). An Emitter that is also a
	// PositionReader stores it atomically with the entries of the call,
	// whatever their outcome, so a restarted source resumes right after
	// the last durable event: nothing lost, nothing twice.
	Position string
}

// PositionReader is implemented by an Emitter that stores sources'
// positions (Entry.Position) with their events.
type PositionReader interface {
	// Position returns the last position stored for src; "" when none.
	Position(ctx context.Context, src SourceRef) (string, error)
}

// LastPosition returns the last durable position of src when out stores
// positions, else "": the source then starts from its beginning (or its
// server's default).
func LastPosition(ctx context.Context, out Emitter, src SourceRef) (string, error) {
	if pr, ok := out.(PositionReader); ok {
		return pr.Position(ctx, src)
	}
	return "", nil
}

// Outcome says what became of one Entry.
type Outcome int

const (
	// Accepted: durable, and it will be processed.
	Accepted Outcome = iota
	// Duplicate: its DedupeKey was seen within the window; not stored again.
	Duplicate
	// Stale: older than the newest accepted for its OrderKey; not processed.
	Stale
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Emitter takes events from a source. Emit stores all entries of one call
// atomically and returns only when they are durable (fsync'd), with one
// Outcome per entry. On error nothing of the call was accepted and the sender
// must be told to retry: a *BacklogError when the backlog is full (answer 503
// with Retry-After), ErrClosed while shutting down, any other error for a
// storage failure (answer 5xx).
type Emitter interface {
	Emit(ctx context.Context, source SourceRef, entries []Entry) ([]Outcome, error)
}

// SourceRef names the source an event came from and the ruleset it feeds.
type SourceRef struct {
	Ruleset string
	Name    string
	Type    string
}

// ErrClosed is returned by an Emitter that no longer accepts events.
var ErrClosed = errors.New("not accepting events: shutting down")

// BacklogError is returned by an Emitter whose backlog is over its bound.
type BacklogError struct {
	// RetryAfter is the advice for the sender's Retry-After header.
	RetryAfter time.Duration
}

func (e *BacklogError) Error() string {
	return fmt.Sprintf("backlog full: retry after %s", e.RetryAfter)
}

// BacklogProbe is an optional interface of an Emitter: BacklogFull returns
// a *BacklogError when the backlog is over its bounds already, so that a
// source can refuse a request before it reads (and holds) its body. nil
// does not promise that Emit will accept.
type BacklogProbe interface {
	BacklogFull(src SourceRef) *BacklogError
}

// IsBacklog reports whether err is a *BacklogError and returns it.
func IsBacklog(err error) (*BacklogError, bool) {
	var be *BacklogError
	ok := errors.As(err, &be)
	return be, ok
}

// SourceConfig is what a source constructor receives: the source's entry in
// the rulebook, with secrets already resolved.
type SourceConfig struct {
	// Name is the source's name in the rulebook (its `name:` or its type).
	Name string
	// Type is the source type, e.g. "webhook".
	Type string
	// Ruleset is the ruleset that declared it.
	Ruleset string
	// Args are the source's arguments as decoded from YAML.
	Args map[string]any
	// Filters are the source's `filters:`, applied to its events before
	// they are journaled (see FilterEmitter).
	Filters []FilterConfig
	// Clock is the engine's clock.
	Clock Clock
	// Log is scoped to the source.
	Log zerolog.Logger
}

// SourceSpec registers a source type.
type SourceSpec struct {
	// Type is the key used in rulebooks (`webhook:`, `range:` ...).
	Type string
	// Description is one line for `rulebook --help` and the JSON Schema.
	Description string
	// Check validates args at load time without side effects. Errors should be
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
	// New builds the source. It is called after Check succeeded.
	New func(cfg SourceConfig) (Source, error)
}

// Pacer is implemented by an Emitter whose reader keeps up best when the
// backlog stays small: the embedded journal hands the engine its newest
// records from memory, and anything older is read back and decoded from
// disk, which is slower than the engine, so a source that runs far ahead
// slows everything down. Sources that can hold their input (a file, a
// generator, a Kafka partition) call Pace before each Emit; sources that
// answer a sender do not (their bound is the backlog's BacklogError).
type Pacer interface {
	// Pace returns once n more entries fit the Emitter's window, or with
	// ctx's error. It never refuses: the Emit that follows does.
	Pace(ctx context.Context, n int) error
}

// Pace waits as out.Pace when out is a Pacer, and returns nil at once
// otherwise.
func Pace(ctx context.Context, out Emitter, n int) error {
	if p, ok := out.(Pacer); ok {
		return p.Pace(ctx, n)
	}
	return nil
}

// EmitWait emits like out.Emit but waits and retries while the backlog is
// full, for sources that can hold their input (a file, a generator) rather
// than answer a sender. It waits on clock (nil: the system clock) and
// returns ctx's error when ctx ends first. It does not Pace: a bulk source
// calls Pace itself, and action feedback, which the engine's progress may
// depend on, must not wait for that progress.
func EmitWait(ctx context.Context, clock Clock, out Emitter, src SourceRef, entries []Entry) ([]Outcome, error) {
	for {
		res, err := out.Emit(ctx, src, entries)
		be, full := IsBacklog(err)
		if !full {
			return res, err
		}
		wait := be.RetryAfter
		if wait <= 0 || wait > time.Second {
			wait = 100 * time.Millisecond
		}
		if !Sleep(ctx, clock, wait) {
			return nil, ctx.Err()
		}
	}
}

// EmitPaced is Pace, then EmitWait: for sources that produce in bulk and
// can hold their input (a file, a generator).
func EmitPaced(ctx context.Context, clock Clock, out Emitter, src SourceRef, entries []Entry) ([]Outcome, error) {
	if err := Pace(ctx, out, len(entries)); err != nil {
		return nil, err
	}
	return EmitWait(ctx, clock, out, src, entries)
}
