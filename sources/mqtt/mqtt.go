// Package mqtt is the `mqtt` source: it subscribes to topic filters with
// QoS 1 in a persistent session (clean session false, a stable client id),
// so messages published while Rulebook was down are delivered when it
// comes back, and it acknowledges each message (PUBACK) only once its event
// is durable. The client is github.com/eclipse/paho.mqtt.golang (MQTT
// 3.1.1), with automatic acknowledgement turned off.
package mqtt

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/streamconn"
)

// Type is the source type.
const Type = "mqtt"

// Spec registers the source.
func Spec() engine.SourceSpec {
	return streamconn.Spec(engine.SourceSpec{
		Type:        Type,
		Description: "subscribes to MQTT topics (QoS 1, persistent session); acknowledges a message once its event is durable",
		Schema:      Schema(),
	}, parse, func(c *config) *streamconn.TLS { return c.tls }, func(c *config, env streamconn.Env) engine.Source {
		c.tlsConf = env.TLS
		if c.clientID == "" {
			c.clientID = defaultClientID(env.Ref.Ruleset, env.Ref.Name)
		}
		return &Source{cfg: c, ref: env.Ref, clock: env.Clock, log: env.Log}
	})
}

type config struct {
	brokers      []string
	topics       []string
	clientID     string
	username     string
	password     string
	tls          *streamconn.TLS
	tlsConf      *tls.Config
	keepAlive    time.Duration
	initial, max time.Duration
	dedupe       bool
	dedupeWindow time.Duration
}

func parse(args map[string]any) (*config, error) {
	a := streamconn.NewArgs(args)
	c := &config{}
	var err error
	if c.brokers, err = a.StringList("brokers"); err != nil {
		return nil, err
	}
	if len(c.brokers) == 0 {
		if !a.Has("host") {
			return nil, engine.ArgErrorf(nil, "missing key \"brokers\" (e.g. [tcp://mqtt.example.com:1883])")
		}
	}
	// EDA-style host/port as an alternative to brokers.
	host, err := a.String("host", "")
	if err != nil {
		return nil, err
	}
	port, err := a.Int("port", 1883, 1, 65535)
	if err != nil {
		return nil, err
	}
	if host != "" {
		c.brokers = append(c.brokers, "tcp://"+host+":"+strconv.Itoa(port))
	}
	for i, b := range c.brokers {
		if strings.Contains(b, "${") {
			continue
		}
		u, err := url.Parse(b)
		if err != nil || u.Host == "" {
			return nil, engine.ArgErrorf([]string{"brokers", strconv.Itoa(i)}, "want a broker URL like tcp://host:1883 or ssl://host:8883, got %q", b)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return nil, engine.ArgErrorf([]string{"brokers", strconv.Itoa(i)}, "unsupported scheme %q (want tcp, ssl, ws or wss)", u.Scheme)
		}
	}
	if c.topics, err = a.StringList("topics"); err != nil {
		return nil, err
	}
	topic, err := a.String("topic", "")
	if err != nil {
		return nil, err
	}
	if topic != "" {
		c.topics = append(c.topics, topic)
	}
	if len(c.topics) == 0 {
		return nil, engine.ArgErrorf(nil, "missing key \"topics\" (topic filters to subscribe to, e.g. [sensors/+/alerts])")
	}
	for i, t := range c.topics {
		if err := checkFilter(t); err != nil {
			return nil, engine.ArgErrorf([]string{"topics", strconv.Itoa(i)}, "%v", err)
		}
	}
	if c.clientID, err = a.String("client_id", ""); err != nil {
		return nil, err
	}
	if c.username, err = a.String("username", ""); err != nil {
		return nil, err
	}
	if c.password, err = a.String("password", ""); err != nil {
		return nil, err
	}
	if c.tls, err = streamconn.TLSArgs(a); err != nil {
		return nil, err
	}
	if c.keepAlive, err = a.Duration("keep_alive", 30*time.Second); err != nil {
		return nil, err
	}
	if c.initial, c.max, err = a.Reconnect(); err != nil {
		return nil, err
	}
	if c.dedupe, err = a.Bool("dedupe", true); err != nil {
		return nil, err
	}
	if c.dedupeWindow, err = a.Duration("dedupe_window", time.Hour); err != nil {
		return nil, err
	}
	return c, a.Unknown()
}

// checkFilter checks an MQTT topic filter: '#' only as the last level,
// '+' only as a whole level.
func checkFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("bad topic filter %q: '#' must be a whole, last level", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("bad topic filter %q: '+' must be a whole level", f)
		}
	}
	return nil
}

var notIDChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// defaultClientID is stable across restarts, so the broker keeps the
// session (and the messages queued for it) between runs.
func defaultClientID(ruleset, name string) string {
	return "rulebook-" + notIDChars.ReplaceAllString(ruleset, "_") + "-" + notIDChars.ReplaceAllString(name, "_")
}

// Schema is the JSON Schema of the arguments.
func Schema() map[string]any {
	strs := map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}
	with := func(m map[string]any, d string) map[string]any {
		out := map[string]any{"description": d}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return map[string]any{
		"type": "object", "additionalProperties": false,
		"description": "MQTT subscriber: QoS 1, persistent session, PUBACK after the event is durable",
		"properties": map[string]any{
			"brokers":             with(strs, "broker URLs: tcp://host:1883, ssl://host:8883, ws://, wss://"),
			"host":                map[string]any{"type": "string", "description": "broker host (EDA style; instead of brokers)"},
			"port":                map[string]any{"type": "integer", "description": "broker port with host (default 1883)"},
			"topics":              with(strs, "topic filters (+ and # wildcards)"),
			"topic":               map[string]any{"type": "string", "description": "one topic filter"},
			"client_id":           map[string]any{"type": "string", "description": "stable client id of the persistent session (default rulebook-<ruleset>-<source>)"},
			"username":            map[string]any{"type": "string"},
			"password":            map[string]any{"type": "string", "description": "use ${env:NAME}"},
			"tls":                 streamconn.TLSSchema(),
			"keep_alive":          streamconn.DurationSchema("MQTT keep-alive (default 30s)"),
			"reconnect_delay":     streamconn.DurationSchema("first wait before reconnecting (default 1s)"),
			"max_reconnect_delay": streamconn.DurationSchema("longest wait between reconnects (default 1m)"),
			"dedupe":              map[string]any{"type": "boolean", "description": "recognise a redelivery (same packet id, topic and payload) within dedupe_window (default true)"},
			"dedupe_window":       streamconn.DurationSchema("how long a delivery is remembered for dedupe (default 1h)"),
		},
	}
}

// Source is a running mqtt source.
type Source struct {
	cfg   *config
	ref   engine.SourceRef
	clock engine.Clock
	log   zerolog.Logger
}

var _ engine.Source = (*Source)(nil)

// Run connects (retrying), subscribes on every connect, and emits each
// message, acknowledging it once durable, until ctx ends.
func (s *Source) Run(ctx context.Context, out engine.Emitter) error {
	// Messages go through one queue in arrival order; the handler (called
	// in paho's router goroutine, which must not block) only enqueues. The
	// broker sends at most its in-flight limit of unacknowledged QoS 1
	// messages, so the queue stays short.
	queue := make(chan paho.Message, 4096)
	handler := func(_ paho.Client, m paho.Message) {
		select {
		case queue <- m:
		case <-ctx.Done():
		}
	}
	opts := paho.NewClientOptions().
		SetClientID(s.cfg.clientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetKeepAlive(s.cfg.keepAlive).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(s.cfg.initial).
		SetMaxReconnectInterval(s.cfg.max).
		SetResumeSubs(false).
		SetDefaultPublishHandler(handler)
	for _, b := range s.cfg.brokers {
		opts.AddBroker(b)
	}
	if s.cfg.username != "" {
		opts.SetUsername(s.cfg.username)
		opts.SetPassword(s.cfg.password)
	}
	if s.cfg.tlsConf != nil {
		opts.SetTLSConfig(s.cfg.tlsConf)
	}
	filters := map[string]byte{}
	for _, t := range s.cfg.topics {
		filters[t] = 1
	}
	opts.SetOnConnectHandler(func(c paho.Client) {
		s.log.Info().Str("client_id", s.cfg.clientID).Strs("topics", s.cfg.topics).Msg("connected")
		// Subscribing again on every connect is harmless for a kept
		// session and needed for a new one (the broker lost its state).
		tok := c.SubscribeMultiple(filters, handler)
		go func() {
			if tok.WaitTimeout(30*time.Second) && tok.Error() != nil {
				s.log.Error().Err(tok.Error()).Msg("subscribe failed")
			}
		}()
	})
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		s.log.Warn().Err(err).Msg("connection lost: reconnecting")
	})
	client := paho.NewClient(opts)
	client.Connect() // retries in the background (SetConnectRetry)
	defer client.Disconnect(250)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-queue:
			if !s.deliver(ctx, out, m) {
				return nil
			}
		}
	}
}

// deliver emits m, retrying storage failures with backoff, and then
// acknowledges it. It returns false when ctx ended first: m stays
// unacknowledged and the broker delivers it again to the next session.
func (s *Source) deliver(ctx context.Context, out engine.Emitter, m paho.Message) bool {
	payload := streamconn.Payload(m.Payload())
	meta := map[string]any{"topic": m.Topic(), "qos": int(m.Qos()), "retained": m.Retained()}
	ev := engine.NewEvent(map[string]any{"payload": payload, engine.MetaKey: meta}, s.ref.Name, s.ref.Type, s.clock.Now())
	entry := engine.Entry{Event: ev}
	if s.cfg.dedupe && m.Qos() > 0 {
		h := sha256.New()
		h.Write([]byte(m.Topic()))
		h.Write([]byte{0})
		h.Write(m.Payload())
		entry.DedupeKey = strconv.Itoa(int(m.MessageID())) + "/" + hex.EncodeToString(h.Sum(nil)[:16])
		entry.DedupeWindow = s.cfg.dedupeWindow
	}
	bo := &streamconn.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		_, err := engine.EmitWait(ctx, s.clock, out, s.ref, []engine.Entry{entry})
		if err == nil {
			break
		}
		if fe, ok := engine.IsFilterError(err); ok {
			s.log.Error().Err(fe).Str("topic", m.Topic()).Msg("event refused by a filter: acknowledged and skipped")
			break
		}
		if ctx.Err() != nil {
			return false
		}
		wait := bo.Next()
		s.log.Error().Err(err).Str("topic", m.Topic()).Dur("retry_in", wait).Msg("storing the event failed: not acknowledged, retrying")
		if !engine.Sleep(ctx, s.clock, wait) {
			return false
		}
	}
	m.Ack()
	return true
}
