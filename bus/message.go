package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// wireVersion is the bus message format version. The format is internal:
// only this package writes and reads it.
const wireVersion = 1

// message is one accepted entry on the bus.
type message struct {
	V      int          `json:"v"`
	Source wireSource   `json:"source"`
	Event  engine.Event `json:"event"`
	// DedupeKey, DedupeWindow (nanoseconds), OrderKey and Timestamp are the
	// entry's, for the consumer's dedupe and stale checks.
	DedupeKey    string    `json:"dedupe_key,omitempty"`
	DedupeWindow int64     `json:"dedupe_window_ns,omitempty"`
	OrderKey     string    `json:"order_key,omitempty"`
	Timestamp    time.Time `json:"timestamp,omitzero"`
	// Accepted is when the producer accepted the entry (its clock).
	Accepted time.Time `json:"accepted"`
}

type wireSource struct {
	Ruleset string `json:"ruleset"`
	Name    string `json:"name"`
	Type    string `json:"type,omitempty"`
}

func newMessage(src engine.SourceRef, e engine.Entry, accepted time.Time) message {
	return message{
		V:            wireVersion,
		Source:       wireSource{Ruleset: src.Ruleset, Name: src.Name, Type: src.Type},
		Event:        e.Event,
		DedupeKey:    e.DedupeKey,
		DedupeWindow: int64(e.DedupeWindow),
		OrderKey:     e.OrderKey,
		Timestamp:    e.Timestamp,
		Accepted:     accepted,
	}
}

func (m *message) ref() engine.SourceRef {
	return engine.SourceRef{Ruleset: m.Source.Ruleset, Name: m.Source.Name, Type: m.Source.Type}
}

func encodeMessage(m message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode bus message: %w", err)
	}
	return b, nil
}

// decodeMessage parses a bus message and checks what the consumer relies
// on. It never panics on foreign input.
func decodeMessage(b []byte) (message, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return message{}, fmt.Errorf("decode bus message: %w", err)
	}
	switch {
	case m.V != wireVersion:
		return message{}, fmt.Errorf("decode bus message: unknown version %d (want %d)", m.V, wireVersion)
	case m.Source.Ruleset == "" || m.Source.Name == "":
		return message{}, errors.New("decode bus message: source without ruleset or name")
	case m.Event == nil:
		return message{}, errors.New("decode bus message: no event")
	case m.Accepted.IsZero():
		return message{}, errors.New("decode bus message: no accepted time")
	case m.DedupeWindow < 0:
		return message{}, errors.New("decode bus message: negative dedupe window")
	}
	return m, nil
}
