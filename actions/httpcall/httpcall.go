// Package httpcall implements the http action: one HTTP request per attempt,
// with a JSON or raw body, TLS options and the invocation ID as
// Idempotency-Key. 5xx, 429 (honouring Retry-After) and connection errors are
// retryable; other 4xx and TLS verification errors are not. Calls with the
// same tls arguments share one transport and its connections; a rotated CA,
// certificate or key file is picked up by the next call.
//
// The url's templates insert their values percent-encoded for their place
// (Spec's URLArgs, engine.EscapeURLTemplate): after the host's "/" as a path
// segment, after "?" as a query name or value, after "#" as a fragment;
// values in the scheme, host and port, and a url that is one template, are
// inserted as they are.
package httpcall

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/internal/argvalue"
	"github.com/rulebook-dev/rulebook/engine"
)

// Type is the key of the action in rulebooks.
const Type = "http"

// DefaultOutputLimit is how much of a response body is kept.
const DefaultOutputLimit = 64 << 10

// MaxOutputLimit bounds output_limit: the audit trail is not a log store.
const MaxOutputLimit = 16 << 20

// MaxRetryAfter bounds how long a Retry-After can hold an invocation back.
const MaxRetryAfter = time.Hour

// Spec registers the http action.
func Spec() engine.ActionSpec {
	return engine.ActionSpec{
		Type:        Type,
		Description: "send an HTTP request; 5xx, 429 and connection errors are retryable",
		Check:       Check,
		Schema:      Schema(),
		// Values inserted into the URL are percent-encoded for their place.
		URLArgs: []string{"url"},
		New: func(env engine.ActionEnv) (engine.Action, error) {
			return New(env.Log, engine.SystemClock{}), nil
		},
	}
}

// HTTP is the http action. It is safe for concurrent use.
type HTTP struct {
	log   zerolog.Logger
	clock engine.Clock
	// transport serves requests without custom TLS settings.
	transport *http.Transport

	// mu guards the transports of calls with tls arguments (see acquireTLS).
	mu            sync.Mutex
	tlsTransports map[tlsConfig]*tlsTransport
	maxTLS        int
	uses          uint64
	closed        bool
}

var _ engine.Action = (*HTTP)(nil)

// New returns the action. clock turns a Retry-After date into a delay.
func New(log zerolog.Logger, clock engine.Clock) *HTTP {
	return &HTTP{
		log:           log, // names the action already (engine.ActionEnv)
		clock:         clock,
		transport:     newTransport(nil),
		tlsTransports: map[tlsConfig]*tlsTransport{},
		maxTLS:        maxTLSTransports,
	}
}

// Close releases idle connections and drops the TLS transports; those of
// requests in flight are closed when the requests end. Later calls still
// work, each on a TLS transport of its own. Close is safe to call twice.
func (h *HTTP) Close() {
	var idle []*http.Transport
	h.mu.Lock()
	h.closed = true
	for c, e := range h.tlsTransports {
		idle = h.retireLocked(idle, c, e)
	}
	h.mu.Unlock()
	for _, t := range idle {
		t.CloseIdleConnections()
	}
	h.transport.CloseIdleConnections()
}

func newTransport(tlsConf *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConf
	t.MaxIdleConnsPerHost = 4
	return t
}

type tlsConfig struct {
	ca, cert, key string
	insecure      bool
	set           bool
}

type config struct {
	method       string
	url          string
	headers      map[string]string
	body         any
	hasBody      bool
	rawBody      string
	hasRawBody   bool
	tls          tlsConfig
	expectStatus []int
	outputLimit  int
}

// Methods are the request methods the http action sends (RFC 9110 and
// PATCH, RFC 5789; not CONNECT, which opens a tunnel). A method is
// accepted in any case and sent in upper case; any other word, such as a
// typo ("PSOT"), is refused when the rulebook is loaded.
var Methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}

// suggestMethod returns `; did you mean "POST"?` for a method one typo
// (an edit or a swap of two letters) away from a known one.
func suggestMethod(m string) string {
	for _, known := range Methods {
		if typoDistance(m, known) <= 1 {
			return fmt.Sprintf("; did you mean %q?", known)
		}
	}
	return ""
}

// typoDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and swaps of adjacent letters.
func typoDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Check validates http arguments before templates are rendered.
func Check(args map[string]any) error {
	_, err := parse(args, true)
	return err
}

const knownKeys = "method, url, headers, body, raw_body, tls, expect_status, output_limit"

func parse(args map[string]any, check bool) (config, error) {
	cfg := config{method: http.MethodPost, outputLimit: DefaultOutputLimit}
	for _, k := range argvalue.SortedKeys(args) {
		v, p := args[k], []string{k}
		var err error
		switch k {
		case "method":
			var s string
			if s, err = argvalue.String(p, v, check); err == nil && !(check && engine.IsTemplate(s)) {
				cfg.method = strings.ToUpper(s)
				if !slices.Contains(Methods, cfg.method) {
					err = engine.ArgErrorf(p, "%q is not an HTTP method (want one of %s)%s", s, strings.Join(Methods, ", "), suggestMethod(cfg.method))
				}
			}
		case "url":
			cfg.url, err = argvalue.String(p, v, check)
			if err == nil && !(check && (engine.IsTemplate(cfg.url) || engine.HasSecretRef(cfg.url))) {
				err = checkURL(cfg.url)
			}
		case "headers":
			cfg.headers, err = parseHeaders(p, v, check)
		case "body":
			switch x := v.(type) {
			case map[string]any, []any:
			case string:
				if !(check && engine.IsTemplate(x)) && check {
					err = engine.ArgErrorf(p, "must be a map or a list (sent as JSON); use raw_body for a string")
				}
			default:
				if check {
					err = engine.ArgErrorf(p, "must be a map or a list (sent as JSON), got %s", engine.TypeName(v))
				}
			}
			cfg.body, cfg.hasBody = v, true
		case "raw_body":
			cfg.rawBody, err = argvalue.String(p, v, check)
			cfg.hasRawBody = true
		case "tls":
			cfg.tls, err = parseTLS(p, v, check)
		case "expect_status":
			cfg.expectStatus, err = parseStatuses(p, v, check)
		case "output_limit":
			var n int
			if n, err = argvalue.Size(p, v, check, MaxOutputLimit); err == nil && n > 0 {
				cfg.outputLimit = n
			}
		default:
			if !argvalue.IsPolicyKey(k) {
				err = engine.ArgErrorf(p, "unknown key (known: %s)", knownKeys)
			}
		}
		if err != nil {
			return cfg, err
		}
	}
	if _, ok := args["url"]; !ok {
		return cfg, engine.ArgErrorf([]string{"url"}, "is required")
	}
	if cfg.hasBody && cfg.hasRawBody {
		return cfg, engine.ArgErrorf([]string{"raw_body"}, "cannot be given together with body")
	}
	return cfg, nil
}

func checkURL(s string) error {
	p := []string{"url"}
	u, err := url.Parse(s)
	if err != nil {
		return engine.ArgErrorf(p, "%q is not a URL: %v", s, unwrapURLErr(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return engine.ArgErrorf(p, "%q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return engine.ArgErrorf(p, "%q has no host", s)
	}
	return nil
}

func unwrapURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func parseHeaders(p []string, v any, check bool) (map[string]string, error) {
	return argvalue.ScalarMap(p, v, check, "header names", checkHeaderName, checkHeaderValue)
}

func checkHeaderName(p []string, k string) error {
	if !tokenRE.MatchString(k) {
		return engine.ArgErrorf(p, "%q is not a valid header name", k)
	}
	return nil
}

func checkHeaderValue(p []string, s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return engine.ArgErrorf(p, "value must not contain line breaks")
	}
	return nil
}

func parseTLS(p []string, v any, check bool) (tlsConfig, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return tlsConfig{}, engine.ArgErrorf(p, "must be a map with ca, cert, key, insecure_skip_verify, got %s", engine.TypeName(v))
	}
	c := tlsConfig{set: true}
	for k, e := range m {
		kp := argvalue.AppendPath(p, k)
		var err error
		switch k {
		case "ca", "cert", "key":
			var s string
			if s, err = argvalue.String(kp, e, check); err != nil {
				return c, err
			}
			if s == "" {
				return c, engine.ArgErrorf(kp, "must not be empty")
			}
			if !(check && (engine.IsTemplate(s) || engine.HasSecretRef(s))) {
				if _, serr := os.Stat(s); serr != nil {
					return c, engine.ArgErrorf(kp, "%q: %v", s, unwrapPathErr(serr))
				}
			}
			switch k {
			case "ca":
				c.ca = s
			case "cert":
				c.cert = s
			case "key":
				c.key = s
			}
		case "insecure_skip_verify":
			c.insecure, err = argvalue.Bool(kp, e, check)
		default:
			err = engine.ArgErrorf(kp, "unknown key (known: ca, cert, key, insecure_skip_verify)")
		}
		if err != nil {
			return c, err
		}
	}
	if (c.cert == "") != (c.key == "") {
		return c, engine.ArgErrorf(p, "cert and key must be given together")
	}
	return c, nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func parseStatuses(p []string, v any, check bool) ([]int, error) {
	if s, ok := v.(string); ok && check && engine.IsTemplate(s) {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, engine.ArgErrorf(p, "must be a list of HTTP status codes, got %s", engine.TypeName(v))
	}
	if len(list) == 0 {
		return nil, engine.ArgErrorf(p, "must not be empty")
	}
	out := make([]int, 0, len(list))
	for i, e := range list {
		ep := argvalue.AppendPath(p, strconv.Itoa(i))
		n, tmpl, err := argvalue.Int(ep, e, check)
		if err != nil {
			return nil, err
		}
		if tmpl {
			continue
		}
		if n < 100 || n > 599 {
			return nil, engine.ArgErrorf(ep, "%d is not an HTTP status code", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// Run sends the request once.
func (h *HTTP) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	cfg, err := parse(inv.Args, false)
	if err == nil {
		err = checkURL(cfg.url)
	}
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	var body io.Reader
	contentType := ""
	switch {
	case cfg.hasBody:
		b, err := json.Marshal(cfg.body)
		if err != nil {
			return engine.Failure("body: not representable as JSON: %v", err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	case cfg.hasRawBody:
		body = strings.NewReader(cfg.rawBody)
	}
	req, err := http.NewRequestWithContext(ctx, cfg.method, cfg.url, body)
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	req.Header.Set("User-Agent", "rulebook")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Idempotency-Key", inv.ID)
	for k, v := range cfg.headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}

	transport := h.transport
	if cfg.tls.set {
		t, release, err := h.acquireTLS(cfg.tls)
		if err != nil {
			return engine.Failure("%s", inv.Redact(err.Error()))
		}
		// Deferred before the body's Close, so it runs after it: the
		// connection is back in the pool when a retired transport closes
		// its idle connections.
		defer release()
		transport = t
	}
	client := &http.Client{Transport: transport}
	target := inv.Redact(redactURL(req.URL))
	what := cfg.method + " " + target

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res := classifyError(ctx, err)
		res.Error = inv.Redact(fmt.Sprintf("%s: %s", what, res.Error))
		res.Details = map[string]any{"url": target, "method": cfg.method, "duration_ms": time.Since(start).Milliseconds()}
		return res
	}
	defer resp.Body.Close()
	out, truncated, readErr := readHead(resp.Body, cfg.outputLimit)
	res := h.classifyStatus(cfg, resp)
	res.Output = inv.Redact(out)
	details := map[string]any{
		"url": target, "method": cfg.method, "status": resp.StatusCode,
		"duration_ms": time.Since(start).Milliseconds(),
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		details["content_type"] = ct
	}
	if truncated {
		details["output_truncated"] = true
	}
	if readErr != nil {
		details["read_error"] = inv.Redact(readErr.Error())
	}
	res.Details = details
	if res.Status != engine.Succeeded {
		res.Error = inv.Redact(what + ": " + res.Error)
		if l := firstLine(res.Output); l != "" {
			res.Error += ": " + l
		}
	}
	h.log.Debug().Str("invocation", inv.ID).Str("status", string(res.Status)).
		Int("http_status", resp.StatusCode).Msg("http call finished")
	return res
}

// redactURL hides the password of a URL's user info.
func redactURL(u *url.URL) string { return u.Redacted() }

// readHead reads up to limit bytes of a body.
func readHead(r io.Reader, limit int) (string, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	truncated := len(b) > limit
	if truncated {
		b = b[:limit]
		return string(b) + fmt.Sprintf("\n[... response truncated after %d bytes ...]", limit), true, err
	}
	return string(b), false, err
}

func (h *HTTP) classifyStatus(cfg config, resp *http.Response) engine.Result {
	code := resp.StatusCode
	r := engine.Result{HTTPStatus: code}
	ok := code >= 200 && code <= 299
	if len(cfg.expectStatus) > 0 {
		ok = false
		for _, s := range cfg.expectStatus {
			if s == code {
				ok = true
			}
		}
	}
	switch {
	case ok:
		r.Status = engine.Succeeded
		return r
	case code == http.StatusTooManyRequests || code >= 500:
		r.Status = engine.Retryable
		r.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), h.clock.Now())
	default:
		r.Status = engine.Failed
	}
	r.Error = resp.Status
	if len(cfg.expectStatus) > 0 {
		r.Error += fmt.Sprintf(" (expected %v)", cfg.expectStatus)
	}
	return r
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date (RFC 9110 10.2.3). Unparsable or past values give 0; long
// ones are capped at MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// classifyError tells errors that a retry can fix (refused, reset,
// timeouts, DNS) from those it cannot (certificate verification, a
// malformed URL, a server that does not speak TLS).
func classifyError(ctx context.Context, err error) engine.Result {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return engine.RetryableFailure("timed out")
		}
		return engine.RetryableFailure("cancelled")
	}
	msg := unwrapURLErr(err).Error()
	var (
		verifyErr   *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		alertErr    tls.AlertError
		recordErr   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalidErr), errors.As(err, &alertErr), errors.As(err, &recordErr):
		return engine.Failure("tls: %s", msg)
	case strings.Contains(msg, "remote error: tls:"):
		// The server refused the handshake (no or a bad client
		// certificate, no common version): the same next time.
		return engine.Failure("tls: %s", msg)
	case strings.Contains(msg, "unsupported protocol scheme"), strings.Contains(msg, "stopped after 10 redirects"):
		return engine.Failure("%s", msg)
	}
	return engine.RetryableFailure("%s", msg)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
