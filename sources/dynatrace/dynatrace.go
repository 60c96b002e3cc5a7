// Package dynatrace is the `dynatrace` source: it receives the problem
// notifications of a Dynatrace custom webhook integration and turns each
// into one `problem` event, through the same durable HTTP ingest path as the
// webhook source (httpingest): 200 only once the event is durable, 503 with
// Retry-After under back-pressure, 400 with the reason for a payload that is
// not a problem notification.
//
// # Authentication is required
//
// Dynatrace does not sign its requests, so anybody who can reach the
// endpoint could open problems. The source therefore refuses to load unless
// a credential is configured: a bearer token (token, sent by Dynatrace as a
// custom header "Authorization: Bearer <token>"), a token in a named header
// (header_token), or basic auth (basic). A source behind something that
// authenticates for it can say so explicitly with insecure_no_auth: true.
//
// # Arguments
//
// Every argument of the webhook source about listening, TLS, limits and
// authentication (host, port, address, path, paths, methods, tls,
// max_body_bytes, allow_ips, token, basic, header_token, the timeouts) means
// the same here; path defaults to "/" and bodies are read as JSON whatever
// their Content-Type. Beyond those:
//
//	insecure_no_auth: false   # accept unauthenticated requests (not recommended)
//	dedupe_window: 24h        # how long a problem state is remembered (default 24h)
//
// # Events
//
//	problem:
//	  PID: "-123456789"          # always a string
//	  ProblemID: P-2611
//	  State: OPEN                # or RESOLVED, upper case
//	  ProblemTitle, ProblemSeverity, ProblemImpact, ProblemURL
//	  ImpactedEntities: [{type: HOST, name: web1, entity: HOST-...}]
//	  ProblemDetailsJSON: {...}  # an object, also when the template quoted it
//	  Tags: [env:prod, team:web] # the comma-separated {Tags} as a list
//	  ...                        # any other field of the template, as sent
//	meta:
//	  hosts: [web1]              # names of the impacted entities of type HOST
//	  headers, endpoint, remote_addr, uuid, source, received_at
//
// A notification repeating the PID and State of one seen within
// dedupe_window is answered 200 and not processed again: Dynatrace sends
// OPEN once and RESOLVED once per problem, and a retry or an "always send"
// update of the same state does not run a remediation twice.
package dynatrace

import (
	"errors"
	"fmt"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// Type is the source type in rulebooks.
const Type = "dynatrace"

// DefaultDedupeWindow is how long a problem state is remembered by default.
const DefaultDedupeWindow = 24 * time.Hour

var _ engine.Source = (*Source)(nil)

// Spec registers the dynatrace source. It listens through hub, which the CLI
// shares with the other HTTP sources and stops on shutdown.
func Spec(hub *httpingest.Hub) engine.SourceSpec {
	return engine.SourceSpec{
		Type:        Type,
		Description: "receive Dynatrace problem notifications (custom webhook integration); a token is required",
		Check:       Check,
		Schema:      Schema(),
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			return New(hub, cfg)
		},
	}
}

var ownKeys = []string{"insecure_no_auth", "dedupe_window"}

// Schema is the JSON Schema (draft 2020-12) of the dynatrace arguments.
func Schema() map[string]any {
	props := httpingest.SettingsSchema()
	delete(props, "hmac")
	delete(props, "timestamp_tolerance")
	delete(props, "insecure")
	props["insecure_no_auth"] = map[string]any{"type": "boolean", "description": "accept requests without credentials; Dynatrace does not sign its requests, so only behind something that authenticates them (default false)"}
	props["dedupe_window"] = map[string]any{"type": []any{"string", "number"}, "description": `how long a problem state (PID, State) is remembered (default "24h"; a duration or seconds)`}
	return httpingest.ArgsSchema(Type, "dynatrace source arguments", props,
		map[string]any{"anyOf": []any{
			map[string]any{"required": []any{"token"}},
			map[string]any{"required": []any{"header_token"}},
			map[string]any{"required": []any{"basic"}},
			map[string]any{"required": []any{"insecure_no_auth"}, "properties": map[string]any{"insecure_no_auth": map[string]any{"const": true}}},
		}},
	)
}

// settingsKeys are the httpingest keys that make sense for Dynatrace: it
// neither signs bodies nor sends timestamps.
func settingsKeys() []string {
	var out []string
	for _, k := range httpingest.SettingsKeys {
		if k != "hmac" && k != "timestamp_tolerance" && k != "insecure" {
			out = append(out, k)
		}
	}
	return out
}

type config struct {
	http         httpingest.Settings
	noAuth       bool
	dedupeWindow time.Duration
}

// Check validates args as written in the rulebook (secret references not
// resolved). Errors are *engine.ArgError naming the key.
func Check(args map[string]any) error {
	_, err := decode(args, false)
	return err
}

func decode(args map[string]any, resolved bool) (*config, error) {
	known := append(settingsKeys(), ownKeys...)
	if err := httpingest.OnlyKeys(nil, args, known...); err != nil {
		var ae *engine.ArgError
		if errors.As(err, &ae) && len(ae.Path) == 1 && (ae.Path[0] == "hmac" || ae.Path[0] == "timestamp_tolerance") {
			return nil, engine.ArgErrorf(ae.Path, "dynatrace does not sign its requests: use token, header_token or basic")
		}
		if errors.As(err, &ae) && len(ae.Path) == 1 && ae.Path[0] == "insecure" {
			return nil, engine.ArgErrorf(ae.Path, "dynatrace requires credentials: set token, header_token or basic (or insecure_no_auth: true to accept anyone who can reach the endpoint)")
		}
		return nil, err
	}
	noAuth, err := httpingest.BoolArg(args, "insecure_no_auth", false)
	if err != nil {
		return nil, err
	}
	// Dynatrace requires credentials (or insecure_no_auth) on every
	// address, loopback too, checked below with its own message: stricter
	// than the listeners' rule, which is therefore not applied here.
	hs, err := httpingest.DecodeSettings(args, resolved, httpingest.Defaults{Path: "/", Insecure: true})
	if err != nil {
		return nil, err
	}
	hs.Insecure = noAuth
	if hs.ContentType == "" {
		hs.ContentType = "application/json"
	}
	c := &config{http: hs, noAuth: noAuth}
	hasAuth := len(hs.Auth.BearerTokens) > 0 || len(hs.Auth.Basic) > 0 || hs.Auth.HeaderToken != nil
	switch {
	case !hasAuth && !c.noAuth:
		return nil, engine.ArgErrorf([]string{"token"}, "dynatrace does not sign its requests: set token, header_token or basic (or insecure_no_auth: true to accept anyone who can reach the endpoint)")
	case hasAuth && c.noAuth:
		return nil, engine.ArgErrorf([]string{"insecure_no_auth"}, "cannot be combined with token, header_token or basic")
	}
	if c.dedupeWindow, err = httpingest.DurationArg(args, "dedupe_window", DefaultDedupeWindow); err != nil {
		return nil, err
	}
	return c, nil
}

// Source is a running dynatrace source. Its Listener, Paths and Run are the
// httpingest.Service's; what is its own is build.
type Source struct {
	httpingest.Service
	cfg *config
}

// New builds a dynatrace source from resolved arguments.
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

func (s *Source) build(req *httpingest.Request) ([]engine.Entry, error) {
	p, err := Decode(req.Payload)
	if err != nil {
		return nil, fmt.Errorf("dynatrace problem notification: %w", err)
	}
	meta := map[string]any{
		engine.MetaHosts:   p.Hosts,
		engine.MetaHeaders: req.SafeHeaders(),
		"endpoint":         req.HTTP.URL.Path,
		"remote_addr":      req.HTTP.RemoteAddr,
	}
	ev := engine.NewEvent(map[string]any{"problem": p.Fields, engine.MetaKey: meta}, s.Name, s.Ref.Type, req.Received)
	return []engine.Entry{{Event: ev, DedupeKey: p.DedupeKey(), DedupeWindow: s.cfg.dedupeWindow}}, nil
}
