package kafka

import (
	"regexp"
	"sort"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

// Format is how a message value becomes the event's body.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// config is the source's arguments, validated.
type config struct {
	Brokers      []string
	Topics       []string
	TopicPattern *regexp.Regexp
	GroupID      string
	StartOffset  int64 // kafkago.FirstOffset or kafkago.LastOffset
	TLS          *kafkaconn.TLS
	SASL         *kafkaconn.SASL
	Format       string
	DeadLetter   string
	Dedupe       bool

	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	JoinGroupBackoff  time.Duration
	CommitInterval    time.Duration
	MaxWait           time.Duration
	TopicRefresh      time.Duration
	LagLogInterval    time.Duration
	BatchSize         int
	RetryBackoff      time.Duration
	MaxRetryBackoff   time.Duration
}

var knownKeys = map[string]bool{
	"brokers": true, "topic": true, "topics": true, "topic_pattern": true, "group_id": true,
	"offset": true, "tls": true, "sasl": true, "format": true, "dead_letter_topic": true,
	"dedupe": true, "session_timeout": true, "rebalance_timeout": true, "heartbeat_interval": true,
	"join_group_backoff": true, "commit_interval": true, "max_wait": true,
	"topic_refresh_interval": true, "lag_log_interval": true, "batch_size": true,
	"retry_backoff": true, "max_retry_backoff": true,
}

// parseConfig validates args. It reads no file: TLS material is loaded by
// kafkaconn.Load when the source is built. With resolved false (Check, at load
// time) a string holding a secret reference (${env:...}, ${file:...}) is
// only known later, so its format is not checked; New checks everything.
func parseConfig(args map[string]any, resolved bool) (config, error) {
	later := func(s string) bool { return !resolved && engine.HasSecretRef(s) }
	c := config{
		StartOffset:       kafkago.FirstOffset,
		Format:            FormatJSON,
		Dedupe:            true,
		SessionTimeout:    30 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		HeartbeatInterval: 3 * time.Second,
		JoinGroupBackoff:  2 * time.Second,
		CommitInterval:    time.Second,
		MaxWait:           500 * time.Millisecond,
		TopicRefresh:      30 * time.Second,
		LagLogInterval:    30 * time.Second,
		BatchSize:         256,
		RetryBackoff:      100 * time.Millisecond,
		MaxRetryBackoff:   5 * time.Second,
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !knownKeys[k] {
			return c, engine.ArgErrorf([]string{k}, "unknown key %q", k)
		}
	}

	var err error
	if c.Brokers, err = kafkaconn.ParseBrokers(args["brokers"], later); err != nil {
		return c, err
	}

	topic, err := optString(args, "topic")
	if err != nil {
		return c, err
	}
	topics, err := stringList(args, "topics")
	if err != nil {
		return c, err
	}
	pattern, err := optString(args, "topic_pattern")
	if err != nil {
		return c, err
	}
	n := 0
	for _, set := range []bool{topic != "", len(topics) > 0, pattern != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return c, engine.ArgErrorf([]string{"topic"}, "exactly one of topic, topics and topic_pattern is required")
	}
	switch {
	case topic != "":
		c.Topics = []string{topic}
	case len(topics) > 0:
		c.Topics = topics
	case later(pattern):
	default:
		if c.TopicPattern, err = regexp.Compile(pattern); err != nil {
			return c, engine.ArgErrorf([]string{"topic_pattern"}, "invalid regular expression %q: %v", pattern, err)
		}
	}

	if c.GroupID, err = optString(args, "group_id"); err != nil {
		return c, err
	}
	off, err := optString(args, "offset")
	if err != nil {
		return c, err
	}
	switch {
	case later(off):
	case off == "" || off == "earliest":
		c.StartOffset = kafkago.FirstOffset
	case off == "latest":
		c.StartOffset = kafkago.LastOffset
	default:
		return c, engine.ArgErrorf([]string{"offset"}, "must be earliest or latest, not %q", off)
	}

	if f, err := optString(args, "format"); err != nil {
		return c, err
	} else if f != "" && !later(f) {
		if f != FormatJSON && f != FormatText {
			return c, engine.ArgErrorf([]string{"format"}, "must be json or text, not %q", f)
		}
		c.Format = f
	}
	if c.DeadLetter, err = optString(args, "dead_letter_topic"); err != nil {
		return c, err
	}
	if v, ok := args["dedupe"]; ok {
		b, ok := v.(bool)
		if !ok {
			return c, engine.ArgErrorf([]string{"dedupe"}, "must be true or false")
		}
		c.Dedupe = b
	}
	if c.TLS, err = kafkaconn.ParseTLS(args["tls"]); err != nil {
		return c, err
	}
	if c.SASL, err = kafkaconn.ParseSASL(args["sasl"], later); err != nil {
		return c, err
	}

	durations := []struct {
		key string
		dst *time.Duration
	}{
		{"session_timeout", &c.SessionTimeout},
		{"rebalance_timeout", &c.RebalanceTimeout},
		{"heartbeat_interval", &c.HeartbeatInterval},
		{"join_group_backoff", &c.JoinGroupBackoff},
		{"commit_interval", &c.CommitInterval},
		{"max_wait", &c.MaxWait},
		{"topic_refresh_interval", &c.TopicRefresh},
		{"lag_log_interval", &c.LagLogInterval},
		{"retry_backoff", &c.RetryBackoff},
		{"max_retry_backoff", &c.MaxRetryBackoff},
	}
	for _, d := range durations {
		if v, ok := args[d.key]; ok {
			if str, isStr := v.(string); isStr && later(str) {
				continue
			}
			if *d.dst, err = duration(d.key, v); err != nil {
				return c, err
			}
		}
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return c, engine.ArgErrorf([]string{"heartbeat_interval"}, "must be shorter than session_timeout (%s)", c.SessionTimeout)
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		return c, engine.ArgErrorf([]string{"max_retry_backoff"}, "must not be shorter than retry_backoff (%s)", c.RetryBackoff)
	}
	if v, ok := args["batch_size"]; ok {
		n, ok := toInt(v)
		if !ok || n < 1 || n > 100000 {
			return c, engine.ArgErrorf([]string{"batch_size"}, "must be a whole number from 1 to 100000")
		}
		c.BatchSize = n
	}
	return c, nil
}

func optString(args map[string]any, key string) (string, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", engine.ArgErrorf([]string{key}, "must be a string")
	}
	return strings.TrimSpace(s), nil
}

// stringList accepts a YAML list of strings or one comma-separated string.
func stringList(args map[string]any, key string) ([]string, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return nil, nil
	}
	return kafkaconn.StringList(v, key)
}

// duration accepts a Go duration string ("500ms", "2s") or a number of
// seconds.
func duration(key string, v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(x)); err != nil {
			return 0, engine.ArgErrorf([]string{key}, "invalid duration %q", x)
		}
	case int:
		d = time.Duration(x) * time.Second
	case int64:
		d = time.Duration(x) * time.Second
	case float64:
		d = time.Duration(x * float64(time.Second))
	default:
		return 0, engine.ArgErrorf([]string{key}, "must be a duration such as \"500ms\" or a number of seconds")
	}
	if d <= 0 {
		return 0, engine.ArgErrorf([]string{key}, "must be positive")
	}
	return d, nil
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		if x == float64(int(x)) {
			return int(x), true
		}
	}
	return 0, false
}
