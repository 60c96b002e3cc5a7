// Package sse is the `sse` source: it subscribes to a Server-Sent Events
// stream and emits one event per SSE message. It resumes after the last
// durable message: each message's id is stored with the event in the
// journal (engine.Entry.Position), and every (re)connection, after a
// restart of Rulebook too, sends it as Last-Event-ID.
//
// The stream is parsed here (the format is a few lines of the HTML
// standard) rather than with a client library: the resume id must be the
// last *durable* one, read from the journal, and the reconnect wait must
// run on the engine's clock (testable, honouring the server's `retry:`),
// which a library's own reconnect loop keeps to itself.
package sse

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/streamconn"
)

// Type is the source type.
const Type = "sse"

// Spec registers the source.
func Spec() engine.SourceSpec {
	return streamconn.Spec(engine.SourceSpec{
		Type:        Type,
		Description: "subscribes to a Server-Sent Events stream; resumes after the last durable event",
		Schema:      Schema(),
	}, parse, func(c *config) *streamconn.TLS { return c.tls }, func(c *config, env streamconn.Env) engine.Source {
		return &Source{cfg: c, ref: env.Ref, clock: env.Clock, log: env.Log,
			// The connect timeout covers the response headers only:
			// the stream itself lasts as long as it lasts.
			client: &http.Client{Transport: &http.Transport{TLSClientConfig: env.TLS, Proxy: http.ProxyFromEnvironment,
				ResponseHeaderTimeout: c.connTimeout}}}
	})
}

type config struct {
	url         string
	headers     map[string]string
	token       string
	tls         *streamconn.TLS
	initial     time.Duration
	max         time.Duration
	idle        time.Duration
	maxEvent    int
	dedupe      bool
	connTimeout time.Duration
}

func parse(args map[string]any) (*config, error) {
	a := streamconn.NewArgs(args)
	c := &config{}
	var err error
	if c.url, err = a.URL("url", "an http:// or https:// URL", "http", "https"); err != nil {
		return nil, err
	}
	if c.headers, err = a.StringMap("headers"); err != nil {
		return nil, err
	}
	if c.token, err = a.String("token", ""); err != nil {
		return nil, err
	}
	if c.tls, err = streamconn.TLSArgs(a); err != nil {
		return nil, err
	}
	if c.initial, c.max, err = a.Reconnect(); err != nil {
		return nil, err
	}
	if c.idle, err = a.Duration("idle_timeout", 0); err != nil {
		return nil, err
	}
	if c.connTimeout, err = a.Duration("connect_timeout", 30*time.Second); err != nil {
		return nil, err
	}
	if c.maxEvent, err = a.Int("max_event_size", 1<<20, 1, 64<<20); err != nil {
		return nil, err
	}
	if c.dedupe, err = a.Bool("dedupe", false); err != nil {
		return nil, err
	}
	return c, a.Unknown()
}

// Schema is the JSON Schema of the arguments.
func Schema() map[string]any {
	return map[string]any{
		"type": "object", "additionalProperties": false, "required": []any{"url"},
		"description": "Server-Sent Events client: one event per message; Last-Event-ID is the last durable id",
		"properties": map[string]any{
			"url":                 map[string]any{"type": "string", "description": "http:// or https:// URL of the stream"},
			"headers":             map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "request headers"},
			"token":               map[string]any{"type": "string", "description": "bearer token (use ${env:NAME})"},
			"tls":                 streamconn.TLSSchema(),
			"reconnect_delay":     streamconn.DurationSchema("first wait before reconnecting (default 1s; the server's retry: replaces it)"),
			"max_reconnect_delay": streamconn.DurationSchema("longest wait between reconnects (default 1m)"),
			"idle_timeout":        streamconn.DurationSchema("reconnect when nothing (not even a comment) arrived for this long (default: never)"),
			"connect_timeout":     streamconn.DurationSchema("time allowed for the response headers (default 30s)"),
			"max_event_size":      map[string]any{"type": "integer", "minimum": 1, "description": "longest line in bytes (default 1 MiB)"},
			"dedupe":              map[string]any{"type": "boolean", "description": "also use the message id as dedupe key (for servers that replay; default false)"},
		},
	}
}

// Source is a running sse source.
type Source struct {
	cfg    *config
	ref    engine.SourceRef
	clock  engine.Clock
	log    zerolog.Logger
	client *http.Client
}

var _ engine.Source = (*Source)(nil)

// errStop ends Run: the context ended.
var errStop = errors.New("stopped")

// Run connects, emits, and reconnects with backoff until ctx ends.
func (s *Source) Run(ctx context.Context, out engine.Emitter) error {
	lastID, err := engine.LastPosition(ctx, out, s.ref)
	if err != nil {
		return fmt.Errorf("read the last durable event id: %w", err)
	}
	if lastID != "" {
		s.log.Info().Str("last_event_id", lastID).Msg("resuming after the last durable event")
	}
	bo := &streamconn.Backoff{Initial: s.cfg.initial, Max: s.cfg.max}
	for {
		st := &stream{s: s, out: out, lastID: lastID, bo: bo}
		err := st.run(ctx)
		lastID = st.lastID
		if ctx.Err() != nil || errors.Is(err, errStop) {
			return nil
		}
		wait := bo.Next()
		ev := s.log.Warn()
		if st.delivered > 0 {
			ev = s.log.Info()
		}
		ev.Err(err).Int("delivered", st.delivered).Dur("retry_in", wait).Str("last_event_id", lastID).Msg("stream ended: reconnecting")
		if !engine.Sleep(ctx, s.clock, wait) {
			return nil
		}
	}
}

// stream is one connection.
type stream struct {
	s   *Source
	out engine.Emitter
	// lastID is the id of the last durable message: what a reconnect sends.
	lastID    string
	bo        *streamconn.Backoff
	delivered int
}

func (st *stream) run(ctx context.Context) error {
	s := st.s
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	for k, v := range streamconn.Header(s.cfg.headers, s.cfg.token) {
		req.Header[k] = v
	}
	if st.lastID != "" {
		req.Header.Set("Last-Event-ID", st.lastID)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("connect: %w", streamconn.Redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("server answered %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fmt.Errorf("server answered content type %q, want text/event-stream", resp.Header.Get("Content-Type"))
	}
	s.log.Info().Str("last_event_id", st.lastID).Msg("stream connected")
	var body io.Reader = resp.Body
	if s.cfg.idle > 0 {
		idle := engine.AfterFunc(s.clock, s.cfg.idle, cancel)
		defer idle.Stop()
		body = &idleReader{r: resp.Body, reset: func() {
			idle.Stop()
			idle = engine.AfterFunc(s.clock, s.cfg.idle, cancel)
		}}
	}
	p := newParser(body, s.cfg.maxEvent, st.lastID)
	for {
		msg, err := p.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("server closed the stream")
			}
			return err
		}
		if msg.retry > 0 {
			st.bo.SetInitial(msg.retry)
		}
		if !msg.dispatch {
			continue
		}
		if err := st.emit(ctx, msg); err != nil {
			return err
		}
		st.delivered++
		st.bo.Reset()
	}
}

func (st *stream) emit(ctx context.Context, msg message) error {
	s := st.s
	payload := streamconn.Payload([]byte(msg.data))
	meta := map[string]any{"event": msg.event}
	if msg.id != "" {
		meta["id"] = msg.id
	}
	ev := engine.NewEvent(map[string]any{"payload": payload, engine.MetaKey: meta}, s.ref.Name, s.ref.Type, s.clock.Now())
	entry := engine.Entry{Event: ev, Position: msg.id}
	if s.cfg.dedupe && msg.id != "" {
		entry.DedupeKey = msg.id
	}
	_, err := engine.EmitWait(ctx, s.clock, st.out, s.ref, []engine.Entry{entry})
	if fe, ok := engine.IsFilterError(err); ok {
		// Refused by the source's filters: sending it again cannot help.
		s.log.Error().Err(fe).Str("event_id", msg.id).Msg("event refused by a filter: skipped")
		st.lastID = msg.id
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return errStop
		}
		return fmt.Errorf("store event: %w", err)
	}
	st.lastID = msg.id
	return nil
}

type idleReader struct {
	r     io.Reader
	reset func()
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.reset()
	}
	return n, err
}

// message is one parsed block of the stream.
type message struct {
	// dispatch is set for a message to deliver (its data buffer was not
	// empty); a block of only id/retry fields or comments is not.
	dispatch bool
	event    string
	data     string
	// id is the last event ID after this block (it carries over blocks
	// without an id field, as the standard says).
	id    string
	retry time.Duration
}

// parser reads the event stream format of the HTML standard
// (text/event-stream): lines end with CRLF, LF or CR; a blank line
// dispatches; "data", "event", "id" and "retry" fields; ":" comments.
type parser struct {
	r       *bufio.Reader
	max     int
	lastID  string
	pending []byte
}

func newParser(r io.Reader, max int, lastID string) *parser {
	return &parser{r: bufio.NewReaderSize(r, 16<<10), max: max, lastID: lastID}
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// line returns the next line without its end.
func (p *parser) line() ([]byte, error) {
	var buf []byte
	for {
		b, err := p.r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch b {
		case '\n':
			return buf, nil
		case '\r':
			if nb, err := p.r.Peek(1); err == nil && nb[0] == '\n' {
				_, _ = p.r.ReadByte()
			}
			return buf, nil
		}
		if len(buf) >= p.max {
			return nil, fmt.Errorf("line longer than max_event_size (%d bytes)", p.max)
		}
		buf = append(buf, b)
	}
}

func (p *parser) next() (message, error) {
	var m message
	var data []byte
	var hasData, any bool
	for {
		l, err := p.line()
		if err != nil {
			return message{}, err
		}
		if p.pending == nil {
			p.pending = []byte{}
			l = bytes.TrimPrefix(l, bom)
		}
		if len(l) == 0 {
			if !any {
				continue
			}
			m.id = p.lastID
			if m.event == "" {
				m.event = "message" // the default type, as EventSource has it
			}
			if hasData {
				m.dispatch = true
				m.data = strings.TrimSuffix(string(data), "\n")
			}
			return m, nil
		}
		if l[0] == ':' {
			continue
		}
		any = true
		field, value := l, []byte(nil)
		if i := bytes.IndexByte(l, ':'); i >= 0 {
			field, value = l[:i], l[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "data":
			if len(data)+len(value) > p.max {
				return message{}, fmt.Errorf("event data longer than max_event_size (%d bytes)", p.max)
			}
			data = append(append(data, value...), '\n')
			hasData = true
		case "event":
			m.event = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				p.lastID = string(value)
			}
		case "retry":
			if n, err := strconv.ParseUint(string(value), 10, 63); err == nil && len(value) > 0 {
				m.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}
