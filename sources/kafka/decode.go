package kafka

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	kafkago "github.com/segmentio/kafka-go"
)

// maxRawInEvent bounds the copy of an undecodable value carried in a
// rejected event; the dead-letter topic gets the value whole.
const maxRawInEvent = 64 << 10

// decoded is a message turned into an event body, or the reason it could
// not be.
type decoded struct {
	body   any
	reason string // non-empty: rejected
}

// decodeValue turns a message value into the event's body according to the
// format. A value that cannot be decoded comes back with a reason; it is
// never dropped.
func decodeValue(format string, value []byte) decoded {
	switch format {
	case FormatText:
		if !utf8.Valid(value) {
			return decoded{reason: "value is not valid UTF-8 text"}
		}
		return decoded{body: string(value)}
	default:
		if len(bytes.TrimSpace(value)) == 0 {
			return decoded{reason: "invalid JSON: empty value"}
		}
		var v any
		if err := json.Unmarshal(value, &v); err != nil {
			return decoded{reason: "invalid JSON: " + err.Error()}
		}
		return decoded{body: v}
	}
}

// kafkaMeta is meta.kafka of an event.
func kafkaMeta(m kafkago.Message) map[string]any {
	headers := make(map[string]any, len(m.Headers))
	// A repeated header keeps its last value.
	for _, h := range m.Headers {
		headers[h.Key] = string(h.Value)
	}
	meta := map[string]any{
		"topic":     m.Topic,
		"partition": m.Partition,
		"offset":    m.Offset,
		"key":       string(m.Key),
		"headers":   headers,
	}
	if !m.Time.IsZero() {
		meta["timestamp"] = m.Time.UTC().Format(time.RFC3339Nano)
	}
	return meta
}

// rejectedBody is the event recorded for a message that could not be
// decoded: {"rejected": {"reason": ..., "raw": ..., "size": ...}}. raw is at
// most maxRawInEvent bytes of the value, with invalid UTF-8 replaced.
func rejectedBody(reason string, value []byte) map[string]any {
	raw := value
	truncated := false
	if len(raw) > maxRawInEvent {
		raw = raw[:maxRawInEvent]
		truncated = true
	}
	r := map[string]any{
		"reason": reason,
		"raw":    strings.ToValidUTF8(string(raw), "\uFFFD"),
		"size":   len(value),
	}
	if truncated {
		r["truncated"] = true
	}
	return map[string]any{"rejected": r}
}

// dedupeKey identifies a message within its source: topic/partition/offset.
func dedupeKey(m kafkago.Message) string {
	return m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10)
}

// Headers a dead-lettered message carries besides its own.
const (
	HeaderReason          = "rulebook-reject-reason"
	HeaderOriginTopic     = "rulebook-origin-topic"
	HeaderOriginPartition = "rulebook-origin-partition"
	HeaderOriginOffset    = "rulebook-origin-offset"
	HeaderSource          = "rulebook-source"
)

// deadLetter is the message forwarded to the dead-letter topic: the original
// key, value and headers, plus headers naming the reason and the origin.
func deadLetter(m kafkago.Message, reason, source string) kafkago.Message {
	hs := make([]kafkago.Header, 0, len(m.Headers)+5)
	hs = append(hs, m.Headers...)
	hs = append(hs,
		kafkago.Header{Key: HeaderReason, Value: []byte(reason)},
		kafkago.Header{Key: HeaderOriginTopic, Value: []byte(m.Topic)},
		kafkago.Header{Key: HeaderOriginPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafkago.Header{Key: HeaderOriginOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kafkago.Header{Key: HeaderSource, Value: []byte(source)},
	)
	return kafkago.Message{Key: m.Key, Value: m.Value, Headers: hs, Time: m.Time}
}
