// Package admin is Rulebook's admin listener: health and readiness probes,
// the Prometheus metrics, a JSON API over the running engine (rules, facts,
// recent events, the audit trail, test events, reload), a Server-Sent Events
// stream of events, firings and action results, and the dashboard page that
// shows them, embedded in the binary.
//
// # Access
//
// The listener binds 127.0.0.1:5080 by default. Bound to any other address
// it requires a token: every request but /healthz, /readyz and the
// dashboard's static files must carry "Authorization: Bearer <token>"
// (/api/stream also accepts ?token=, since a browser's EventSource cannot
// send headers). Without a token (loopback only), requests must name a
// loopback host, which defeats DNS rebinding, and POSTs must be JSON, which
// a cross-site form cannot send.
//
// # Endpoints
//
//	GET  /                  the dashboard
//	GET  /healthz           200 while the process serves
//	GET  /readyz            200 {"ready":true}, or 503 with the reasons
//	GET  /metrics           Prometheus metrics (Config.Metrics)
//	GET  /api/rules         {"rules":[RuleInfo...]}
//	GET  /api/facts         {"facts":{ruleset:[fact...]}}; ?ruleset= for one
//	GET  /api/events        {"events":[Entry...]}: recent events; ?limit=
//	POST /api/events        {"ruleset":..,"event":{..}}: inject a test event
//	GET  /api/audit         {"entries":[engine.AuditEntry...]}; ?rule= &ruleset=
//	                        &status= &since= &until= &event= &limit= as `rulebook audit`
//	POST /api/reload        reload the rulebooks; 422 with the error if invalid
//	GET  /api/approvals     {"approvals":[engine.InvocationState...]}: waiting for approval
//	POST /api/approvals/ID  {"decision":"approved"|"rejected","reason":..,"user":..};
//	                        404 when ID does not wait; who decided is recorded
//	POST /api/explain       {"ruleset":..(optional),"event":{..}}: what each rule
//	                        would do with the event now (ExplainResponse); changes nothing
//	GET  /api/stream        Server-Sent Events, see below
//
// Errors are JSON: {"error": "..."}.
//
// # Stream
//
// /api/stream sends each stream entry as `id: <n>`, `event: <kind>`
// (event, firing, action, reload) and `data: <json>`. A client reconnecting
// with Last-Event-ID (or ?after=) gets every later entry still in the ring
// first; if some had already left it, an `event: gap` without an id comes
// first. A new client without either gets only new entries, or the newest
// ?replay=N. A client that falls behind is disconnected instead of slowing
// anyone down; EventSource reconnects and resumes on its own.
//
// The data of every entry says when it happened (EventData.Time,
// FiringData.Time, ReloadData.Time, ActionData.Updated): a client shows
// that, not when it received the entry, which for a replayed one is later.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// DefaultAddress is where the admin listener binds by default.
const DefaultAddress = "127.0.0.1:5080"

// RuleInfo describes one rule and its activity.
type RuleInfo struct {
	Ruleset string `json:"ruleset"`
	Rule    string `json:"rule"`
	Enabled bool   `json:"enabled"`
	// Kind is how its conditions combine: condition, all, any, not_all
	// (engine.RuleKind.String()).
	Kind      string    `json:"kind"`
	Fired     int64     `json:"fired"`
	LastFired time.Time `json:"last_fired,omitzero"`
	// Matched counts its full matches, fired or not; Suppressed those its
	// throttle kept from firing (Throttle names its kind); Consumed the
	// events an earlier rule consumed that its condition meets (single
	// and any rules of rulesets with at most engine.MaxConsumedRules of
	// them: ConsumedCounted). See engine.RuleStats.
	Matched         int64  `json:"matched"`
	Suppressed      int64  `json:"suppressed"`
	Throttle        string `json:"throttle,omitempty"`
	Consumed        int64  `json:"consumed"`
	ConsumedCounted bool   `json:"consumed_counted"`
}

func throttleKind(r *engine.Rule) string {
	if r.Throttle == nil {
		return ""
	}
	return [...]string{engine.OnceWithin: engine.SuppressedOnceWithin, engine.OnceAfter: engine.SuppressedOnceAfter,
		engine.AccumulateWithin: engine.SuppressedAccumulateWithin}[r.Throttle.Kind]
}

// RuleInfoFrom is the RuleInfo of rule r of ruleset rs with counters st
// (summed over engines when several run the same rules).
func RuleInfoFrom(rs string, r *engine.Rule, st engine.RuleStats) RuleInfo {
	return RuleInfo{Ruleset: rs, Rule: r.Name, Enabled: r.Enabled, Kind: r.Kind.String(),
		Fired: st.Fired, LastFired: st.LastFired, Matched: st.Matched, Suppressed: st.Suppressed(),
		Throttle: throttleKind(r), Consumed: st.Consumed, ConsumedCounted: st.ConsumedCounted}
}

// Backend is what the admin API reads and drives: the running engine, its
// journal and dispatcher. Its methods are called from HTTP handlers,
// concurrently.
type Backend interface {
	// Rules returns every rule of every ruleset, in rulebook order.
	Rules() []RuleInfo
	// Facts returns a ruleset's facts (nil when it has none).
	Facts(ruleset string) []map[string]any
	// Audit queries the audit trail, newest first.
	Audit(ctx context.Context, f engine.AuditFilter) ([]engine.AuditEntry, error)
	// Inject evaluates event in ruleset as if a source had sent it. The
	// event has meta.uuid set already. An error is reported to the caller
	// as is.
	Inject(ctx context.Context, ruleset string, event map[string]any) error
	// Reload loads the rulebooks again and swaps them in if valid; an
	// error means nothing changed, and says why.
	Reload(ctx context.Context) error
	// Ready reports whether the engine can take events (sources
	// listening, journal open, plugins started) and, if not, why.
	Ready() (ready bool, reasons []string)
}

// Config configures a Server.
type Config struct {
	// Address is host:port to listen on (DefaultAddress when empty).
	Address string
	// Token, when set, is required as a bearer token. It must be set when
	// Address is not a loopback address.
	Token string
	// Backend is required.
	Backend Backend
	// Metrics serves /metrics (404 when nil).
	Metrics http.Handler
	// Stream is the live stream to serve; nil: the server makes its own
	// with StreamConfig. Publish through Server.Stream either way.
	Stream       *Stream
	StreamConfig StreamConfig
	// Heartbeat is how often an idle stream sends a comment, so proxies
	// and the client notice a dead connection (default 15s).
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a stream client before it is
	// dropped as stuck (default 10s).
	WriteTimeout time.Duration
	Log          zerolog.Logger
	// Clock anchors relative audit times (since=2h); nil: the system clock.
	Clock engine.Clock
}

// Server is the admin listener. Build it with New, then Start and Stop.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	clock    engine.Clock
	stream   *Stream
	handler  http.Handler
	token    []byte // sha256 of the token, nil when none
	draining atomic.Bool
	quit     chan struct{} // closed by Stop: streams end

	mu       sync.Mutex
	state    int
	srv      *http.Server
	addr     net.Addr
	serveErr chan error
	stopOnce sync.Once
	stopErr  error
}

const (
	stateNew = iota
	stateStarted
	stateStopped
)

// New checks cfg and builds the server; nothing listens before Start.
func New(cfg Config) (*Server, error) {
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Backend == nil {
		return nil, errors.New("admin: backend is required")
	}
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("admin: address %q: %w", cfg.Address, err)
	}
	if cfg.Token == "" && !isLoopback(host) {
		return nil, fmt.Errorf("admin: address %q is not a loopback address: a token is required", cfg.Address)
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.StreamConfig.Clock == nil {
		cfg.StreamConfig.Clock = cfg.Clock
	}
	s := &Server{cfg: cfg, log: cfg.Log, clock: cfg.Clock, stream: cfg.Stream, quit: make(chan struct{})}
	if s.stream == nil {
		s.stream = NewStream(cfg.StreamConfig)
	}
	if cfg.Token != "" {
		s.token = hashToken(cfg.Token)
	}
	s.handler = s.routes()
	return s, nil
}

// isLoopback reports whether host (from host:port) only reaches this
// machine: a loopback IP or "localhost". An empty host binds every
// interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Stream returns the live stream; the wiring publishes into it.
func (s *Server) Stream() *Stream { return s.stream }

// Publish appends an entry of kind (KindEvent, KindFiring, KindAction,
// KindReload or another word) with v as data to the live stream.
func (s *Server) Publish(kind string, v any) uint64 { return s.stream.Publish(kind, v) }

// Handler returns the server's HTTP handler (to serve it elsewhere, or in
// tests).
func (s *Server) Handler() http.Handler { return s.handler }

// SetDraining marks the server as shutting down: /readyz answers 503 from
// now on (true) or again asks the backend (false).
func (s *Server) SetDraining(draining bool) { s.draining.Store(draining) }

// Addr returns the address listened on once started (useful with port 0).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns the base URL of the started server ("" before Start).
func (s *Server) URL() string {
	a := s.Addr()
	if a == nil {
		return ""
	}
	return "http://" + a.String()
}

// Start listens on the configured address and serves in the background.
// It returns once the listener is open; a listen error is returned. ctx
// only bounds the start.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateStarted:
		return errors.New("admin: already started")
	case stateStopped:
		return errors.New("admin: stopped")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("admin: listen on %q: %w", s.cfg.Address, err)
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	s.addr = ln.Addr()
	s.serveErr = make(chan error, 1)
	s.state = stateStarted
	srv, serveErr := s.srv, s.serveErr
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		serveErr <- err
	}()
	s.log.Info().Str("address", s.addr.String()).Bool("token", s.token != nil).Msg("admin listening")
	return nil
}

// Stop ends the live streams, stops accepting and waits for running
// requests until ctx ends, then closes what is left. It is safe to call more
// than once, and before Start.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		started := s.state == stateStarted
		s.state = stateStopped
		srv, serveErr := s.srv, s.serveErr
		s.mu.Unlock()
		close(s.quit)
		if !started {
			return
		}
		err := srv.Shutdown(ctx)
		if err != nil {
			_ = srv.Close()
		}
		if serr := <-serveErr; serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			s.stopErr = fmt.Errorf("admin: stop: %w", err)
		}
	})
	return s.stopErr
}
