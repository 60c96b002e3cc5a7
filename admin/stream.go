package admin

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// Kinds of stream entries (the SSE `event:` field).
const (
	KindEvent  = "event"
	KindFiring = "firing"
	KindAction = "action"
	KindReload = "reload"
)

// Defaults of the stream.
const (
	DefaultStreamSize   = 1000
	DefaultClientBuffer = 256
	// DefaultMaxData bounds one entry's JSON; a larger event is kept without
	// its body (see EventData.Truncated).
	DefaultMaxData = 64 << 10
)

// Entry is one item of the live stream.
type Entry struct {
	// ID increases by one with every entry published, starting at 1.
	ID   uint64          `json:"id"`
	Kind string          `json:"kind"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// EventData is the data of an "event" entry.
type EventData struct {
	// Seq is the journal position (0 for an injected event).
	Seq     uint64 `json:"seq,omitempty"`
	Ruleset string `json:"ruleset"`
	Source  string `json:"source,omitempty"`
	EventID string `json:"event_id,omitempty"`
	// Event is the whole event, unless it was larger than the stream's
	// limit: then it is nil and Truncated is its size in bytes.
	Event     engine.Event `json:"event,omitempty"`
	Truncated int          `json:"truncated,omitempty"`
}

// FiringData is the data of a "firing" entry.
type FiringData struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Ruleset  string    `json:"ruleset"`
	Rule     string    `json:"rule"`
	EventIDs []string  `json:"event_ids"`
	// Actions are the firing's action types in rule order, the engine's own
	// (debug, set_fact, ...) included.
	Actions []string `json:"actions"`
}

// ActionData is the data of an "action" entry: one recorded state of an
// invocation, with its last attempt.
type ActionData struct {
	InvocationID string                  `json:"invocation_id"`
	FiringID     string                  `json:"firing_id"`
	Ruleset      string                  `json:"ruleset"`
	Rule         string                  `json:"rule"`
	Action       string                  `json:"action"`
	Status       engine.InvocationStatus `json:"status"`
	Attempts     int                     `json:"attempts"`
	// Duration of the last attempt, in seconds.
	Duration   float64   `json:"duration,omitempty"`
	Error      string    `json:"error,omitempty"`
	Output     string    `json:"output,omitempty"`
	ExitCode   *int      `json:"exit_code,omitempty"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Next       time.Time `json:"next_attempt,omitzero"`
	Updated    time.Time `json:"updated"`
}

// ReloadData is the data of a "reload" entry.
type ReloadData struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Stream is a bounded ring buffer of entries with live subscribers.
// Publishing never blocks on a subscriber: one whose buffer is full is
// dropped (its channel closed), and it resumes from the ring when it
// reconnects with the last ID it saw.
type Stream struct {
	clock        engine.Clock
	clientBuffer int
	maxData      int

	mu     sync.Mutex
	ring   []Entry // ring[(id-1) % cap] holds entry id
	next   uint64  // ID of the next entry
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch      chan Entry
	dropped bool
}

// StreamConfig configures a Stream; zero fields take the defaults.
type StreamConfig struct {
	// Size is how many entries the ring keeps (DefaultStreamSize).
	Size int
	// ClientBuffer is how many entries a subscriber may lag behind before
	// it is dropped (DefaultClientBuffer).
	ClientBuffer int
	// MaxData bounds one entry's JSON in bytes (DefaultMaxData).
	MaxData int
	Clock   engine.Clock
}

// NewStream returns an empty stream.
func NewStream(cfg StreamConfig) *Stream {
	if cfg.Size <= 0 {
		cfg.Size = DefaultStreamSize
	}
	if cfg.ClientBuffer <= 0 {
		cfg.ClientBuffer = DefaultClientBuffer
	}
	if cfg.MaxData <= 0 {
		cfg.MaxData = DefaultMaxData
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	return &Stream{
		clock: cfg.Clock, clientBuffer: cfg.ClientBuffer, maxData: cfg.MaxData,
		ring: make([]Entry, cfg.Size), next: 1, subs: map[*subscriber]struct{}{},
	}
}

// Publish appends an entry of kind with v as its JSON data and hands it to
// every subscriber. v is encoded before Publish returns, so the caller may
// change it afterwards. A v that cannot be encoded, or whose JSON is larger
// than the limit, is published as {"error": ...} so the ID sequence stays
// gap free. It returns the entry's ID (0 once the stream is closed).
func (s *Stream) Publish(kind string, v any) uint64 {
	data, err := json.Marshal(v)
	return s.append(kind, s.checked(data, err))
}

// checked returns the result of encoding an entry's data, or the
// {"error": ...} stand-in when it could not be encoded or is over the limit.
func (s *Stream) checked(data []byte, err error) json.RawMessage {
	switch {
	case err != nil:
		data, _ = json.Marshal(map[string]string{"error": "cannot encode: " + err.Error()})
	case len(data) > s.maxData:
		data, _ = json.Marshal(map[string]any{"error": "too large for the stream", "bytes": len(data)})
	}
	return data
}

func (s *Stream) append(kind string, data json.RawMessage) uint64 {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	e := Entry{ID: s.next, Kind: kind, Time: now, Data: data}
	s.next++
	s.ring[(e.ID-1)%uint64(len(s.ring))] = e
	for sub := range s.subs {
		select {
		case sub.ch <- e:
		default:
			// Too slow: drop it rather than block the publisher; it
			// reconnects with Last-Event-ID and resumes from the ring.
			sub.dropped = true
			close(sub.ch)
			delete(s.subs, sub)
		}
	}
	return e.ID
}

// PublishEvent publishes an "event" entry for a journal record; it fits
// the engine's per-record path. An event whose JSON is over the limit is
// published without its body.
func (s *Stream) PublishEvent(rec engine.Record) uint64 {
	d := EventData{
		Seq: rec.Seq, Ruleset: rec.Source.Ruleset, Source: rec.Source.Name,
		EventID: engine.EventID(rec.Event), Event: rec.Event,
	}
	data, err := json.Marshal(d)
	if err != nil || len(data) > s.maxData {
		d.Truncated = len(data)
		d.Event = nil
		data, _ = json.Marshal(d)
	}
	return s.append(KindEvent, data)
}

// PublishFiring publishes a "firing" entry; it fits engine.Options.OnFiring.
func (s *Stream) PublishFiring(f *engine.Firing, actions []engine.RenderedAction) {
	if f == nil {
		return
	}
	d := FiringData{ID: f.ID, Time: f.Time, Ruleset: f.Ruleset, Rule: f.Rule, EventIDs: f.EventIDs, Actions: []string{}}
	if d.EventIDs == nil {
		d.EventIDs = []string{}
	}
	for _, a := range actions {
		d.Actions = append(d.Actions, a.Type)
	}
	s.Publish(KindFiring, d)
}

// PublishResult publishes an "action" entry; it fits
// dispatch.Config.OnResult.
func (s *Stream) PublishResult(st *engine.InvocationState) {
	if st == nil || st.Invocation == nil {
		return
	}
	inv := st.Invocation
	d := ActionData{
		InvocationID: inv.ID, FiringID: inv.FiringID, Ruleset: inv.Ruleset, Rule: inv.Rule, Action: inv.Action,
		Status: st.Status, Attempts: len(st.Attempts), Next: st.NextAttempt, Updated: st.Updated,
	}
	if n := len(st.Attempts); n > 0 && st.Status != engine.StatusRunning {
		a := st.Attempts[n-1]
		d.Duration = a.Duration.Seconds()
		d.Error, d.Output, d.ExitCode, d.HTTPStatus = a.Error, a.Output, a.ExitCode, a.HTTPStatus
	}
	// Output and error are already clipped by the dispatcher; should they
	// still not fit, halve the longer until the entry does. The last
	// encoding is the one published: this runs for every action result.
	for {
		data, err := json.Marshal(d)
		if err != nil || len(data) <= s.maxData || (d.Output == "" && d.Error == "") {
			s.append(KindAction, s.checked(data, err))
			return
		}
		if len(d.Output) >= len(d.Error) {
			d.Output = clip(d.Output, len(d.Output)/2)
		} else {
			d.Error = clip(d.Error, len(d.Error)/2)
		}
	}
}

// PublishReload publishes a "reload" entry: err nil for a reload that was
// applied, else why it was refused.
func (s *Stream) PublishReload(err error) {
	d := ReloadData{OK: err == nil}
	if err != nil {
		d.Error = err.Error()
	}
	s.Publish(KindReload, d)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 8 {
		return ""
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// LastID returns the ID of the newest entry (0 when none).
func (s *Stream) LastID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next - 1
}

// Recent returns up to limit of the newest entries, oldest first; kind,
// when not empty, keeps only entries of that kind.
func (s *Stream) Recent(kind string, limit int) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Entry{}
	first := s.oldestLocked()
	for id := s.next - 1; id >= first && id > 0 && len(out) < limit; id-- {
		e := s.ring[(id-1)%uint64(len(s.ring))]
		if kind == "" || e.Kind == kind {
			out = append(out, e)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// oldestLocked is the ID of the oldest entry still in the ring.
func (s *Stream) oldestLocked() uint64 {
	if n := uint64(len(s.ring)); s.next > n {
		return s.next - n
	}
	return 1
}

// Subscription is one live reader of the stream.
type Subscription struct {
	// Backlog holds the entries after the requested ID still in the ring,
	// oldest first.
	Backlog []Entry
	// Missed is true when entries after the requested ID had already left
	// the ring.
	Missed bool
	// C receives every later entry; it is closed when the subscriber was
	// too slow, on Cancel and when the stream closes.
	C <-chan Entry

	s   *Stream
	sub *subscriber
}

// Dropped reports whether C was closed because the subscriber fell behind.
func (sub *Subscription) Dropped() bool {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	return sub.sub.dropped
}

// Cancel ends the subscription. It is safe to call more than once.
func (sub *Subscription) Cancel() {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	if _, ok := sub.s.subs[sub.sub]; ok {
		delete(sub.s.subs, sub.sub)
		close(sub.sub.ch)
	}
}

// SubscribeAfter returns the entries with an ID above after that are still
// in the ring and a channel of every later one, atomically: nothing is
// missed or seen twice between them. After 0 means from the oldest entry
// kept. An after beyond the newest ID (a client that saw a previous
// process) counts as 0.
func (s *Stream) SubscribeAfter(after uint64) *Subscription {
	return s.subscribe(after, -1)
}

// SubscribeNew is SubscribeAfter for a client that saw nothing yet: the
// backlog holds the newest replay entries (none when replay is 0).
func (s *Stream) SubscribeNew(replay int) *Subscription {
	if replay < 0 {
		replay = 0
	}
	return s.subscribe(0, replay)
}

// subscribe backs both: replay < 0 resumes after after.
func (s *Stream) subscribe(after uint64, replay int) *Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := &subscriber{ch: make(chan Entry, s.clientBuffer)}
	res := &Subscription{C: sub.ch, s: s, sub: sub}
	if s.closed {
		close(sub.ch)
		return res
	}
	last := s.next - 1
	if after > last {
		after = 0
	}
	from := after + 1
	if replay >= 0 {
		from = s.next - min(uint64(replay), last)
	}
	if oldest := s.oldestLocked(); from < oldest {
		res.Missed = replay < 0 && after > 0
		from = oldest
	}
	for id := from; id <= last; id++ {
		res.Backlog = append(res.Backlog, s.ring[(id-1)%uint64(len(s.ring))])
	}
	s.subs[sub] = struct{}{}
	return res
}

// Close ends every subscription; later publishes are discarded. It is safe
// to call more than once.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for sub := range s.subs {
		close(sub.ch)
		delete(s.subs, sub)
	}
}
