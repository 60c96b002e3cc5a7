package admin

import (
	"encoding/json"
	"slices"
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
	Seq uint64 `json:"seq,omitempty"`
	// Time is when the event arrived: when the journal made it durable
	// (engine.Record.Accepted), else when it was published. A client shows
	// it rather than when it received the entry, which for entries replayed
	// from the ring (a page load, a reconnect) is much later.
	Time    time.Time `json:"time"`
	Ruleset string    `json:"ruleset"`
	Source  string    `json:"source,omitempty"`
	EventID string    `json:"event_id,omitempty"`
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
	// Time is when the reload was applied or refused.
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
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
	ring   []*entry // ring[(id-1) % cap] holds entry id
	next   uint64   // ID of the next entry
	subs   map[*subscriber]struct{}
	closed bool
}

// entry is an Entry of the ring whose Data is encoded the first time
// something needs it: a subscriber is handed it, or the ring is read
// (Recent, a subscription's backlog). Most entries are never read, and
// encoding the engine's every event is what the stream would otherwise
// cost. ID, Kind and Time are set before the entry is published and never
// change; Data is set once, by get.
type entry struct {
	Entry
	once sync.Once
	// encode returns Data. Nil once it has run, so that the value it
	// encodes can be collected.
	encode func() json.RawMessage
}

// get returns the entry with its Data, encoding it on the first call. It
// is safe for concurrent use; callers must not hold the stream's lock.
func (e *entry) get() Entry {
	e.once.Do(func() {
		e.Data = e.encode()
		e.encode = nil
	})
	return e.Entry
}

// lazyEntry is an entry whose Data is v's JSON, checked as Publish does,
// encoded when first needed: v must not change after it is published.
func (s *Stream) lazyEntry(v any) *entry {
	return &entry{encode: func() json.RawMessage {
		data, err := json.Marshal(v)
		return s.checked(data, err)
	}}
}

// encodedEntry is an entry whose Data is already known.
func encodedEntry(data json.RawMessage) *entry {
	e := &entry{Entry: Entry{Data: data}}
	e.once.Do(func() {})
	return e
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
		ring: make([]*entry, cfg.Size), next: 1, subs: map[*subscriber]struct{}{},
	}
}

// Publish appends an entry of kind with v as its JSON data and hands it to
// every subscriber. v is encoded before Publish returns, so the caller may
// change it afterwards. A v that cannot be encoded, or whose JSON is larger
// than the limit, is published as {"error": ...} so the ID sequence stays
// gap free. It returns the entry's ID (0 once the stream is closed).
func (s *Stream) Publish(kind string, v any) uint64 {
	data, err := json.Marshal(v)
	return s.add(kind, encodedEntry(s.checked(data, err)))
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

// add gives e the next ID, puts it in the ring and hands it to every
// subscriber. Subscribers get Entry values, with their Data: when there
// are any, e is encoded first, outside the lock, before it has an ID (so
// IDs are handed out in order however long encoding takes).
func (s *Stream) add(kind string, e *entry) uint64 {
	e.Kind, e.Time = kind, s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// e is not shared until it is in the ring: reading e.encode is safe.
	for len(s.subs) > 0 && e.encode != nil {
		s.mu.Unlock()
		e.get()
		s.mu.Lock()
	}
	if s.closed {
		return 0
	}
	e.ID = s.next
	s.next++
	s.ring[(e.ID-1)%uint64(len(s.ring))] = e
	if len(s.subs) == 0 {
		return e.ID
	}
	live := e.Entry // encoded above, or before add
	for sub := range s.subs {
		select {
		case sub.ch <- live:
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
//
// Unlike Publish, it does not encode a small event (rec.Size up to
// lazyEventBytes): that is done at most once, when something first reads
// the entry (a subscriber, Recent, a resumed subscription), and never when
// nothing does. The ring then holds the decoded event, so a larger one, or
// one of unknown size, is encoded at once: the ring holds at most its
// limit of JSON for it. It relies on rec.Event not changing after the
// call, which holds for a journaled record: the engine never changes an
// event once it is journaled. A caller that changes the event afterwards
// must hand PublishEvent a copy.
func (s *Stream) PublishEvent(rec engine.Record) uint64 {
	if rec.Accepted.IsZero() {
		rec.Accepted = s.clock.Now()
	}
	if rec.Size <= 0 || rec.Size > lazyEventBytes {
		return s.publishEventNow(rec)
	}
	return s.add(KindEvent, &entry{encode: func() json.RawMessage { return s.eventJSON(rec) }})
}

// lazyEventBytes is the largest record (engine.Record.Size) whose event
// PublishEvent keeps decoded until it is read: the ring's entries then
// hold a few megabytes of decoded events at most, about what they hold as
// JSON.
const lazyEventBytes = 4 << 10

// publishEventNow is PublishEvent for an event its caller changes
// afterwards: it is encoded before publishEventNow returns.
func (s *Stream) publishEventNow(rec engine.Record) uint64 {
	if rec.Accepted.IsZero() {
		rec.Accepted = s.clock.Now()
	}
	return s.add(KindEvent, encodedEntry(s.eventJSON(rec)))
}

// eventJSON is the data of an "event" entry: the record's event, or only
// its size when its JSON is over the limit (or it cannot be encoded).
func (s *Stream) eventJSON(rec engine.Record) json.RawMessage {
	d := EventData{
		Seq: rec.Seq, Time: rec.Accepted, Ruleset: rec.Source.Ruleset, Source: rec.Source.Name,
		EventID: engine.EventID(rec.Event), Event: rec.Event,
	}
	data, err := json.Marshal(d)
	if err != nil || len(data) > s.maxData {
		d.Truncated = len(data)
		d.Event = nil
		data, _ = json.Marshal(d)
	}
	return data
}

// PublishFiring publishes a "firing" entry; it fits engine.Options.OnFiring.
// The entry is encoded when first read, from a copy of what it needs of f:
// f may change afterwards.
func (s *Stream) PublishFiring(f *engine.Firing, actions []engine.RenderedAction) {
	if f == nil {
		return
	}
	d := FiringData{ID: f.ID, Time: f.Time, Ruleset: f.Ruleset, Rule: f.Rule, EventIDs: slices.Clone(f.EventIDs), Actions: []string{}}
	if d.EventIDs == nil {
		d.EventIDs = []string{}
	}
	for _, a := range actions {
		d.Actions = append(d.Actions, a.Type)
	}
	s.add(KindFiring, s.lazyEntry(d))
}

// PublishResult publishes an "action" entry; it fits
// dispatch.Config.OnResult. The entry is encoded when first read, from a
// copy of what it needs of st: st may change afterwards.
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
		d.Error, d.Output, d.HTTPStatus = a.Error, a.Output, a.HTTPStatus
		if a.ExitCode != nil {
			code := *a.ExitCode
			d.ExitCode = &code
		}
	}
	s.add(KindAction, &entry{encode: func() json.RawMessage { return s.actionJSON(d) }})
}

// actionJSON is the data of an "action" entry. Output and error are
// already clipped by the dispatcher; should they still not fit, it halves
// the longer until the entry does. The last encoding is the one kept.
func (s *Stream) actionJSON(d ActionData) json.RawMessage {
	for {
		data, err := json.Marshal(d)
		if err != nil || len(data) <= s.maxData || (d.Output == "" && d.Error == "") {
			return s.checked(data, err)
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
	d := ReloadData{Time: s.clock.Now(), OK: err == nil}
	if err != nil {
		d.Error = err.Error()
	}
	s.add(KindReload, s.lazyEntry(d))
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

// Recent returns up to limit of the newest entries, oldest first; kind,
// when not empty, keeps only entries of that kind.
func (s *Stream) Recent(kind string, limit int) []Entry {
	var picked []*entry // newest first
	s.mu.Lock()
	first := s.oldestLocked()
	for id := s.next - 1; id >= first && id > 0 && len(picked) < limit; id-- {
		e := s.ring[(id-1)%uint64(len(s.ring))]
		if kind == "" || e.Kind == kind {
			picked = append(picked, e)
		}
	}
	s.mu.Unlock()
	// Encoded, when not yet, without holding up publishers.
	out := make([]Entry, len(picked))
	for i, e := range picked {
		out[len(out)-1-i] = e.get()
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
	res, backlog := s.subscribeLocked(after, replay)
	// Encoded, when not yet, outside the lock; live entries queue on
	// res.C meanwhile.
	for _, e := range backlog {
		res.Backlog = append(res.Backlog, e.get())
	}
	return res
}

// subscribeLocked registers the subscriber and returns the backlog's
// entries.
func (s *Stream) subscribeLocked(after uint64, replay int) (*Subscription, []*entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := &subscriber{ch: make(chan Entry, s.clientBuffer)}
	res := &Subscription{C: sub.ch, s: s, sub: sub}
	if s.closed {
		close(sub.ch)
		return res, nil
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
	var backlog []*entry
	for id := from; id <= last; id++ {
		backlog = append(backlog, s.ring[(id-1)%uint64(len(s.ring))])
	}
	s.subs[sub] = struct{}{}
	return res, backlog
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
