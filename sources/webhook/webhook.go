// Package webhook is the `webhook` source: it receives HTTP requests from any
// provider (GitHub, GitLab, Stripe, Shopify, Slack, Standard Webhooks
// senders, scripts, ...) and turns each accepted request into one event.
//
// # Arguments
//
// Listening:
//
//	host: 0.0.0.0          # interface (default 0.0.0.0), with port
//	port: 5000             # required unless address is set
//	address: 127.0.0.1:5000  # instead of host and port
//	path: /hooks/github    # the one path served (exact match; default "/")
//	paths: [/a, /b]        # several paths, instead of path
//	methods: [POST]        # allowed methods (default POST), others get 405
//	read_header_timeout: 10s  # listener timeouts (defaults 10s, 30s, 60s, 120s);
//	read_timeout: 30s         # a slow client cannot hold the listener
//	write_timeout: 60s
//	idle_timeout: 120s
//	tls:                   # serve HTTPS
//	  cert: /etc/rulebook/tls.crt
//	  key: /etc/rulebook/tls.key
//	  client_ca: /etc/rulebook/clients.pem   # require client certificates (mTLS)
//	  client_names: [alertmanager.example.com] # accepted CN or DNS SAN (others 403)
//
// Several sources may share one address (each on its own paths); they must
// then agree on tls and the timeouts. The tls files are read again when they
// change (a renewed certificate is served from the next handshake on).
//
// Body and limits:
//
//	content_type: application/json  # parse every body as this type, whatever
//	                                # the sender says (json, form, xml, text, raw)
//	max_body_bytes: 4194304         # default 4 MiB; larger gets 413
//	allow_ips: [10.0.0.0/8, 127.0.0.1]  # others get 403
//
// JSON (objects, arrays, scalars), application/x-www-form-urlencoded (a map;
// repeated fields become lists), XML (a map: elements are keys, repeated
// elements lists, attributes "@name", text "#text" when mixed with elements),
// text/* and application/octet-stream or no Content-Type (a string) are
// parsed; other types get 415, unparseable bodies 400 with the reason.
//
// Authentication (each optional; all configured must pass, except that token
// and basic are alternatives since both use the Authorization header; 401
// never says which check failed):
//
//	token: ${env:HOOK_TOKEN}        # bearer token(s): a string or a list
//	basic:                          # basic auth: one mapping or a list
//	  username: alertmanager
//	  password: ${env:AM_PASSWORD}
//	header_token:                   # shared token in a named header
//	  header: X-Gitlab-Token
//	  tokens: [${env:GITLAB_TOKEN}]
//	hmac:                           # body signature
//	  preset: github                # github | shopify | slack | stripe | standard
//	  secrets: [${env:NEW}, ${env:OLD}]  # several at once to rotate
//	hmac:                           # or a generic scheme
//	  header: X-Signature
//	  algorithm: sha256             # sha1 | sha256 (default) | sha512
//	  encoding: hex                 # hex (default) | base64
//	  prefix: "sha256="             # optional
//	  secret: ${env:SECRET}
//	timestamp_tolerance: 5m         # slack, stripe, standard (default 5m)
//
// Secrets are best given as ${env:NAME} or ${file:PATH} references.
//
// Without any of token, basic, header_token, hmac or tls.client_ca, the
// source must listen on a loopback address (127.0.0.1, ::1, localhost): on
// any other, the default 0.0.0.0 included, it is refused at load unless it
// says so explicitly (a warning is logged at start):
//
//	insecure: true                  # accept anyone who can reach the listener
//
// Idempotency and ordering:
//
//	dedupe:
//	  header: X-GitHub-Delivery     # or
//	  expr: payload.id              # an expression over the request
//	  window: 24h                   # how long keys are remembered (default: the journal's)
//	order:
//	  key: payload.object.id        # expression: the ordering key
//	  timestamp: payload.created    # expression: RFC 3339 text, unix seconds or ms, or a date()
//
// A repeat of a dedupe key within the window is answered 200 with status
// "duplicate" and not processed again; an event whose timestamp is older than
// the newest accepted for its order key is answered 200 with status "stale"
// and not processed. Expressions (github.com/expr-lang/expr, compiled at load)
// see headers (canonical names such as headers["X-Github-Delivery"], and
// lowercase ones such as headers["x-github-delivery"]), query, payload,
// method and path.
//
// With dedupe set, every request must have a key: one without (the header
// missing or empty, the expression failing or giving nothing) is answered 400
// with the reason and not processed, since a resend of it could not be told
// apart. With the standard hmac preset, dedupe on webhook-id (or svix-id)
// uses the id the signature covers, from whichever header family (webhook-*
// or svix-*) was verified: a message resent under the other spelling is a
// duplicate; expressions see headers["webhook-id"] and headers["svix-id"] as
// that id too. An order expression that fails or yields nothing leaves the
// event unordered (logged); it is accepted and processed.
//
// # Events
//
//	payload: <the parsed body>   # a top-level JSON array stays one array
//	meta:
//	  headers: {...}     # without Authorization, Cookie, signature and token headers
//	  query: {...}
//	  endpoint: /hooks/github
//	  method: POST
//	  remote_addr: 10.1.2.3:51234
//	  uuid, source: {name, type: webhook}, received_at
package webhook

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// Type is the source type in rulebooks.
const Type = "webhook"

var _ engine.Source = (*Source)(nil)

// Spec registers the webhook source. Every webhook source listens through
// hub, which the CLI shares with the other HTTP sources and stops on
// shutdown.
func Spec(hub *httpingest.Hub) engine.SourceSpec {
	return engine.SourceSpec{
		Type:        Type,
		Description: "receive events over HTTP(S): any provider's webhooks, with signatures, TLS, dedupe and ordering",
		Check:       Check,
		Schema:      Schema(),
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			return New(hub, cfg)
		},
	}
}

// ownKeys are the webhook's keys beyond httpingest.SettingsKeys.
var ownKeys = []string{"dedupe", "order"}

// Schema is the JSON Schema (draft 2020-12) of the webhook arguments.
func Schema() map[string]any {
	props := httpingest.SettingsSchema()
	props["dedupe"] = map[string]any{
		"type": "object", "additionalProperties": false,
		"description": "answer repeats 200 without processing them again",
		"properties": map[string]any{
			"header": map[string]any{"type": "string", "description": "header holding the delivery id (X-GitHub-Delivery, webhook-id)"},
			"expr":   map[string]any{"type": "string", "description": "expression over headers, query, payload, method, path giving the key"},
			"window": map[string]any{"type": []any{"string", "number"}, "description": `how long keys are remembered (a duration like "24h", or seconds)`},
		},
	}
	props["order"] = map[string]any{
		"type": "object", "additionalProperties": false, "required": []any{"key", "timestamp"},
		"description": "answer events older than the newest accepted for their key 200 without processing them",
		"properties": map[string]any{
			"key":       map[string]any{"type": "string", "description": "expression giving the ordering key"},
			"timestamp": map[string]any{"type": "string", "description": "expression giving the event time: RFC 3339 text, unix seconds or milliseconds, or a date()"},
		},
	}
	return httpingest.ArgsSchema(Type, "webhook source arguments", props)
}

// config is the decoded arguments.
type config struct {
	http         httpingest.Settings
	dedupeHeader string
	// dedupeVerified: the dedupe header is the Standard Webhooks id
	// (webhook-id or svix-id) and the standard preset verifies it, so the
	// key is the id the signature covers, whichever header family carried
	// it.
	dedupeVerified bool
	dedupeExpr     *vm.Program
	dedupeWindow   time.Duration
	orderKey       *vm.Program
	orderTime      *vm.Program
}

// Check validates args as written in the rulebook: secret references are
// not resolved. Errors are *engine.ArgError naming the key.
func Check(args map[string]any) error {
	_, err := decode(args, false)
	return err
}

func decode(args map[string]any, resolved bool) (*config, error) {
	if err := httpingest.CheckKeys(args, ownKeys...); err != nil {
		return nil, err
	}
	hs, err := httpingest.DecodeSettings(args, resolved, httpingest.Defaults{Path: "/"})
	if err != nil {
		return nil, err
	}
	c := &config{http: hs}
	if v, ok := args["dedupe"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, engine.ArgErrorf([]string{"dedupe"}, "must be a mapping")
		}
		if err := httpingest.OnlyKeys([]string{"dedupe"}, m, "header", "expr", "window"); err != nil {
			return nil, err
		}
		h, hasH := m["header"]
		x, hasX := m["expr"]
		switch {
		case hasH && hasX:
			return nil, engine.ArgErrorf([]string{"dedupe", "expr"}, "cannot be combined with header")
		case hasH:
			s, ok := h.(string)
			if !ok || s == "" {
				return nil, engine.ArgErrorf([]string{"dedupe", "header"}, "must be a header name")
			}
			c.dedupeHeader = http.CanonicalHeaderKey(s)
			c.dedupeVerified = (c.dedupeHeader == "Webhook-Id" || c.dedupeHeader == "Svix-Id") && hs.Verifier.SignsDeliveryID()
		case hasX:
			if c.dedupeExpr, err = compile([]string{"dedupe", "expr"}, x); err != nil {
				return nil, err
			}
		default:
			return nil, engine.ArgErrorf([]string{"dedupe"}, "needs header or expr")
		}
		if w, ok := m["window"]; ok {
			if c.dedupeWindow, err = httpingest.ParseDuration(w); err != nil {
				return nil, &engine.ArgError{Path: []string{"dedupe", "window"}, Err: err}
			}
		}
	}
	if v, ok := args["order"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, engine.ArgErrorf([]string{"order"}, "must be a mapping")
		}
		if err := httpingest.OnlyKeys([]string{"order"}, m, "key", "timestamp"); err != nil {
			return nil, err
		}
		if _, ok := m["key"]; !ok {
			return nil, engine.ArgErrorf([]string{"order", "key"}, "key is required with order")
		}
		if _, ok := m["timestamp"]; !ok {
			return nil, engine.ArgErrorf([]string{"order", "timestamp"}, "timestamp is required with order")
		}
		if c.orderKey, err = compile([]string{"order", "key"}, m["key"]); err != nil {
			return nil, err
		}
		if c.orderTime, err = compile([]string{"order", "timestamp"}, m["timestamp"]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// exprEnv is what dedupe and order expressions see.
type exprEnv struct {
	// Headers has every safe header twice: under its canonical name and in
	// lowercase.
	Headers map[string]any `expr:"headers"`
	Query   map[string]any `expr:"query"`
	Payload any            `expr:"payload"`
	Method  string         `expr:"method"`
	Path    string         `expr:"path"`
}

func compile(path []string, v any) (*vm.Program, error) {
	src, ok := v.(string)
	if !ok || strings.TrimSpace(src) == "" {
		return nil, engine.ArgErrorf(path, "must be an expression string")
	}
	// Bounded before expr parses it: its parser recurses per bracket and a
	// deeply nested expression would overflow the stack (issue 14).
	if err := engine.CheckExprBounds(src); err != nil {
		return nil, engine.ArgErrorf(path, "expression: %v", err)
	}
	p, err := expr.Compile(src, expr.Env(exprEnv{}))
	if err != nil {
		return nil, engine.ArgErrorf(path, "expression %q: %v", src, err)
	}
	return p, nil
}

// Source is a running webhook source. Its Listener, Paths and Run are the
// httpingest.Service's; what is its own is build.
type Source struct {
	httpingest.Service
	cfg *config
}

// New builds a webhook source from resolved arguments.
func New(hub *httpingest.Hub, sc engine.SourceConfig) (*Source, error) {
	base, err := httpingest.NewBase(hub, sc, Type)
	if err != nil {
		return nil, err
	}
	c, err := decode(sc.Args, true)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: c}
	s.Service = base.Service(c.http, s.build)
	return s, nil
}

// build turns a checked request into its one entry.
func (s *Source) build(req *httpingest.Request) ([]engine.Entry, error) {
	r := req.HTTP
	headers := req.SafeHeaders()
	// Most deliveries carry no query: skip parsing it into url.Values only
	// to copy that map again.
	query := map[string]any{}
	if r.URL.RawQuery != "" {
		query = httpingest.ValuesMap(r.URL.Query())
	}
	meta := map[string]any{
		engine.MetaHeaders: headers,
		"query":            query,
		"endpoint":         r.URL.Path,
		"method":           r.Method,
		"remote_addr":      r.RemoteAddr,
	}
	ev := engine.NewEvent(map[string]any{"payload": req.Payload, engine.MetaKey: meta}, s.Name, s.Ref.Type, req.Received)
	entry := engine.Entry{Event: ev, DedupeWindow: s.cfg.dedupeWindow}

	var env *exprEnv
	envFor := func() *exprEnv {
		if env == nil {
			hs := make(map[string]any, 2*len(headers))
			for k, v := range headers {
				hs[k] = v
				hs[strings.ToLower(k)] = v
			}
			if id := req.Verified.DeliveryID; id != "" {
				// Standard Webhooks: both spellings of the id are the one
				// the signature covers, never an unsigned header beside it.
				for _, k := range []string{"Webhook-Id", "webhook-id", "Svix-Id", "svix-id"} {
					hs[k] = id
				}
			}
			env = &exprEnv{Headers: hs, Query: query, Payload: req.Payload, Method: r.Method, Path: r.URL.Path}
		}
		return env
	}
	// With a dedupe key configured, a request without one is refused (400):
	// processed without a key, a resend would run its actions again.
	switch {
	case s.cfg.dedupeVerified:
		// The signature check refuses a request without an id.
		entry.DedupeKey = req.Verified.DeliveryID
	case s.cfg.dedupeHeader != "":
		entry.DedupeKey = r.Header.Get(s.cfg.dedupeHeader)
		if entry.DedupeKey == "" {
			return nil, fmt.Errorf("dedupe: header %s is missing or empty: a delivery without its id cannot be deduplicated", s.cfg.dedupeHeader)
		}
	case s.cfg.dedupeExpr != nil:
		k, err := evalKey(s.cfg.dedupeExpr, envFor())
		if err == nil && k == "" {
			err = errors.New("gave no value")
		}
		if err != nil {
			return nil, fmt.Errorf("dedupe: expr %v: a delivery without its key cannot be deduplicated", err)
		}
		entry.DedupeKey = k
	}
	if s.cfg.orderKey != nil {
		key, err := evalKey(s.cfg.orderKey, envFor())
		if err != nil {
			s.Log.Warn().Err(err).Str("key", "order.key").Msg("expression failed: event not ordered")
		}
		ts, err := s.evalTime(envFor())
		if err != nil {
			s.Log.Warn().Err(err).Msg("order.timestamp gave no time: event not ordered")
		} else if key != "" {
			entry.OrderKey, entry.Timestamp = key, ts
		}
	}
	return []engine.Entry{entry}, nil
}

// evalKey runs a key expression: its value as text, "" for null, an error
// when it fails or gives something other than a string, number or boolean.
func evalKey(p *vm.Program, env *exprEnv) (string, error) {
	v, err := expr.Run(p, env)
	if err != nil {
		return "", fmt.Errorf("failed: %w", err)
	}
	k, ok := keyString(v)
	if !ok {
		return "", fmt.Errorf("gave %s, not a string or number", httpingest.ValueKind(v))
	}
	return k, nil
}

func keyString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

func (s *Source) evalTime(env *exprEnv) (time.Time, error) {
	v, err := expr.Run(s.cfg.orderTime, env)
	if err != nil {
		return time.Time{}, err
	}
	return ToTime(v)
}

// ToTime reads an event time: a time.Time (expr's date()), RFC 3339 text,
// or a number of unix seconds (milliseconds when above 1e12), also as text.
func ToTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, nil
			}
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return unixTime(f), nil
		}
		return time.Time{}, fmt.Errorf("time %q is neither RFC 3339 nor unix seconds", x)
	case int:
		return unixTime(float64(x)), nil
	case int64:
		return unixTime(float64(x)), nil
	case float64:
		return unixTime(x), nil
	}
	return time.Time{}, fmt.Errorf("time is %T, not text or a number", v)
}

func unixTime(f float64) time.Time {
	if math.Abs(f) > 1e12 {
		ms := int64(f)
		return time.UnixMilli(ms)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}
