package httpingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Listener timeouts used when a Listener leaves them zero.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	// DefaultShutdownGrace bounds how long a stopping registration waits for
	// its requests in flight.
	DefaultShutdownGrace = 10 * time.Second
	// DefaultLinger is how long a listener stays open after its last path
	// left, so that a source restarted by a reload finds it still bound.
	DefaultLinger = 5 * time.Second
)

// ErrHubStopped is returned by Register after Stop.
var ErrHubStopped = errors.New("http hub is stopped")

// TLSFiles configures TLS on a listener. With ClientCA set, clients must
// present a certificate that chains to one of its CAs (mTLS).
type TLSFiles struct {
	Cert     string
	Key      string
	ClientCA string
}

// Timeouts of a listener. ReadHeader bounds the request line and headers,
// Read the whole request including the body, Idle a kept-alive connection
// between requests, Write the time from the end of the headers to the end
// of the response (it must cover the durable write). Zero: the default.
type Timeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.ReadHeader, DefaultReadHeaderTimeout)
	def(&t.Read, DefaultReadTimeout)
	def(&t.Write, DefaultWriteTimeout)
	def(&t.Idle, DefaultIdleTimeout)
	return t
}

// Listener is one listening address and its transport settings. Every
// registration on the same Address must agree on TLS and Timeouts.
type Listener struct {
	// Address is host:port; port 0 picks a free port (see Hub.Lookup).
	Address  string
	TLS      *TLSFiles
	Timeouts Timeouts
}

// HubConfig configures a Hub.
type HubConfig struct {
	Log zerolog.Logger
	// ShutdownGrace bounds how long Serve waits for requests in flight when
	// its context ends. Zero: DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Linger keeps a listener open this long after its last path left, and
	// answers the paths that left 503 with Retry-After meanwhile, so a source
	// restarted by a reload causes no refused connections. Zero:
	// DefaultLinger; negative: close at once.
	Linger time.Duration
	// OnReject, when set, is told of every request a source's endpoint
	// refused before it became an event, with the reason (one of the
	// Reject* constants), for metrics. It must not block.
	OnReject func(src engine.SourceRef, reason string)
	// Clock times the linger window. Nil: engine.SystemClock. A Clock that
	// is not an engine.TimerClock gets real timers.
	Clock engine.Clock
}

// Hub owns the HTTP listeners of the sources, so several sources (webhook,
// alertmanager, dynatrace, ...) can share one address, each on its own
// paths.
//
// Lifecycle: the CLI builds one Hub with NewHub and hands it to every HTTP
// source's Spec. A listener opens when the first path is registered on its
// address and closes when the last one is removed (after HubConfig.Linger,
// so a reloaded source rebinds nothing), so the hub needs no Start:
// a source's Run calls Serve, which binds (or joins) the listener, serves
// until Run's context ends, then unregisters and waits for its requests in
// flight. Stop closes every listener and waits for them; it is idempotent,
// and Register fails with ErrHubStopped afterwards.
type Hub struct {
	log      zerolog.Logger
	grace    time.Duration
	linger   time.Duration
	onReject func(src engine.SourceRef, reason string)
	clock    engine.Clock
	bg       sync.WaitGroup // lingering listeners being closed

	mu       sync.Mutex
	servers  map[string]*server
	stopped  bool
	stopCh   chan struct{} // closed when Stop begins
	stopDone chan struct{} // closed when Stop has closed every listener
}

// NewHub returns a Hub with no listeners.
func NewHub(cfg HubConfig) *Hub {
	g := cfg.ShutdownGrace
	if g <= 0 {
		g = DefaultShutdownGrace
	}
	l := cfg.Linger
	switch {
	case l == 0:
		l = DefaultLinger
	case l < 0:
		l = 0
	}
	c := cfg.Clock
	if c == nil {
		c = engine.SystemClock{}
	}
	return &Hub{log: cfg.Log, grace: g, linger: l, onReject: cfg.OnReject, clock: c, servers: map[string]*server{}, stopCh: make(chan struct{}), stopDone: make(chan struct{})}
}

// OnReject returns HubConfig.OnReject, for the endpoints of the hub's
// sources.
func (h *Hub) OnReject() func(src engine.SourceRef, reason string) { return h.onReject }

type server struct {
	address string
	lst     Listener
	ln      net.Listener
	srv     *http.Server
	done    chan struct{} // closed when Serve returned

	rmu    sync.RWMutex
	routes map[string]*route
	// gone are paths that left, answered 503 until their time on now;
	// guarded by rmu.
	gone map[string]time.Time
	now  func() time.Time

	// lingerTimer closes the listener once its last path left; guarded by
	// the hub's mu.
	lingerTimer engine.Timer
	lingerGen   uint64 // counts the lingerTimers armed; guarded by the hub's mu
}

type route struct {
	handler  http.Handler
	inflight sync.WaitGroup
}

// Registration is a set of paths served on one listener. Close removes them.
type Registration struct {
	hub   *Hub
	srv   *server
	paths []string
	rts   []*route
	once  sync.Once
	err   error
}

// Register serves handler on paths of l.Address, opening the listener if it
// is not open yet. It fails when the address cannot be bound, when l's TLS or
// Timeouts differ from those of the open listener, when a path is already
// served there, or after Stop.
func (h *Hub) Register(l Listener, paths []string, handler http.Handler) (*Registration, error) {
	if l.Address == "" {
		return nil, errors.New("listen address is empty")
	}
	if len(paths) == 0 {
		return nil, errors.New("no path to serve")
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") && p != AnyPath {
			return nil, fmt.Errorf("path %q does not start with /", p)
		}
		if seen[p] {
			return nil, fmt.Errorf("path %q is listed twice", p)
		}
		seen[p] = true
	}
	l.Timeouts = l.Timeouts.withDefaults()

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, ErrHubStopped
	}
	s := h.servers[l.Address]
	if s != nil && s.lingerTimer != nil {
		// A lingering listener: reuse it when the settings agree, else
		// close it now and bind afresh.
		s.lingerTimer.Stop()
		s.lingerTimer = nil
		if sameListener(s.lst, l) != nil {
			delete(h.servers, l.Address)
			ctx, cancel := context.WithTimeout(context.Background(), h.grace)
			s.shutdown(ctx, h.log)
			cancel()
			s = nil
		}
	}
	if s != nil {
		if err := sameListener(s.lst, l); err != nil {
			return nil, fmt.Errorf("address %q is shared with another source: %w", l.Address, err)
		}
		s.rmu.RLock()
		for _, p := range paths {
			if _, taken := s.routes[p]; taken {
				s.rmu.RUnlock()
				return nil, fmt.Errorf("path %q on %q is already served by another source", p, l.Address)
			}
		}
		s.rmu.RUnlock()
	} else {
		var err error
		if s, err = h.listen(l); err != nil {
			return nil, err
		}
		h.servers[l.Address] = s
	}
	reg := &Registration{hub: h, srv: s, paths: paths}
	s.rmu.Lock()
	for _, p := range paths {
		rt := &route{handler: handler}
		s.routes[p] = rt
		delete(s.gone, p)
		reg.rts = append(reg.rts, rt)
	}
	s.rmu.Unlock()
	return reg, nil
}

func sameListener(a, b Listener) error {
	switch {
	case (a.TLS == nil) != (b.TLS == nil):
		return errors.New("one source uses tls and the other does not")
	case a.TLS != nil && *a.TLS != *b.TLS:
		return errors.New("tls settings differ")
	case a.Timeouts != b.Timeouts:
		return errors.New("timeouts differ")
	}
	return nil
}

// listen binds l and starts serving. Called with h.mu held.
func (h *Hub) listen(l Listener) (*server, error) {
	var tcfg *tls.Config
	if l.TLS != nil {
		r, err := newTLSReloader(*l.TLS, h.log.With().Str("address", l.Address).Logger())
		if err != nil {
			return nil, err
		}
		tcfg = r.listenerConfig()
	}
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return nil, fmt.Errorf("listening on %q: %w", l.Address, err)
	}
	if tcfg != nil {
		ln = tls.NewListener(ln, tcfg)
	}
	s := &server{address: l.Address, lst: l, ln: ln, routes: map[string]*route{}, gone: map[string]time.Time{}, now: h.clock.Now, done: make(chan struct{})}
	log := h.log.With().Str("address", ln.Addr().String()).Logger()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: l.Timeouts.ReadHeader,
		ReadTimeout:       l.Timeouts.Read,
		WriteTimeout:      l.Timeouts.Write,
		IdleTimeout:       l.Timeouts.Idle,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          stdLogger(log),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("http listener failed")
		}
	}()
	log.Info().Bool("tls", tcfg != nil).Msg("http listener open")
	return s, nil
}

// config loads the certificate and the client CA bundle.
func (t *TLSFiles) config() (*tls.Config, error) {
	if t.Cert == "" || t.Key == "" {
		return nil, errors.New("tls needs both cert and key")
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("loading tls cert %q and key %q: %w", t.Cert, t.Key, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("reading tls client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client_ca %q holds no PEM certificate", t.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// tlsReloader serves the TLS configuration of a listener and reloads it
// when the cert, key or client CA file changes (size or modification time),
// so that a renewed certificate is used from the next handshake on, without
// a restart. A reload that fails keeps the previous configuration.
type tlsReloader struct {
	files TLSFiles
	log   zerolog.Logger

	mu    sync.Mutex
	stamp string
	cfg   *tls.Config
}

func newTLSReloader(f TLSFiles, log zerolog.Logger) (*tlsReloader, error) {
	r := &tlsReloader{files: f, log: log}
	r.stamp = r.stampNow()
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	r.cfg = cfg
	return r, nil
}

func (r *tlsReloader) stampNow() string {
	var b strings.Builder
	for _, name := range []string{r.files.Cert, r.files.Key, r.files.ClientCA} {
		if name == "" {
			continue
		}
		if fi, err := os.Stat(name); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("?;")
		}
	}
	return b.String()
}

// listenerConfig is the listener's tls.Config: every handshake asks for
// the current one.
func (r *tlsReloader) listenerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.current(), nil
		},
	}
}

func (r *tlsReloader) current() *tls.Config {
	st := r.stampNow()
	r.mu.Lock()
	defer r.mu.Unlock()
	if st != r.stamp {
		r.stamp = st
		cfg, err := r.files.config()
		if err != nil {
			r.log.Error().Err(err).Msg("tls files changed but cannot be loaded; keeping the previous ones")
		} else {
			r.cfg = cfg
			r.log.Info().Str("cert", r.files.Cert).Msg("tls files reloaded")
		}
	}
	return r.cfg
}

// AnyPath, as a source's path, serves every path no other source on the
// listener serves.
const AnyPath = "*"

// ServeHTTP routes by exact path, then to the AnyPath source if any.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.rmu.RLock()
	rt := s.routes[r.URL.Path]
	if rt == nil {
		rt = s.routes[AnyPath]
	}
	if rt != nil {
		// Added under the read lock: Close removes the route under the write
		// lock before it waits, so no Add can race with that Wait.
		rt.inflight.Add(1)
	}
	var restarting bool
	if rt == nil {
		until, ok := s.gone[r.URL.Path]
		restarting = ok && s.now().Before(until)
	}
	s.rmu.RUnlock()
	if restarting {
		w.Header().Set("Retry-After", "1")
		WriteError(w, http.StatusServiceUnavailable, "source restarting, retry later")
		return
	}
	if rt == nil {
		WriteError(w, http.StatusNotFound, "no source on this path")
		return
	}
	defer rt.inflight.Done()
	rt.handler.ServeHTTP(w, r)
}

// Addr is the address the listener is bound to (useful with port 0).
func (r *Registration) Addr() net.Addr { return r.srv.ln.Addr() }

// Close stops serving the registration's paths, closes the listener when no
// path is left on it, and waits (bounded by ctx) for the requests in flight
// on its paths. It is idempotent.
func (r *Registration) Close(ctx context.Context) error {
	r.once.Do(func() { r.err = r.close(ctx) })
	return r.err
}

func (r *Registration) close(ctx context.Context) error {
	h, s := r.hub, r.srv
	h.mu.Lock()
	s.rmu.Lock()
	for i, p := range r.paths {
		if s.routes[p] == r.rts[i] {
			delete(s.routes, p)
			if h.linger > 0 {
				s.gone[p] = h.clock.Now().Add(h.linger)
			}
		}
	}
	empty := len(s.routes) == 0
	s.rmu.Unlock()
	last := empty && h.servers[s.address] == s
	switch {
	case last && h.linger > 0:
		s.lingerGen++
		gen := s.lingerGen
		s.lingerTimer = engine.AfterFunc(h.clock, h.linger, func() { h.expire(s, gen) })
		last = false
	case last:
		delete(h.servers, s.address)
	}
	h.mu.Unlock()

	var err error
	if last {
		err = s.shutdown(ctx, h.log)
	}
	waited := make(chan struct{})
	go func() {
		for _, rt := range r.rts {
			rt.inflight.Wait()
		}
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("requests still in flight on %s: %w", strings.Join(r.paths, ", "), ctx.Err())
		}
	}
	return err
}

// expire closes a lingering listener that no source has joined meanwhile.
// gen is the lingerGen the timer was armed with: a timer stopped too late
// to keep it from firing (a source joined, then left again and armed a new
// one) finds a newer one and does nothing.
func (h *Hub) expire(s *server, gen uint64) {
	h.mu.Lock()
	if h.stopped || h.servers[s.address] != s || s.lingerTimer == nil || s.lingerGen != gen {
		h.mu.Unlock()
		return
	}
	s.rmu.RLock()
	empty := len(s.routes) == 0
	s.rmu.RUnlock()
	if !empty {
		h.mu.Unlock()
		return
	}
	s.lingerTimer = nil
	delete(h.servers, s.address)
	h.bg.Add(1)
	h.mu.Unlock()
	defer h.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), h.grace)
	defer cancel()
	s.shutdown(ctx, h.log)
}

func (s *server) shutdown(ctx context.Context, log zerolog.Logger) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Out of patience: drop the remaining connections.
		s.srv.Close()
	}
	<-s.done
	log.Info().Str("address", s.ln.Addr().String()).Msg("http listener closed")
	return err
}

// Serve registers handler on paths of l, serves until ctx ends or the hub
// stops, then unregisters and waits up to the hub's shutdown grace for the
// requests in flight. It returns an error only when it cannot register.
// Sources call it from Run.
func (h *Hub) Serve(ctx context.Context, l Listener, paths []string, handler http.Handler) error {
	reg, err := h.Register(l, paths, handler)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-h.stopCh:
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.grace)
	defer cancel()
	if err := reg.Close(cctx); err != nil {
		h.log.Warn().Err(err).Msg("http source stopped uncleanly")
	}
	return nil
}

// Lookup returns the bound address of the listener for address when path
// is served on it.
func (h *Hub) Lookup(address, path string) (net.Addr, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.servers[address]
	if s == nil {
		return nil, false
	}
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if _, ok := s.routes[path]; !ok {
		return nil, false
	}
	return s.ln.Addr(), true
}

// Paths lists the paths served on address, sorted.
func (h *Hub) Paths(address string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.servers[address]
	if s == nil {
		return nil
	}
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	out := make([]string, 0, len(s.routes))
	for p := range s.routes {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Stop closes every listener, waiting (bounded by ctx) for requests in
// flight, and makes Serve return. It is idempotent: a later call waits
// (bounded by ctx) for the first to finish and returns nil.
func (h *Hub) Stop(ctx context.Context) error {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		select {
		case <-h.stopDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.stopped = true
	close(h.stopCh)
	servers := h.servers
	h.servers = map[string]*server{}
	for _, s := range servers {
		if s.lingerTimer != nil {
			s.lingerTimer.Stop()
			s.lingerTimer = nil
		}
	}
	h.mu.Unlock()

	defer close(h.stopDone)
	var errs []error
	for _, s := range servers {
		if err := s.shutdown(ctx, h.log); err != nil {
			errs = append(errs, fmt.Errorf("closing %q: %w", s.address, err))
		}
	}
	h.bg.Wait()
	return errors.Join(errs...)
}

// stdLogger adapts zerolog for http.Server.ErrorLog (TLS handshake errors,
// malformed requests): debug level, since clients cause them.
func stdLogger(l zerolog.Logger) *log.Logger {
	return log.New(zlWriter{l}, "", 0)
}

type zlWriter struct{ l zerolog.Logger }

func (w zlWriter) Write(p []byte) (int, error) {
	w.l.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
