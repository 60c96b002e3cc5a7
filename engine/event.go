// Package engine holds what every part of Rulebook shares: events, the clock,
// the contracts of sources, journals, actions and the dispatcher, and the rule
// evaluator itself. It imports no source, action or CLI code.
package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Event is one normalized event: source-specific top-level keys (payload,
// alert, body, ...) plus a "meta" object that the engine owns. Conditions see
// it as `event`. Values are what encoding/json produces (map[string]any,
// []any, string, float64, bool, nil) plus int and int64, which the evaluator
// treats as numbers too.
type Event = map[string]any

// Meta keys that the engine and sources set on every event.
const (
	MetaKey        = "meta"
	MetaUUID       = "uuid"
	MetaSource     = "source"
	MetaReceivedAt = "received_at"
	MetaHosts      = "hosts"
	MetaHeaders    = "headers"
)

// NewEvent wraps body (the source-specific top-level keys) with a meta object
// naming the source and the time it was received. body is used as is, not
// copied.
func NewEvent(body map[string]any, sourceName, sourceType string, receivedAt time.Time) Event {
	if body == nil {
		body = map[string]any{}
	}
	meta, _ := body[MetaKey].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		body[MetaKey] = meta
	}
	if _, ok := meta[MetaUUID]; !ok {
		meta[MetaUUID] = NewID()
	}
	meta[MetaSource] = map[string]any{"name": sourceName, "type": sourceType}
	meta[MetaReceivedAt] = receivedAt.UTC().Format(time.RFC3339Nano)
	return body
}

// Meta returns the event's meta object, creating it when absent.
func Meta(ev Event) map[string]any {
	m, _ := ev[MetaKey].(map[string]any)
	if m == nil {
		m = map[string]any{}
		ev[MetaKey] = m
	}
	return m
}

// EventID returns meta.uuid, or "" when the event has none.
func EventID(ev Event) string {
	if m, ok := ev[MetaKey].(map[string]any); ok {
		if s, ok := m[MetaUUID].(string); ok {
			return s
		}
	}
	return ""
}

// EventHosts returns meta.hosts as strings.
func EventHosts(ev Event) []string {
	m, ok := ev[MetaKey].(map[string]any)
	if !ok {
		return nil
	}
	switch hs := m[MetaHosts].(type) {
	case []string:
		return hs
	case []any:
		out := make([]string, 0, len(hs))
		for _, h := range hs {
			if s, ok := h.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	case string:
		if hs != "" {
			return []string{hs}
		}
	}
	return nil
}

// NewID returns a random RFC 4122 version 4 UUID.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("engine: crypto/rand failed: " + err.Error())
	}
	b[6] = (b[6] & 0x0f) | 0x40
	return formatUUID(b)
}

// derivedID returns a UUID made from key (RFC 9562 version 8, from its
// SHA-256): the same key always gives the same ID.
func derivedID(key string) string {
	sum := sha256.Sum256([]byte(key))
	var b [16]byte
	copy(b[:], sum[:16])
	b[6] = (b[6] & 0x0f) | 0x80
	return formatUUID(b)
}

// formatUUID sets the RFC 4122 variant and writes b in the 8-4-4-4-12 form.
func formatUUID(b [16]byte) string {
	b[8] = (b[8] & 0x3f) | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
