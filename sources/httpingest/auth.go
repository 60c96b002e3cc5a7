package httpingest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// DefaultTolerance is how far a signed timestamp (Slack, Stripe, Standard
// Webhooks) may be from the clock before the request is refused.
const DefaultTolerance = 5 * time.Minute

// Preset names a provider's signature scheme.
type Preset string

// The signature presets.
const (
	// PresetNone: a generic HMAC of the body in Header, as configured.
	PresetNone Preset = ""
	// PresetGitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(body).
	PresetGitHub Preset = "github"
	// PresetShopify: X-Shopify-Hmac-Sha256 = base64 HMAC-SHA256(body).
	PresetShopify Preset = "shopify"
	// PresetSlack: X-Slack-Signature = "v0=" + hex HMAC-SHA256("v0:" +
	// X-Slack-Request-Timestamp + ":" + body).
	PresetSlack Preset = "slack"
	// PresetStripe: Stripe-Signature = "t=<unix>,v1=<hex>[,v1=<hex>...]",
	// each v1 a hex HMAC-SHA256(t + "." + body).
	PresetStripe Preset = "stripe"
	// PresetStandard: Standard Webhooks (also sent as svix-*):
	// webhook-signature = space-separated "v1,<base64 HMAC-SHA256(id + "." +
	// timestamp + "." + body)>", secrets "whsec_<base64 key>".
	PresetStandard Preset = "standard"
)

// Presets lists the valid presets, for error messages and schemas.
var Presets = []string{string(PresetGitHub), string(PresetShopify), string(PresetSlack), string(PresetStripe), string(PresetStandard)}

// Auth configures request authentication. Every configured part must pass,
// except that bearer tokens and basic credentials are alternatives to each
// other (both travel in the Authorization header): with either configured,
// the Authorization header must carry one of them.
type Auth struct {
	// BearerTokens are accepted as "Authorization: Bearer <token>".
	BearerTokens []string
	// Basic are accepted as "Authorization: Basic ...".
	Basic []BasicUser
	// HeaderToken is a shared token sent verbatim in a named header
	// (GitLab's X-Gitlab-Token).
	HeaderToken *HeaderToken
	// HMAC is a signature of the body.
	HMAC *HMAC
	// Tolerance bounds the age (and the clock skew) of signed timestamps.
	// Zero: DefaultTolerance.
	Tolerance time.Duration
}

// BasicUser is one accepted basic-auth credential.
type BasicUser struct {
	Username string
	Password string
}

// HeaderToken is a shared token in a named header; any of Tokens is accepted.
type HeaderToken struct {
	Header string
	Tokens []string
}

// HMAC is a body signature. With a Preset, Header, Algorithm, Encoding and
// Prefix are given by the preset and must be empty. Several Secrets are
// accepted at once, so a secret can rotate without downtime.
type HMAC struct {
	Preset    Preset
	Header    string
	Algorithm string // sha1, sha256 (default) or sha512
	Encoding  string // hex (default) or base64
	Prefix    string // e.g. "sha256="; the header must start with it
	Secrets   []string
}

// Verifier checks requests against a compiled Auth. It is safe for
// concurrent use.
type Verifier struct {
	bearer    [][32]byte
	basic     [][32]byte
	challenge string
	hdrToken  string
	hdrTokens [][32]byte
	mac       *macScheme
	tolerance time.Duration
	sensitive []string
}

type macScheme struct {
	preset Preset
	header string
	newH   func() hash.Hash
	b64    bool
	prefix string
	keys   [][]byte
}

// Compile checks a and prepares it for Verify. Errors are *engine.ArgError
// whose path is the YAML key as DecodeSettings reads it; they never contain a
// secret.
func (a Auth) Compile() (*Verifier, error) {
	v := &Verifier{tolerance: a.Tolerance}
	if v.tolerance <= 0 {
		v.tolerance = DefaultTolerance
	}
	for i, t := range a.BearerTokens {
		if t == "" {
			return nil, engine.ArgErrorf([]string{"token", strconv.Itoa(i)}, "token is empty")
		}
		v.bearer = append(v.bearer, sha256.Sum256([]byte(t)))
	}
	for i, b := range a.Basic {
		if b.Username == "" {
			return nil, engine.ArgErrorf([]string{"basic", strconv.Itoa(i), "username"}, "username is empty")
		}
		if strings.Contains(b.Username, ":") {
			return nil, engine.ArgErrorf([]string{"basic", strconv.Itoa(i), "username"}, "username %q contains ':'", b.Username)
		}
		v.basic = append(v.basic, sha256.Sum256([]byte(b.Username+":"+b.Password)))
	}
	switch {
	case len(a.Basic) > 0:
		v.challenge = `Basic realm="rulebook"`
	case len(a.BearerTokens) > 0:
		v.challenge = `Bearer realm="rulebook"`
	}
	if ht := a.HeaderToken; ht != nil {
		if ht.Header == "" {
			return nil, engine.ArgErrorf([]string{"header_token", "header"}, "header is required")
		}
		if len(ht.Tokens) == 0 {
			return nil, engine.ArgErrorf([]string{"header_token", "tokens"}, "at least one token is required")
		}
		v.hdrToken = http.CanonicalHeaderKey(ht.Header)
		for i, t := range ht.Tokens {
			if t == "" {
				return nil, engine.ArgErrorf([]string{"header_token", "tokens", strconv.Itoa(i)}, "token is empty")
			}
			v.hdrTokens = append(v.hdrTokens, sha256.Sum256([]byte(t)))
		}
		v.sensitive = append(v.sensitive, v.hdrToken)
	}
	if a.HMAC != nil {
		m, err := a.HMAC.compile()
		if err != nil {
			return nil, err
		}
		v.mac = m
		if m.header != "" {
			v.sensitive = append(v.sensitive, m.header)
		}
	}
	v.sensitive = append(append([]string(nil), sensitiveHeaders...), v.sensitive...)
	return v, nil
}

func (h *HMAC) compile() (*macScheme, error) {
	key := func(k ...string) []string { return append([]string{"hmac"}, k...) }
	m := &macScheme{preset: h.Preset}
	if h.Preset != PresetNone {
		for _, f := range []struct{ name, val string }{{"header", h.Header}, {"algorithm", h.Algorithm}, {"encoding", h.Encoding}, {"prefix", h.Prefix}} {
			if f.val != "" {
				return nil, engine.ArgErrorf(key(f.name), "cannot be set with preset %q", string(h.Preset))
			}
		}
	}
	m.newH = sha256.New
	switch h.Preset {
	case PresetNone:
		if h.Header == "" {
			return nil, engine.ArgErrorf(key("header"), "header is required without a preset (one of %s)", strings.Join(Presets, ", "))
		}
		m.header = http.CanonicalHeaderKey(h.Header)
		m.prefix = h.Prefix
		switch strings.ToLower(h.Algorithm) {
		case "", "sha256":
		case "sha1":
			m.newH = sha1.New
		case "sha512":
			m.newH = sha512.New
		default:
			return nil, engine.ArgErrorf(key("algorithm"), "algorithm %q is not sha1, sha256 or sha512", h.Algorithm)
		}
		switch strings.ToLower(h.Encoding) {
		case "", "hex":
		case "base64":
			m.b64 = true
		default:
			return nil, engine.ArgErrorf(key("encoding"), "encoding %q is not hex or base64", h.Encoding)
		}
	case PresetGitHub:
		m.header, m.prefix = "X-Hub-Signature-256", "sha256="
	case PresetShopify:
		m.header, m.b64 = "X-Shopify-Hmac-Sha256", true
	case PresetSlack:
		m.header, m.prefix = "X-Slack-Signature", "v0="
	case PresetStripe:
		m.header = "Stripe-Signature"
	case PresetStandard:
		m.header, m.b64 = "Webhook-Signature", true
	default:
		return nil, engine.ArgErrorf(key("preset"), "preset %q is not one of %s", string(h.Preset), strings.Join(Presets, ", "))
	}
	if len(h.Secrets) == 0 {
		return nil, engine.ArgErrorf(key("secrets"), "at least one secret is required")
	}
	for i, s := range h.Secrets {
		k, err := secretKey(h.Preset, s)
		if err != nil {
			return nil, &engine.ArgError{Path: key("secrets", strconv.Itoa(i)), Err: err}
		}
		m.keys = append(m.keys, k)
	}
	return m, nil
}

// secretKey returns the HMAC key of a secret: the secret's bytes, or for
// Standard Webhooks the base64 decoding of the part after "whsec_". Errors
// never include the secret.
func secretKey(p Preset, s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("secret is empty")
	}
	if p != PresetStandard {
		return []byte(s), nil
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(k) == 0 {
		return nil, errors.New(`standard webhooks secret is not "whsec_" followed by base64`)
	}
	return k, nil
}

// CheckSecret reports whether a resolved secret is usable with preset p,
// without returning or quoting it.
func CheckSecret(p Preset, s string) error {
	_, err := secretKey(p, s)
	return err
}

// sensitiveHeaders are never copied into an event, whatever is configured.
var sensitiveHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
	"X-Hub-Signature", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256",
	"X-Slack-Signature", "Stripe-Signature", "Webhook-Signature",
	"Svix-Signature", "X-Gitlab-Token",
}

// SensitiveHeaders returns the canonical names of the headers that carry
// credentials: the well-known ones plus those this verifier reads. v may be
// nil. The slice is shared: do not modify it.
func (v *Verifier) SensitiveHeaders() []string {
	if v == nil {
		return sensitiveHeaders
	}
	return v.sensitive
}

// Challenge is the WWW-Authenticate value for a 401, "" when none applies.
func (v *Verifier) Challenge() string {
	if v == nil {
		return ""
	}
	return v.challenge
}

// Verified is what a successful check established about a request beyond
// its authenticity.
type Verified struct {
	// DeliveryID is the message id the signature covers: for Standard
	// Webhooks the webhook-id, or the svix-id when the svix-* headers are the
	// ones that were verified. Empty for schemes that sign no id.
	DeliveryID string
}

// Verify checks one request. The error says which check failed; it is for
// debug logs only and must not be sent to the client. It never contains a
// secret. A nil Verifier accepts everything.
func (v *Verifier) Verify(h http.Header, body []byte, now time.Time) error {
	_, err := v.Check(h, body, now)
	return err
}

// Check is Verify, also returning what the signature vouches for (the
// delivery id a dedupe must use, rather than an unsigned header that a
// resender can change).
func (v *Verifier) Check(h http.Header, body []byte, now time.Time) (Verified, error) {
	if v == nil {
		return Verified{}, nil
	}
	if len(v.bearer)+len(v.basic) > 0 {
		if err := v.checkAuthorization(h.Get("Authorization")); err != nil {
			return Verified{}, err
		}
	}
	if v.hdrToken != "" {
		got := h.Get(v.hdrToken)
		if got == "" {
			return Verified{}, fmt.Errorf("header %s is missing", v.hdrToken)
		}
		if !anyEqual(v.hdrTokens, got) {
			return Verified{}, fmt.Errorf("header %s does not match", v.hdrToken)
		}
	}
	if v.mac != nil {
		return v.mac.verify(h, body, now, v.tolerance)
	}
	return Verified{}, nil
}

// SignsDeliveryID reports whether Check returns a verified DeliveryID for
// every request it accepts (the Standard Webhooks preset). v may be nil.
func (v *Verifier) SignsDeliveryID() bool {
	return v != nil && v.mac != nil && v.mac.preset == PresetStandard
}

func (v *Verifier) checkAuthorization(a string) error {
	if a == "" {
		return errors.New("authorization header is missing")
	}
	scheme, cred, _ := strings.Cut(a, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer") && len(v.bearer) > 0:
		if anyEqual(v.bearer, cred) {
			return nil
		}
		return errors.New("bearer token does not match")
	case strings.EqualFold(scheme, "Basic") && len(v.basic) > 0:
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return errors.New("basic credentials are not base64")
		}
		if anyEqual(v.basic, string(raw)) {
			return nil
		}
		return errors.New("basic credentials do not match")
	}
	// The scheme is not quoted: a sender that puts a bare token in the
	// header would have it logged.
	return errors.New("authorization scheme is not accepted")
}

// anyEqual compares got with every accepted hash in constant time (no early
// exit, and independent of the lengths involved).
func anyEqual(accepted [][32]byte, got string) bool {
	g := sha256.Sum256([]byte(got))
	ok := 0
	for i := range accepted {
		ok |= subtle.ConstantTimeCompare(accepted[i][:], g[:])
	}
	return ok == 1
}

func (m *macScheme) sum(key []byte, parts ...[]byte) []byte {
	mac := hmac.New(m.newH, key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// match reports whether sig is the MAC of parts under any key; every key is
// tried, so timing does not tell which secret matched.
func (m *macScheme) match(sig []byte, parts ...[]byte) bool {
	ok := false
	for _, k := range m.keys {
		if hmac.Equal(sig, m.sum(k, parts...)) {
			ok = true
		}
	}
	return ok
}

func (m *macScheme) decode(s string) ([]byte, error) {
	if m.b64 {
		return base64.StdEncoding.DecodeString(s)
	}
	return hex.DecodeString(s)
}

func checkTimestamp(ts string, now time.Time, tol time.Duration) error {
	if ts == "" {
		return errors.New("signature timestamp is missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("signature timestamp is not unix seconds")
	}
	d := now.Sub(time.Unix(sec, 0))
	if d > tol || d < -tol {
		return fmt.Errorf("signature timestamp is %s away from now, over the tolerance of %s", d.Round(time.Second), tol)
	}
	return nil
}

var errBadSignature = errors.New("signature does not match")

func (m *macScheme) verify(h http.Header, body []byte, now time.Time, tol time.Duration) (Verified, error) {
	switch m.preset {
	case PresetSlack:
		ts := h.Get("X-Slack-Request-Timestamp")
		if err := checkTimestamp(ts, now, tol); err != nil {
			return Verified{}, err
		}
		sig, err := m.headerSig(h)
		if err != nil {
			return Verified{}, err
		}
		if !m.match(sig, []byte("v0:"+ts+":"), body) {
			return Verified{}, errBadSignature
		}
		return Verified{}, nil
	case PresetStripe:
		return Verified{}, m.verifyStripe(h.Get(m.header), body, now, tol)
	case PresetStandard:
		return m.verifyStandard(h, body, now, tol)
	}
	sig, err := m.headerSig(h)
	if err != nil {
		return Verified{}, err
	}
	if !m.match(sig, body) {
		return Verified{}, errBadSignature
	}
	return Verified{}, nil
}

func (m *macScheme) headerSig(h http.Header) ([]byte, error) {
	raw := strings.TrimSpace(h.Get(m.header))
	if raw == "" {
		return nil, fmt.Errorf("signature header %s is missing", m.header)
	}
	s, ok := strings.CutPrefix(raw, m.prefix)
	if !ok {
		return nil, fmt.Errorf("signature header %s lacks its prefix", m.header)
	}
	sig, err := m.decode(s)
	if err != nil {
		return nil, fmt.Errorf("signature header %s is not valid %s", m.header, m.encodingName())
	}
	return sig, nil
}

func (m *macScheme) encodingName() string {
	if m.b64 {
		return "base64"
	}
	return "hex"
}

func (m *macScheme) verifyStripe(header string, body []byte, now time.Time, tol time.Duration) error {
	if header == "" {
		return errors.New("signature header Stripe-Signature is missing")
	}
	var ts string
	var sigs [][]byte
	for _, item := range strings.Split(header, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = val
		case "v1":
			if b, err := hex.DecodeString(val); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if err := checkTimestamp(ts, now, tol); err != nil {
		return err
	}
	if len(sigs) == 0 {
		return errors.New("signature header Stripe-Signature has no v1 signature")
	}
	for _, s := range sigs {
		if m.match(s, []byte(ts+"."), body) {
			return nil
		}
	}
	return errBadSignature
}

// standardFamily is the header prefix of a Standard Webhooks request:
// "Webhook-", or "Svix-" (the spelling of Svix, the scheme's origin) when the
// request has a svix-signature and no webhook-signature. The id, timestamp
// and signature are all read from that one family: an id from one family
// next to a signature from the other is never accepted, so the verified id is
// the one the signature covers.
func standardFamily(h http.Header) string {
	if h.Get("Webhook-Signature") == "" && h.Get("Svix-Signature") != "" {
		return "Svix-"
	}
	return "Webhook-"
}

func (m *macScheme) verifyStandard(h http.Header, body []byte, now time.Time, tol time.Duration) (Verified, error) {
	fam := standardFamily(h)
	lower := strings.ToLower(fam)
	id := h.Get(fam + "Id")
	if id == "" {
		return Verified{}, fmt.Errorf("header %sid is missing", lower)
	}
	ts := h.Get(fam + "Timestamp")
	if err := checkTimestamp(ts, now, tol); err != nil {
		return Verified{}, err
	}
	header := h.Get(fam + "Signature")
	if header == "" {
		return Verified{}, fmt.Errorf("header %ssignature is missing", lower)
	}
	prefix := []byte(id + "." + ts + ".")
	for _, f := range strings.Fields(header) {
		ver, s, ok := strings.Cut(f, ",")
		if !ok || ver != "v1" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			continue
		}
		if m.match(sig, prefix, body) {
			return Verified{DeliveryID: id}, nil
		}
	}
	return Verified{}, errBadSignature
}
