package httpingest

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// DefaultMaxBodyBytes is the body limit when an Endpoint sets none.
const DefaultMaxBodyBytes = 4 << 20

// Request is a received request after the checks passed: what a source needs
// to build its events.
type Request struct {
	HTTP *http.Request
	// Body is the raw body; Payload is what ParseBody made of it, under
	// MediaType (the Content-Type, or the endpoint's override).
	Body      []byte
	MediaType string
	Payload   any
	// Received is the endpoint clock's time when the request arrived.
	Received time.Time
	// Sensitive are the canonical names of headers that must not reach an
	// event (see SafeHeaders).
	Sensitive []string
	// Verified is what the signature check vouched for, such as the
	// delivery id a Standard Webhooks signature covers.
	Verified Verified
}

// SafeHeaders returns the request headers without credentials or
// signatures, as a map from canonical name to the values joined by ", ".
func (r *Request) SafeHeaders() map[string]any {
	return SafeHeaders(r.HTTP.Header, r.Sensitive)
}

// SafeHeaders returns h without the headers named in drop (canonical names),
// as a map from canonical name to the values joined by ", ".
func SafeHeaders(h http.Header, drop []string) map[string]any {
	out := make(map[string]any, len(h))
outer:
	for k, vs := range h {
		for _, d := range drop {
			if k == d {
				continue outer
			}
		}
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// RemoteIP is the IP of the connection's peer (proxy headers are not
// trusted).
func RemoteIP(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(host)
		return a.Unmap(), err == nil
	}
	return ap.Addr().Unmap(), true
}

// Counts are an endpoint's request counters, safe to read concurrently.
type Counts struct {
	Accepted   atomic.Int64 // events accepted
	Duplicates atomic.Int64 // entries answered as duplicates
	Stale      atomic.Int64 // entries answered as stale
	Rejected   atomic.Int64 // requests answered 4xx
	Failed     atomic.Int64 // requests answered 5xx
}

// Endpoint is the http.Handler of one HTTP source: it applies the checks in
// this order, answering at the first that fails: IP allowlist (403), method
// (405 with Allow), client certificate names (403), body size (413),
// authentication (401, the reason only in the debug log), content type
// (415), parsing (400 with the reason), Build (400 with its error); then
// emits the entries and answers 200 only once Emit returned, that is once
// they are durable. Duplicate and stale entries are answered 200 as well, and
// the body says so. Emit errors: *engine.BacklogError → 503 with
// Retry-After, engine.ErrClosed → 503, others → 500. Nothing is emitted for a
// rejected request.
//
// Set the fields before serving and do not change them afterwards.
type Endpoint struct {
	Source engine.SourceRef
	Out    engine.Emitter
	// Build (required) turns a checked request into entries. An error is
	// answered 400 with its message, so it must not contain a secret.
	Build func(req *Request) ([]engine.Entry, error)

	// Methods allowed; empty: POST only.
	Methods []string
	// MaxBodyBytes; zero: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AllowIPs, when not empty, are the only client networks accepted.
	AllowIPs []netip.Prefix
	// ClientNames, when not empty, are the accepted client certificate names
	// (subject common name or a DNS SAN); needs a Listener with ClientCA.
	ClientNames []string
	// ContentType overrides the request's Content-Type for parsing.
	ContentType string
	// Auth checks credentials; nil accepts every request.
	Auth *Verifier
	// Now is the clock (signature timestamps, Request.Received); nil: time.Now.
	Now func() time.Time
	Log zerolog.Logger
	// OnReject, when set, is told of every refused request with its reason
	// (a Reject* constant).
	OnReject func(src engine.SourceRef, reason string)

	Counts Counts

	// failLog limits the warnings of 503/500 answers, which come in storms.
	failLog logLimiter
}

// failLogEvery is the least time between two warnings of failed emits.
const failLogEvery = time.Second

// logLimiter lets one message through per interval and counts the others.
type logLimiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether to log now, and how many messages were held back
// since the last one logged.
func (l *logLimiter) allow(now time.Time, every time.Duration) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed = 0
	l.next = now.Add(every)
	return true, n
}

func (e *Endpoint) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

var defaultMethods = []string{http.MethodPost}

func (e *Endpoint) methods() []string {
	if len(e.Methods) == 0 {
		return defaultMethods
	}
	return e.Methods
}

// Why a request was refused, as Endpoint.OnReject reports it (the names the
// metrics use).
const (
	RejectAuth      = "auth"
	RejectParse     = "parse"
	RejectSize      = "size"
	RejectMethod    = "method"
	RejectMediaType = "media_type"
	RejectForbidden = "forbidden"
)

// rejectReason names the reason of a refusal by its status.
func rejectReason(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return RejectAuth
	case http.StatusForbidden:
		return RejectForbidden
	case http.StatusMethodNotAllowed:
		return RejectMethod
	case http.StatusRequestEntityTooLarge:
		return RejectSize
	case http.StatusUnsupportedMediaType:
		return RejectMediaType
	}
	return RejectParse
}

func (e *Endpoint) reject(w http.ResponseWriter, r *http.Request, status int, msg string, reason error) {
	e.Counts.Rejected.Add(1)
	if e.OnReject != nil {
		e.OnReject(e.Source, rejectReason(status))
	}
	ev := e.Log.Debug().Int("status", status).Str("path", r.URL.Path).Str("remote_addr", r.RemoteAddr)
	if reason != nil {
		ev = ev.AnErr("reason", reason)
	}
	ev.Msg("request rejected")
	WriteError(w, status, msg)
}

// ServeHTTP implements http.Handler.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := e.now()
	if len(e.AllowIPs) > 0 {
		ip, ok := RemoteIP(r)
		if !ok || !ipAllowed(e.AllowIPs, ip) {
			e.reject(w, r, http.StatusForbidden, "forbidden", errors.New("client address not in allow_ips"))
			return
		}
	}
	if !methodAllowed(e.methods(), r.Method) {
		w.Header().Set("Allow", strings.Join(e.methods(), ", "))
		e.reject(w, r, http.StatusMethodNotAllowed, "method "+strconv.Quote(r.Method)+" not allowed", nil)
		return
	}
	if len(e.ClientNames) > 0 && !clientNameAllowed(r, e.ClientNames) {
		e.reject(w, r, http.StatusForbidden, "forbidden", errors.New("client certificate name not in tls.client_names"))
		return
	}
	max := e.MaxBodyBytes
	if max <= 0 {
		max = DefaultMaxBodyBytes
	}
	if r.ContentLength > max {
		e.reject(w, r, http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(max, 10)+" bytes", nil)
		return
	}
	// A full backlog refuses before the body is read: a storm of large
	// bodies is not held in memory only to be refused.
	if p, ok := e.Out.(engine.BacklogProbe); ok {
		if be := p.BacklogFull(e.Source); be != nil {
			e.Counts.Failed.Add(1)
			logIt, held := e.failLog.allow(e.now(), failLogEvery)
			e.backlogFull(w, be, logIt, held)
			return
		}
	}
	body, err := readBody(w, r, max)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e.reject(w, r, http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(max, 10)+" bytes", nil)
			return
		}
		e.reject(w, r, http.StatusBadRequest, "reading body failed", err)
		return
	}
	verified, err := e.Auth.Check(r.Header, body, received)
	if err != nil {
		if c := e.Auth.Challenge(); c != "" {
			w.Header().Set("WWW-Authenticate", c)
		}
		e.reject(w, r, http.StatusUnauthorized, "unauthorized", err)
		return
	}
	mt := e.ContentType
	if mt == "" {
		mt = r.Header.Get("Content-Type")
	}
	payload, err := ParseBody(mt, body)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrUnsupportedMediaType) {
			status = http.StatusUnsupportedMediaType
		}
		e.reject(w, r, status, err.Error(), nil)
		return
	}
	req := &Request{HTTP: r, Body: body, MediaType: mt, Payload: payload, Received: received, Sensitive: e.Auth.SensitiveHeaders(), Verified: verified}
	entries, err := e.Build(req)
	if err != nil {
		e.reject(w, r, http.StatusBadRequest, err.Error(), nil)
		return
	}
	e.emit(w, r, entries)
}

func (e *Endpoint) emit(w http.ResponseWriter, r *http.Request, entries []engine.Entry) {
	var outcomes []engine.Outcome
	var err error
	if len(entries) > 0 {
		outcomes, err = e.Out.Emit(r.Context(), e.Source, entries)
	}
	if err != nil {
		e.Counts.Failed.Add(1)
		logIt, held := e.failLog.allow(e.now(), failLogEvery)
		if be, ok := engine.IsBacklog(err); ok {
			e.backlogFull(w, be, logIt, held)
			return
		}
		if errors.Is(err, engine.ErrClosed) {
			WriteError(w, http.StatusServiceUnavailable, "shutting down, retry later")
			return
		}
		if fe, ok := engine.IsFilterError(err); ok {
			// The source's filters refuse the event: sending it again
			// cannot help.
			e.Log.Warn().Int("filter", fe.Index).Str("filter_name", fe.Name).Err(fe.Err).Msg("event refused by a filter")
			WriteError(w, http.StatusUnprocessableEntity, "event refused by "+fe.Error())
			return
		}
		if logIt {
			e.Log.Error().Err(err).Int("similar_not_logged", held).Msg("storing events failed")
		}
		WriteError(w, http.StatusInternalServerError, "storing the event failed")
		return
	}
	resp := Answer{Status: "accepted", IDs: []string{}}
	for i, o := range outcomes {
		id := engine.EventID(entries[i].Event)
		switch o {
		case engine.Accepted:
			resp.IDs = append(resp.IDs, id)
			e.Counts.Accepted.Add(1)
			e.Log.Debug().Str("event_id", id).Msg("event accepted")
		case engine.Duplicate:
			resp.Duplicates++
			e.Counts.Duplicates.Add(1)
			e.Log.Info().Str("dedupe_key", entries[i].DedupeKey).Msg("duplicate delivery not processed again")
		case engine.Stale:
			resp.Stale++
			e.Counts.Stale.Add(1)
			e.Log.Info().Str("order_key", entries[i].OrderKey).Time("timestamp", entries[i].Timestamp).Msg("stale event not processed")
		}
	}
	if len(resp.IDs) == 0 && len(outcomes) > 0 {
		switch {
		case resp.Duplicates > 0 && resp.Stale == 0:
			resp.Status = "duplicate"
		case resp.Stale > 0 && resp.Duplicates == 0:
			resp.Status = "stale"
		default:
			resp.Status = "ignored"
		}
	}
	writeBody(w, http.StatusOK, resp.append(make([]byte, 0, 64+40*len(resp.IDs))))
}

// append writes a as JSON, as json.Marshal would (without its reflection:
// this is on every request's path).
func (a Answer) append(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = appendJSONString(b, a.Status)
	b = append(b, `,"ids":[`...)
	for i, id := range a.IDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	b = append(b, ']')
	if a.Duplicates > 0 {
		b = append(b, `,"duplicates":`...)
		b = strconv.AppendInt(b, int64(a.Duplicates), 10)
	}
	if a.Stale > 0 {
		b = append(b, `,"stale":`...)
		b = strconv.AppendInt(b, int64(a.Stale), 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string; uncommon strings go through
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Answer is the body of a 200: Status is "accepted" when at least one event
// was accepted, else "duplicate", "stale" (or "ignored" for a mix of both);
// IDs are the meta.uuid of the accepted events.
type Answer struct {
	Status     string   `json:"status"`
	IDs        []string `json:"ids"`
	Duplicates int      `json:"duplicates,omitempty"`
	Stale      int      `json:"stale,omitempty"`
}

// WriteError answers status with {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeBody(w, status, b)
}

// backlogFull answers 503 with Retry-After.
func (e *Endpoint) backlogFull(w http.ResponseWriter, be *engine.BacklogError, logIt bool, held int) {
	secs := int64(math.Ceil(be.RetryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	if logIt {
		e.Log.Warn().Dur("retry_after", be.RetryAfter).Int("similar_not_logged", held).Msg("backlog full: answered 503")
	}
	WriteError(w, http.StatusServiceUnavailable, "backlog full, retry later")
}

// writeBody answers status with the JSON b and a final newline.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b) + 1)}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readBody reads at most max bytes of the body, into a buffer sized by
// Content-Length when the sender gave one.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength <= 0 {
		return io.ReadAll(rd)
	}
	// The server's body reader stops at Content-Length, which the caller
	// checked against max.
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func methodAllowed(allowed []string, m string) bool {
	for _, a := range allowed {
		if a == m {
			return true
		}
	}
	return false
}

func ipAllowed(nets []netip.Prefix, ip netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// clientNameAllowed checks the verified client certificate's common name
// and DNS SANs against names.
func clientNameAllowed(r *http.Request, names []string) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return false
	}
	leaf := r.TLS.VerifiedChains[0][0]
	for _, n := range names {
		if leaf.Subject.CommonName == n {
			return true
		}
		for _, d := range leaf.DNSNames {
			if strings.EqualFold(d, n) {
				return true
			}
		}
	}
	return false
}
