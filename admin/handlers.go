package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
)

//go:embed dashboard
var dashboardFS embed.FS

// Limits of the API.
const (
	// MaxInjectBytes bounds the body of POST /api/events.
	MaxInjectBytes = 1 << 20
	// DefaultAuditLimit and MaxAuditLimit bound GET /api/audit.
	DefaultAuditLimit = 50
	MaxAuditLimit     = 1000
	// DefaultEventsLimit bounds GET /api/events.
	DefaultEventsLimit = 100
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.auth(false, http.HandlerFunc(s.metrics)))
	mux.Handle("GET /api/rules", s.auth(false, http.HandlerFunc(s.rules)))
	mux.Handle("GET /api/facts", s.auth(false, http.HandlerFunc(s.facts)))
	mux.Handle("GET /api/events", s.auth(false, http.HandlerFunc(s.events)))
	mux.Handle("POST /api/events", s.auth(false, http.HandlerFunc(s.inject)))
	mux.Handle("GET /api/audit", s.auth(false, http.HandlerFunc(s.audit)))
	mux.Handle("POST /api/reload", s.auth(false, http.HandlerFunc(s.reload)))
	mux.Handle("GET /api/approvals", s.auth(false, http.HandlerFunc(s.approvals)))
	mux.Handle("POST /api/approvals/{id...}", s.auth(false, http.HandlerFunc(s.decide)))
	mux.Handle("POST /api/explain", s.auth(false, http.HandlerFunc(s.explain)))
	mux.Handle("GET /api/stream", s.auth(true, http.HandlerFunc(s.streamSSE)))
	// Go's profiler, as Prometheus and Alertmanager serve it: what an
	// operator needs to see where a busy engine spends its time. Same token
	// as the API.
	mux.Handle("GET /debug/pprof/", s.auth(false, http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/cmdline", s.auth(false, http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("GET /debug/pprof/profile", s.auth(false, http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/symbol", s.auth(false, http.HandlerFunc(pprof.Symbol)))
	mux.Handle("GET /debug/pprof/trace", s.auth(false, http.HandlerFunc(pprof.Trace)))
	static, _ := fs.Sub(dashboardFS, "dashboard")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		http.StripPrefix("/static", files).ServeHTTP(w, r)
	})
	return s.guard(mux)
}

// setPageHeaders keeps the dashboard to its own scripts and styles.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// guard applies the checks that hold for every request: without a token,
// the Host must be a loopback name (so a DNS-rebound page cannot read the
// API) and a POST must be JSON from the same origin.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token == nil {
			host, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				host = r.Host
			}
			if !isLoopback(host) {
				writeError(w, http.StatusForbidden, "host "+strconv.Quote(r.Host)+" is not a loopback name")
				return
			}
		}
		if r.Method == http.MethodPost {
			if origin := r.Header.Get("Origin"); origin != "" && origin != "http://"+r.Host && origin != "https://"+r.Host {
				writeError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
			mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "content type must be application/json")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// auth requires the bearer token when one is configured; queryToken also
// accepts ?token= (for EventSource).
func (s *Server) auth(queryToken bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token != nil && !s.authorized(r, queryToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rulebook admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized: a bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request, queryToken bool) bool {
	var got string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		got = strings.TrimSpace(tok)
	} else if queryToken {
		got = r.URL.Query().Get("token")
	}
	if got == "" {
		return false
	}
	// Comparing hashes takes the same time whatever the length.
	return subtle.ConstantTimeCompare(hashToken(got), s.token) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, "{\"error\":%q}\n", "cannot encode the answer: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// readiness is the body of /readyz.
type readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, readiness{Reasons: []string{"draining: shutting down"}})
		return
	}
	ok, reasons := s.cfg.Backend.Ready()
	if !ok {
		if len(reasons) == 0 {
			reasons = []string{"not ready"}
		}
		writeJSON(w, http.StatusServiceUnavailable, readiness{Reasons: reasons})
		return
	}
	writeJSON(w, http.StatusOK, readiness{Ready: true})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

func (s *Server) rules(w http.ResponseWriter, r *http.Request) {
	rules := s.cfg.Backend.Rules()
	if rules == nil {
		rules = []RuleInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

// rulesets returns the ruleset names in rulebook order.
func rulesets(rules []RuleInfo) []string {
	var out []string
	seen := map[string]bool{}
	for _, ri := range rules {
		if !seen[ri.Ruleset] {
			seen[ri.Ruleset] = true
			out = append(out, ri.Ruleset)
		}
	}
	return out
}

func (s *Server) knownRuleset(name string) bool {
	for _, rs := range rulesets(s.cfg.Backend.Rules()) {
		if rs == name {
			return true
		}
	}
	return false
}

func (s *Server) facts(w http.ResponseWriter, r *http.Request) {
	names := rulesets(s.cfg.Backend.Rules())
	if name := r.URL.Query().Get("ruleset"); name != "" {
		if !slices.Contains(names, name) {
			writeError(w, http.StatusNotFound, "no ruleset named "+strconv.Quote(name))
			return
		}
		names = []string{name}
	}
	out := map[string][]map[string]any{}
	for _, name := range names {
		f := s.cfg.Backend.Facts(name)
		if f == nil {
			f = []map[string]any{}
		}
		out[name] = f
	}
	writeJSON(w, http.StatusOK, map[string]any{"facts": out})
}

// queryInt reads a non-negative integer parameter; def when absent.
func queryInt(r *http.Request, key string, def int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative integer", key, v)
	}
	return n, nil
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", DefaultEventsLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": s.stream.Recent(KindEvent, limit)})
}

// InjectRequest is the body of POST /api/events.
type InjectRequest struct {
	Ruleset string         `json:"ruleset"`
	Event   map[string]any `json:"event"`
}

// readBody reads a request body of at most max bytes. When it cannot, it
// answers 413 (too large) or 400 (the read failed) and returns false.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", max))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "reading body failed")
		return nil, false
	}
	return body, true
}

func (s *Server) inject(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, MaxInjectBytes)
	if !ok {
		return
	}
	req, err := parseInject(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.knownRuleset(req.Ruleset) {
		writeError(w, http.StatusNotFound, "ruleset: no ruleset named "+strconv.Quote(req.Ruleset))
		return
	}
	meta := engine.Meta(req.Event)
	id, _ := meta[engine.MetaUUID].(string)
	if id == "" {
		id = engine.NewID()
		meta[engine.MetaUUID] = id
	}
	// Published before the engine sees it, so the feed shows the event
	// ahead of the firings it causes. The copy is encoded now, before the
	// engine adds to the event.
	s.stream.publishEventNow(engine.Record{Source: engine.SourceRef{Ruleset: req.Ruleset, Name: "admin"}, Event: req.Event})
	// A client that goes away does not cut the evaluation short.
	if err := s.cfg.Backend.Inject(context.WithoutCancel(r.Context()), req.Ruleset, req.Event); err != nil {
		s.log.Warn().Err(err).Str("ruleset", req.Ruleset).Str("event_id", id).Msg("test event not injected")
		writeError(w, http.StatusInternalServerError, "inject: "+err.Error())
		return
	}
	s.log.Info().Str("ruleset", req.Ruleset).Str("event_id", id).Msg("test event injected")
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "injected", "event_id": id})
}

// parseInject decodes and checks an inject body.
func parseInject(body []byte) (InjectRequest, error) {
	var req InjectRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("body: %v", err)
	}
	if dec.More() {
		return req, errors.New("body: more than one JSON value")
	}
	if strings.TrimSpace(req.Ruleset) == "" {
		return req, errors.New("ruleset: required")
	}
	if req.Event == nil {
		return req, errors.New("event: required (a JSON object)")
	}
	ev, err := normalizeNumbers(req.Event)
	if err != nil {
		return req, fmt.Errorf("event: %w", err)
	}
	req.Event = ev.(map[string]any)
	return req, nil
}

// normalizeNumbers turns json.Number into int64 when integral, else
// float64, as the engine expects; a number out of float64's range is an
// error.
func normalizeNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return f, nil
	case map[string]any:
		for k, vv := range x {
			n, err := normalizeNumbers(vv)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
		return x, nil
	case []any:
		for i, vv := range x {
			n, err := normalizeNumbers(vv)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	}
	return v, nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(r, "limit", DefaultAuditLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit == 0 || limit > MaxAuditLimit {
		limit = MaxAuditLimit
	}
	f, err := dispatch.ParseFilter(dispatch.FilterFlags{
		Rule: q.Get("rule"), Ruleset: q.Get("ruleset"), Status: q.Get("status"),
		Since: q.Get("since"), Until: q.Get("until"), Event: q.Get("event"), Limit: limit,
	}, s.clock.Now())
	if err != nil {
		// The messages name the CLI flag ("--since: ..."); here it is a
		// query parameter.
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "--"))
		return
	}
	entries, err := s.cfg.Backend.Audit(r.Context(), f)
	if err != nil {
		s.log.Error().Err(err).Msg("audit query failed")
		writeError(w, http.StatusInternalServerError, "audit: "+err.Error())
		return
	}
	if entries == nil {
		entries = []engine.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	// A reload, once asked for, completes even if the client goes away.
	err := s.cfg.Backend.Reload(context.WithoutCancel(r.Context()))
	s.stream.PublishReload(err)
	if err != nil {
		s.log.Warn().Err(err).Msg("reload refused; the running rulebooks stay")
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.log.Info().Msg("rulebooks reloaded")
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

// lastEventID reads where a stream client resumes: Last-Event-ID, else
// ?after=.
func lastEventID(r *http.Request) (uint64, bool, error) {
	v := r.Header.Get("Last-Event-ID")
	key := "Last-Event-ID"
	if v == "" {
		v, key = r.URL.Query().Get("after"), "after"
	}
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %q is not an entry id", key, v)
	}
	return n, true, nil
}

func (s *Server) streamSSE(w http.ResponseWriter, r *http.Request) {
	after, resume, err := lastEventID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var sub *Subscription
	if resume {
		sub = s.stream.SubscribeAfter(after)
	} else {
		replay, err := queryInt(r, "replay", 0)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		sub = s.stream.SubscribeNew(replay)
	}
	defer sub.Cancel()
	rc := http.NewResponseController(w)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	// retry: tells EventSource how soon to reconnect after a drop.
	buf.WriteString("retry: 1000\n\n")
	if sub.Missed {
		fmt.Fprintf(&buf, "event: gap\ndata: {\"after\":%d}\n\n", after)
	}
	for _, e := range sub.Backlog {
		writeEntry(&buf, e)
		// In chunks: each write gets its own deadline.
		if buf.Len() >= flushSize && !s.flush(w, rc, &buf) {
			return
		}
	}
	if !s.flush(w, rc, &buf) {
		return
	}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				if sub.Dropped() {
					s.log.Debug().Str("remote_addr", r.RemoteAddr).Msg("slow stream client dropped")
				}
				return
			}
			writeEntry(&buf, e)
			// Take what else is queued, to write it in one go.
		more:
			for buf.Len() < flushSize {
				select {
				case e, ok := <-sub.C:
					if !ok {
						break more
					}
					writeEntry(&buf, e)
				default:
					break more
				}
			}
		case <-heartbeat.C:
			buf.WriteString(": ping\n\n")
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		}
		if !s.flush(w, rc, &buf) {
			return
		}
	}
}

// flushSize is how much a stream handler buffers before writing.
const flushSize = 64 << 10

// flush writes buf to the client within the write timeout.
func (s *Server) flush(w http.ResponseWriter, rc *http.ResponseController, buf *bytes.Buffer) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err := w.Write(buf.Bytes())
	buf.Reset()
	if err == nil {
		err = rc.Flush()
	}
	return err == nil
}

// writeEntry encodes one SSE message. Data is JSON on one line, so one
// data: field holds it.
func writeEntry(buf *bytes.Buffer, e Entry) {
	fmt.Fprintf(buf, "id: %d\nevent: %s\ndata: ", e.ID, sseField(e.Kind))
	buf.Write(e.Data)
	buf.WriteString("\n\n")
}

// sseField keeps a field value on one line. It runs for every entry sent
// to every client: the replacer is built once.
func sseField(s string) string {
	return sseLineBreaks.Replace(s)
}

var sseLineBreaks = strings.NewReplacer("\r", " ", "\n", " ")
