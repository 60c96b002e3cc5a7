// Package websocket is the `websocket` source: it connects to a ws:// or
// wss:// URL, optionally sends subscription messages, and emits one event
// per text message. The protocol is github.com/coder/websocket's (a
// well-kept, context-aware implementation of RFC 6455), not written here.
//
// WebSocket has no acknowledgement of its own: a message is read only after
// the previous one is durable, so at most the message being read when the
// connection drops is lost. For servers that can resume (a sequence number
// in each message, a `since` in the subscription), `position_key` names the
// message's position; it is stored with the event in the journal, and
// `{{ position }}` in the `send` messages is replaced by the last durable
// one on every (re)connection, so nothing is lost or repeated.
package websocket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	ws "github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/streamconn"
)

// Type is the source type.
const Type = "websocket"

// Spec registers the source.
func Spec() engine.SourceSpec {
	return streamconn.Spec(engine.SourceSpec{
		Type:        Type,
		Description: "connects to a WebSocket and emits one event per text message",
		Schema:      Schema(),
	}, parse, func(c *config) *streamconn.TLS { return c.tls }, func(c *config, env streamconn.Env) engine.Source {
		return &Source{cfg: c, ref: env.Ref, clock: env.Clock, log: env.Log,
			client: &http.Client{Transport: &http.Transport{TLSClientConfig: env.TLS, Proxy: http.ProxyFromEnvironment}}}
	})
}

type config struct {
	url          string
	headers      map[string]string
	token        string
	subprotocols []string
	tls          *streamconn.TLS
	send         []string
	positionKey  []string
	initial, max time.Duration
	pingEvery    time.Duration
	pingTimeout  time.Duration
	dialTimeout  time.Duration
	maxMessage   int
}

func parse(args map[string]any) (*config, error) {
	a := streamconn.NewArgs(args)
	c := &config{}
	var err error
	if c.url, err = a.URL("url", "a ws:// or wss:// URL", "ws", "wss"); err != nil {
		return nil, err
	}
	if c.headers, err = a.StringMap("headers"); err != nil {
		return nil, err
	}
	if c.token, err = a.String("token", ""); err != nil {
		return nil, err
	}
	if c.subprotocols, err = a.StringList("subprotocols"); err != nil {
		return nil, err
	}
	if c.tls, err = streamconn.TLSArgs(a); err != nil {
		return nil, err
	}
	if v, ok := a.Raw("send"); ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, engine.ArgErrorf([]string{"send"}, "want a list of messages (strings, or mappings sent as JSON), got %s", engine.TypeName(v))
		}
		for i, m := range list {
			switch x := m.(type) {
			case string:
				c.send = append(c.send, x)
			case map[string]any, []any:
				b, err := json.Marshal(x)
				if err != nil {
					return nil, engine.ArgErrorf([]string{"send", strconv.Itoa(i)}, "cannot encode as JSON: %v", err)
				}
				c.send = append(c.send, string(b))
			default:
				return nil, engine.ArgErrorf([]string{"send", strconv.Itoa(i)}, "want a string or a mapping, got %s", engine.TypeName(m))
			}
		}
	}
	pk, err := a.String("position_key", "")
	if err != nil {
		return nil, err
	}
	if pk != "" {
		c.positionKey = strings.Split(pk, ".")
	}
	if c.initial, c.max, err = a.Reconnect(); err != nil {
		return nil, err
	}
	if c.pingEvery, err = a.Duration("ping_interval", 30*time.Second); err != nil {
		return nil, err
	}
	if c.pingTimeout, err = a.Duration("ping_timeout", 10*time.Second); err != nil {
		return nil, err
	}
	if c.dialTimeout, err = a.Duration("connect_timeout", 30*time.Second); err != nil {
		return nil, err
	}
	if c.maxMessage, err = a.Int("max_message_size", 1<<20, 1, 64<<20); err != nil {
		return nil, err
	}
	return c, a.Unknown()
}

// Schema is the JSON Schema of the arguments.
func Schema() map[string]any {
	return map[string]any{
		"type": "object", "additionalProperties": false, "required": []any{"url"},
		"description": "WebSocket client: one event per text message, reconnecting with backoff",
		"properties": map[string]any{
			"url":                 map[string]any{"type": "string", "description": "ws:// or wss:// URL"},
			"headers":             map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "handshake request headers"},
			"token":               map[string]any{"type": "string", "description": "bearer token for the handshake (use ${env:NAME})"},
			"subprotocols":        map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "subprotocols to offer"},
			"tls":                 streamconn.TLSSchema(),
			"send":                map[string]any{"type": "array", "items": map[string]any{"type": []any{"string", "object", "array"}}, "description": "messages sent after each connect (mappings as JSON); {{ position }} is the last durable position"},
			"position_key":        map[string]any{"type": "string", "description": "dotted path of each JSON message's position (a sequence number), stored with the event for resuming"},
			"reconnect_delay":     streamconn.DurationSchema("first wait before reconnecting (default 1s)"),
			"max_reconnect_delay": streamconn.DurationSchema("longest wait between reconnects (default 1m)"),
			"ping_interval":       streamconn.DurationSchema("how often to ping the server (default 30s)"),
			"ping_timeout":        streamconn.DurationSchema("reconnect when a pong takes longer (default 10s)"),
			"connect_timeout":     streamconn.DurationSchema("time allowed for the handshake (default 30s)"),
			"max_message_size":    map[string]any{"type": "integer", "minimum": 1, "description": "largest message in bytes (default 1 MiB)"},
		},
	}
}

// Source is a running websocket source.
type Source struct {
	cfg    *config
	ref    engine.SourceRef
	clock  engine.Clock
	log    zerolog.Logger
	client *http.Client
}

var _ engine.Source = (*Source)(nil)

// Run connects, emits, and reconnects with backoff until ctx ends.
func (s *Source) Run(ctx context.Context, out engine.Emitter) error {
	pos, err := engine.LastPosition(ctx, out, s.ref)
	if err != nil {
		return fmt.Errorf("read the last durable position: %w", err)
	}
	bo := &streamconn.Backoff{Initial: s.cfg.initial, Max: s.cfg.max}
	for {
		delivered, p, err := s.connection(ctx, out, pos)
		pos = p
		if ctx.Err() != nil {
			return nil
		}
		if delivered > 0 {
			bo.Reset()
		}
		wait := bo.Next()
		s.log.Warn().Err(err).Int("delivered", delivered).Dur("retry_in", wait).Msg("connection ended: reconnecting")
		if !engine.Sleep(ctx, s.clock, wait) {
			return nil
		}
	}
}

var positionRef = regexp.MustCompile(`\{\{\s*position\s*\}\}`)

func (s *Source) connection(ctx context.Context, out engine.Emitter, pos string) (int, string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := streamconn.Header(s.cfg.headers, s.cfg.token)
	dctx, dcancel := context.WithTimeout(ctx, s.cfg.dialTimeout)
	conn, resp, err := ws.Dial(dctx, s.cfg.url, &ws.DialOptions{HTTPClient: s.client, HTTPHeader: h, Subprotocols: s.cfg.subprotocols})
	dcancel()
	if err != nil {
		if resp != nil {
			return 0, pos, fmt.Errorf("handshake: server answered %s", resp.Status)
		}
		return 0, pos, fmt.Errorf("connect: %w", streamconn.Redact(err))
	}
	defer conn.CloseNow()
	conn.SetReadLimit(int64(s.cfg.maxMessage))
	s.log.Info().Str("subprotocol", conn.Subprotocol()).Str("position", pos).Msg("connected")
	for _, m := range s.cfg.send {
		msg := positionRef.ReplaceAllLiteralString(m, pos)
		if err := conn.Write(ctx, ws.MessageText, []byte(msg)); err != nil {
			return 0, pos, fmt.Errorf("send: %w", err)
		}
	}
	go s.keepalive(ctx, conn, cancel)
	delivered := 0
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return delivered, pos, context.Cause(ctx)
			}
			return delivered, pos, fmt.Errorf("read: %w", err)
		}
		if typ != ws.MessageText {
			s.log.Warn().Int("bytes", len(data)).Msg("binary message ignored: only text messages become events")
			continue
		}
		p, err := s.emit(ctx, out, data)
		if err != nil {
			return delivered, pos, err
		}
		if p != "" {
			pos = p
		}
		delivered++
	}
}

var errPingTimeout = errors.New("no pong within ping_timeout")

// keepalive pings every ping_interval; a missing pong ends the connection.
func (s *Source) keepalive(ctx context.Context, conn *ws.Conn, cancel context.CancelCauseFunc) {
	for engine.Sleep(ctx, s.clock, s.cfg.pingEvery) {
		pctx, pcancel := context.WithTimeout(ctx, s.cfg.pingTimeout)
		err := conn.Ping(pctx)
		pcancel()
		if err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("%w: %w", errPingTimeout, err))
			_ = conn.CloseNow()
			return
		}
	}
}

func (s *Source) emit(ctx context.Context, out engine.Emitter, data []byte) (string, error) {
	payload := streamconn.Payload(data)
	pos := ""
	if s.cfg.positionKey != nil {
		if x, ok := lookup(payload, s.cfg.positionKey); ok {
			pos = positionString(x)
		}
	}
	ev := engine.NewEvent(map[string]any{"payload": payload}, s.ref.Name, s.ref.Type, s.clock.Now())
	if pos != "" {
		engine.Meta(ev)["position"] = pos
	}
	_, err := engine.EmitWait(ctx, s.clock, out, s.ref, []engine.Entry{{Event: ev, Position: pos}})
	if fe, ok := engine.IsFilterError(err); ok {
		s.log.Error().Err(fe).Str("position", pos).Msg("event refused by a filter: skipped")
		return pos, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("store event: %w", err)
	}
	return pos, nil
}

func lookup(v any, path []string) (any, bool) {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func positionString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}
