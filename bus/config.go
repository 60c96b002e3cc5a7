package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

// DefaultGroup is the consumer group engine processes join when the bus URL
// names none.
const DefaultGroup = "rulebook"

// Defaults for the producer side of Config.
const (
	DefaultWriteTimeout = 10 * time.Second
	DefaultRetryAfter   = time.Second
)

// Config says where the bus is: what `--bus kafka://HOST:PORT,.../TOPIC?group=NAME`
// names, plus settings a URL does not carry.
type Config struct {
	// Brokers are the bootstrap brokers, host:port each.
	Brokers []string
	// Topic is the bus topic every event is produced to.
	Topic string
	// Group is the consumer group of the engine processes.
	Group string
	// Clock stamps each produced record's accepted time (which dedupe
	// windows are measured in) and is "now" for the consumer's Lookback.
	// Nil: the system clock.
	Clock engine.Clock
	// WriteTimeout bounds one Emit: a write not acknowledged by then is
	// answered with a *engine.BacklogError. Zero: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// RetryAfter is the advice a *engine.BacklogError carries. Zero:
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// Security is the TLS and SASL of every connection to the brokers: the
	// producer's, the consumer group's, the partition readers', the offset
	// lookups' and Partitions'. Build it with kafkaconn.Load. Zero:
	// plaintext without authentication.
	Security kafkaconn.Security
}

func (c Config) clock() engine.Clock {
	if c.Clock == nil {
		return engine.SystemClock{}
	}
	return c.Clock
}

// Validate checks a Config built by hand (ParseURL's result is valid).
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("bus: no brokers")
	}
	for _, b := range c.Brokers {
		if err := checkBroker(b); err != nil {
			return fmt.Errorf("bus: broker %q: %w", b, err)
		}
	}
	if err := checkTopic(c.Topic); err != nil {
		return fmt.Errorf("bus: topic %q: %w", c.Topic, err)
	}
	if err := checkGroup(c.Group); err != nil {
		return fmt.Errorf("bus: group %q: %w", c.Group, err)
	}
	if c.WriteTimeout < 0 || c.RetryAfter < 0 {
		return errors.New("bus: negative write timeout or retry-after")
	}
	return nil
}

// ParseURL parses a bus URL, kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?group=NAME].
// The group defaults to DefaultGroup. Credentials in the URL are refused (and
// never repeated in the error).
func ParseURL(s string) (Config, error) {
	const scheme = "kafka://"
	orig := s
	s = redactURL(s)
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return Config{}, fmt.Errorf("bus url %q: want kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?group=NAME]", s)
	}
	rest := orig[len(scheme):]
	var rawQuery string
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, rawQuery = rest[:i], rest[i+1:]
	}
	if strings.ContainsRune(rest, '#') {
		return Config{}, fmt.Errorf("bus url %q: a fragment (#) is not allowed", s)
	}
	hosts, topic, ok := strings.Cut(rest, "/")
	if strings.ContainsRune(hosts, '@') {
		return Config{}, fmt.Errorf("bus url %q: credentials in the url are not supported", s)
	}
	if !ok || topic == "" {
		return Config{}, fmt.Errorf("bus url %q: missing topic: want kafka://HOST:PORT/TOPIC", s)
	}
	if hosts == "" {
		return Config{}, fmt.Errorf("bus url %q: missing brokers: want kafka://HOST:PORT/TOPIC", s)
	}
	cfg := Config{Topic: topic, Group: DefaultGroup}
	seen := map[string]bool{}
	for _, b := range strings.Split(hosts, ",") {
		b = strings.TrimSpace(b)
		if err := checkBroker(b); err != nil {
			return Config{}, fmt.Errorf("bus url %q: broker %q: %w", s, b, err)
		}
		if !seen[b] {
			seen[b] = true
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	if err := checkTopic(topic); err != nil {
		return Config{}, fmt.Errorf("bus url %q: topic %q: %w", s, topic, err)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("bus url %q: query: %w", s, err)
	}
	for k, v := range q {
		switch k {
		case "group":
			if len(v) != 1 {
				return Config{}, fmt.Errorf("bus url %q: group given %d times", s, len(v))
			}
			if err := checkGroup(v[0]); err != nil {
				return Config{}, fmt.Errorf("bus url %q: group %q: %w", s, v[0], err)
			}
			cfg.Group = v[0]
		default:
			return Config{}, fmt.Errorf("bus url %q: unknown parameter %q (known: group)", s, k)
		}
	}
	return cfg, nil
}

// redactURL hides what could be a user and password (before an '@' in the
// authority) so errors can quote the URL.
func redactURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	end := len(s)
	if i := strings.IndexAny(s[start:], "/?#"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
		return s[:start] + "***" + s[start+at:]
	}
	return s
}

func checkBroker(b string) error {
	if b == "" {
		return errors.New("empty broker address")
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if host == "" {
		return errors.New("missing host")
	}
	for _, r := range host {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' {
			return errors.New("invalid host")
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("port must be a number from 1 to 65535")
	}
	return nil
}

// checkTopic applies Kafka's topic name rules.
func checkTopic(t string) error {
	if t == "" {
		return errors.New("empty topic")
	}
	if t == "." || t == ".." {
		return errors.New(`topic cannot be "." or ".."`)
	}
	if len(t) > 249 {
		return errors.New("topic longer than 249 characters")
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return errors.New("topic may hold only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

func checkGroup(g string) error {
	if g == "" {
		return errors.New("empty group")
	}
	if len(g) > 255 {
		return errors.New("group longer than 255 characters")
	}
	for _, r := range g {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return errors.New("group holds a control or invalid character")
		}
	}
	return nil
}

// clientID is the Kafka client id of every connection this package makes.
const clientID = "rulebook-bus"

// newDialer returns the dialer of the consumer and of Partitions:
// kafkaconn's, with cfg's TLS and SASL, under the bus's client id.
func newDialer(cfg Config) *kafkago.Dialer {
	d := cfg.Security.Dialer()
	d.ClientID = clientID
	return d
}

// newTransport returns the producer's transport: kafkaconn's, with cfg's
// TLS and SASL, under the bus's client id and with dialTimeout.
func newTransport(cfg Config, dialTimeout time.Duration) *kafkago.Transport {
	t := cfg.Security.Transport()
	t.ClientID, t.DialTimeout = clientID, dialTimeout
	return t
}

// Partitions connects to the brokers and returns the number of partitions
// of the bus topic, so a process can refuse to start on a topic that does
// not exist instead of answering 503 to every sender. The number of
// partitions bounds how many processes share the work.
func Partitions(ctx context.Context, cfg Config) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	d := newDialer(cfg)
	var err error
	for _, b := range cfg.Brokers {
		var parts []kafkago.Partition
		parts, err = d.LookupPartitions(ctx, "tcp", b, cfg.Topic)
		if errors.Is(err, kafkago.UnknownTopicOrPartition) || err == nil && len(parts) == 0 {
			return 0, fmt.Errorf("bus: topic %q does not exist on brokers %q: create it, with as many partitions as processes may share the work", cfg.Topic, cfg.Brokers)
		}
		if err == nil {
			return len(parts), nil
		}
		if ctx.Err() != nil || kafkaconn.SecurityError(err) {
			break
		}
	}
	return 0, fmt.Errorf("bus: brokers %q: %w", cfg.Brokers, err)
}
