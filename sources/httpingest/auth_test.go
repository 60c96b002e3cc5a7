package httpingest

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needOpenSSL returns the openssl path; outside CI a missing openssl skips.
func needOpenSSL(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required (install it with test/setup.sh)")
		}
		t.Skip("openssl not installed; run test/setup.sh")
	}
	return p
}

// opensslHMAC computes HMAC(key, msg) with the openssl CLI, independently
// of Go's crypto: hex when b64 is false, base64 otherwise.
func opensslHMAC(t testing.TB, alg string, key []byte, msg []byte, b64 bool) string {
	t.Helper()
	bin := needOpenSSL(t)
	args := []string{"dgst", "-" + alg, "-mac", "HMAC", "-macopt", "hexkey:" + hexOf(key)}
	if b64 {
		args = append(args, "-binary")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v", args, err)
	}
	if b64 {
		return base64.StdEncoding.EncodeToString(out)
	}
	// "HMAC-SHA2-256(stdin)= <hex>"
	s := strings.TrimSpace(string(out))
	return s[strings.LastIndex(s, " ")+1:]
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func mustCompile(t testing.TB, a Auth) *Verifier {
	t.Helper()
	v, err := a.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var now = time.Unix(1700000000, 0)

func TestHMACPresetsAgainstOpenSSL(t *testing.T) {
	body := []byte(`{"action":"opened","number":42}`)
	secret, old, wrong := "It's a Secret to Everybody", "old-secret", "not-the-secret"
	ts := strconv.FormatInt(now.Unix(), 10)
	stale := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	future := strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10)

	gh := func(key string) string { return "sha256=" + opensslHMAC(t, "sha256", []byte(key), body, false) }
	shop := func(key string) string { return opensslHMAC(t, "sha256", []byte(key), body, true) }
	slack := func(key, ts string) string {
		return "v0=" + opensslHMAC(t, "sha256", []byte(key), []byte("v0:"+ts+":"+string(body)), false)
	}
	stripe := func(key, ts string) string {
		return opensslHMAC(t, "sha256", []byte(key), []byte(ts+"."+string(body)), false)
	}
	stdKey := []byte("0123456789abcdef0123456789abcdef")
	stdSecret := "whsec_" + base64.StdEncoding.EncodeToString(stdKey)
	stdSig := func(key []byte, id, ts string) string {
		return "v1," + opensslHMAC(t, "sha256", key, []byte(id+"."+ts+"."+string(body)), true)
	}
	generic := func(alg, key string, b64 bool) string { return opensslHMAC(t, alg, []byte(key), body, b64) }

	cases := []struct {
		name string
		mac  HMAC
		h    http.Header
		ok   bool
	}{
		{"github", HMAC{Preset: PresetGitHub, Secrets: []string{secret}}, hdr("X-Hub-Signature-256", gh(secret)), true},
		{"github lowercase header name", HMAC{Preset: PresetGitHub, Secrets: []string{secret}}, http.Header{"x-hub-signature-256": {gh(secret)}}, false},
		{"github wrong secret", HMAC{Preset: PresetGitHub, Secrets: []string{secret}}, hdr("X-Hub-Signature-256", gh(wrong)), false},
		{"github rotated: old secret still accepted", HMAC{Preset: PresetGitHub, Secrets: []string{secret, old}}, hdr("X-Hub-Signature-256", gh(old)), true},
		{"github rotated: new secret accepted", HMAC{Preset: PresetGitHub, Secrets: []string{secret, old}}, hdr("X-Hub-Signature-256", gh(secret)), true},
		{"github old secret after rotation", HMAC{Preset: PresetGitHub, Secrets: []string{secret}}, hdr("X-Hub-Signature-256", gh(old)), false},
		{"github without prefix", HMAC{Preset: PresetGitHub, Secrets: []string{secret}}, hdr("X-Hub-Signature-256", strings.TrimPrefix(gh(secret), "sha256=")), false},
		{"github missing header", HMAC{Preset: PresetGitHub, Secrets: []string{secret}}, hdr(), false},
		{"github not hex", HMAC{Preset: PresetGitHub, Secrets: []string{secret}}, hdr("X-Hub-Signature-256", "sha256=zz"), false},
		{"shopify", HMAC{Preset: PresetShopify, Secrets: []string{secret}}, hdr("X-Shopify-Hmac-Sha256", shop(secret)), true},
		{"shopify wrong secret", HMAC{Preset: PresetShopify, Secrets: []string{secret}}, hdr("X-Shopify-Hmac-Sha256", shop(wrong)), false},
		{"slack", HMAC{Preset: PresetSlack, Secrets: []string{secret}}, hdr("X-Slack-Signature", slack(secret, ts), "X-Slack-Request-Timestamp", ts), true},
		{"slack wrong secret", HMAC{Preset: PresetSlack, Secrets: []string{secret}}, hdr("X-Slack-Signature", slack(wrong, ts), "X-Slack-Request-Timestamp", ts), false},
		{"slack timestamp header changed", HMAC{Preset: PresetSlack, Secrets: []string{secret}}, hdr("X-Slack-Signature", slack(secret, ts), "X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix()-1, 10)), false},
		{"slack replay outside tolerance", HMAC{Preset: PresetSlack, Secrets: []string{secret}}, hdr("X-Slack-Signature", slack(secret, stale), "X-Slack-Request-Timestamp", stale), false},
		{"slack from the future", HMAC{Preset: PresetSlack, Secrets: []string{secret}}, hdr("X-Slack-Signature", slack(secret, future), "X-Slack-Request-Timestamp", future), false},
		{"slack no timestamp", HMAC{Preset: PresetSlack, Secrets: []string{secret}}, hdr("X-Slack-Signature", slack(secret, ts)), false},
		{"stripe", HMAC{Preset: PresetStripe, Secrets: []string{secret}}, hdr("Stripe-Signature", "t="+ts+",v1="+stripe(secret, ts)+",v0=deadbeef"), true},
		{"stripe second v1 matches (rotation on their side)", HMAC{Preset: PresetStripe, Secrets: []string{secret}}, hdr("Stripe-Signature", "t="+ts+",v1="+stripe(wrong, ts)+",v1="+stripe(secret, ts)), true},
		{"stripe wrong secret", HMAC{Preset: PresetStripe, Secrets: []string{secret}}, hdr("Stripe-Signature", "t="+ts+",v1="+stripe(wrong, ts)), false},
		{"stripe replay outside tolerance", HMAC{Preset: PresetStripe, Secrets: []string{secret}}, hdr("Stripe-Signature", "t="+stale+",v1="+stripe(secret, stale)), false},
		{"stripe t changed", HMAC{Preset: PresetStripe, Secrets: []string{secret}}, hdr("Stripe-Signature", "t="+strconv.FormatInt(now.Unix()+1, 10)+",v1="+stripe(secret, ts)), false},
		{"stripe only v0", HMAC{Preset: PresetStripe, Secrets: []string{secret}}, hdr("Stripe-Signature", "t="+ts+",v0="+stripe(secret, ts)), false},
		{"standard", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Webhook-Id", "msg_1", "Webhook-Timestamp", ts, "Webhook-Signature", stdSig(stdKey, "msg_1", ts)), true},
		{"standard several signatures", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Webhook-Id", "msg_1", "Webhook-Timestamp", ts, "Webhook-Signature", "v1,Zm9v v1a,xyz "+stdSig(stdKey, "msg_1", ts)), true},
		{"standard svix headers", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Svix-Id", "msg_1", "Svix-Timestamp", ts, "Svix-Signature", stdSig(stdKey, "msg_1", ts)), true},
		{"standard webhook id beside svix signature", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Webhook-Id", "msg_1", "Webhook-Timestamp", ts, "Svix-Signature", stdSig(stdKey, "msg_1", ts)), false},
		{"standard svix id beside webhook signature", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Svix-Id", "msg_1", "Svix-Timestamp", ts, "Webhook-Signature", stdSig(stdKey, "msg_1", ts)), false},
		{"standard id changed", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Webhook-Id", "msg_2", "Webhook-Timestamp", ts, "Webhook-Signature", stdSig(stdKey, "msg_1", ts)), false},
		{"standard wrong secret", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Webhook-Id", "msg_1", "Webhook-Timestamp", ts, "Webhook-Signature", stdSig([]byte("wrong"), "msg_1", ts)), false},
		{"standard replay outside tolerance", HMAC{Preset: PresetStandard, Secrets: []string{stdSecret}}, hdr("Webhook-Id", "msg_1", "Webhook-Timestamp", stale, "Webhook-Signature", stdSig(stdKey, "msg_1", stale)), false},
		{"standard rotated", HMAC{Preset: PresetStandard, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("newkey")), stdSecret}}, hdr("Webhook-Id", "msg_1", "Webhook-Timestamp", ts, "Webhook-Signature", stdSig(stdKey, "msg_1", ts)), true},
		{"generic sha1 hex with prefix", HMAC{Header: "X-Hub-Signature", Algorithm: "sha1", Prefix: "sha1=", Secrets: []string{secret}}, hdr("X-Hub-Signature", "sha1="+generic("sha1", secret, false)), true},
		{"generic sha512 base64", HMAC{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", Secrets: []string{secret}}, hdr("X-Sig", generic("sha512", secret, true)), true},
		{"generic sha512 base64 wrong secret", HMAC{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", Secrets: []string{secret}}, hdr("X-Sig", generic("sha512", wrong, true)), false},
		{"generic sha256 uppercase hex", HMAC{Header: "X-Sig", Secrets: []string{secret}}, hdr("X-Sig", strings.ToUpper(generic("sha256", secret, false))), true},
		{"generic algorithm mismatch", HMAC{Header: "X-Sig", Algorithm: "sha256", Secrets: []string{secret}}, hdr("X-Sig", generic("sha1", secret, false)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mac := tc.mac
			v := mustCompile(t, Auth{HMAC: &mac})
			err := v.Verify(tc.h, body, now)
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("accepted")
			}
			if !tc.ok {
				if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), old) {
					t.Fatalf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

// TestPublishedVectors checks schemes against examples from the providers'
// own documentation.
func TestPublishedVectors(t *testing.T) {
	// Standard Webhooks specification / svix libraries test vector.
	v := mustCompile(t, Auth{HMAC: &HMAC{Preset: PresetStandard, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}})
	h := hdr("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp", "1614265330",
		"Webhook-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	if err := v.Verify(h, body, time.Unix(1614265330, 0).Add(time.Minute)); err != nil {
		t.Fatalf("standard webhooks vector rejected: %v", err)
	}
	if err := v.Verify(h, body, time.Unix(1614265330, 0).Add(10*time.Minute)); err == nil {
		t.Fatal("standard webhooks vector accepted 10 minutes later")
	}
	// Slack's worked example (api.slack.com/authentication/verifying-requests-from-slack).
	slackBody := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V" +
		"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=" +
		"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN" +
		"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	sl := mustCompile(t, Auth{HMAC: &HMAC{Preset: PresetSlack, Secrets: []string{"8f742231b10e8888abcd99yyyzzz85a5"}}})
	sh := hdr("X-Slack-Request-Timestamp", "1531420618", "X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
	if err := sl.Verify(sh, []byte(slackBody), time.Unix(1531420618, 0).Add(time.Minute)); err != nil {
		t.Fatalf("slack documented vector rejected: %v", err)
	}
	if err := sl.Verify(sh, []byte(slackBody+"&x=1"), time.Unix(1531420618, 0)); err == nil {
		t.Fatal("slack vector accepted for another body")
	}
	// GitHub's documented example: secret "It's a Secret to Everybody",
	// payload "Hello, World!".
	gh := mustCompile(t, Auth{HMAC: &HMAC{Preset: PresetGitHub, Secrets: []string{"It's a Secret to Everybody"}}})
	if err := gh.Verify(hdr("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), []byte("Hello, World!"), now); err != nil {
		t.Fatalf("github documented vector rejected: %v", err)
	}
}

// TestStandardDeliveryID: Check returns the id the signature covers, from
// the header family that was verified, never an unsigned id beside it.
func TestStandardDeliveryID(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	v := mustCompile(t, Auth{HMAC: &HMAC{Preset: PresetStandard, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString(key)}}})
	if !v.SignsDeliveryID() || mustCompile(t, Auth{HMAC: &HMAC{Preset: PresetGitHub, Secrets: []string{"s"}}}).SignsDeliveryID() || (*Verifier)(nil).SignsDeliveryID() {
		t.Fatal("SignsDeliveryID: only the standard preset signs an id")
	}
	body := []byte(`{"a":1}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := func(id string) string {
		return "v1," + opensslHMAC(t, "sha256", key, []byte(id+"."+ts+"."+string(body)), true)
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		id   string
	}{
		{"webhook", hdr("Webhook-Id", "msg_w", "Webhook-Timestamp", ts, "Webhook-Signature", sig("msg_w")), "msg_w"},
		{"svix", hdr("Svix-Id", "msg_s", "Svix-Timestamp", ts, "Svix-Signature", sig("msg_s")), "msg_s"},
		{"svix with a stray webhook-id", hdr("Svix-Id", "msg_s", "Svix-Timestamp", ts, "Svix-Signature", sig("msg_s"), "Webhook-Id", "other"), "msg_s"},
		{"webhook with a stray svix-id", hdr("Webhook-Id", "msg_w", "Webhook-Timestamp", ts, "Webhook-Signature", sig("msg_w"), "Svix-Id", "other"), "msg_w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Check(tc.h, body, now)
			if err != nil || got.DeliveryID != tc.id {
				t.Fatalf("got %+v, %v; want id %q", got, err, tc.id)
			}
		})
	}
}

func TestToleranceConfigurable(t *testing.T) {
	key := "k"
	body := []byte("x")
	ts := strconv.FormatInt(now.Add(-90*time.Second).Unix(), 10)
	h := hdr("X-Slack-Signature", "v0="+opensslHMAC(t, "sha256", []byte(key), []byte("v0:"+ts+":x"), false), "X-Slack-Request-Timestamp", ts)
	for _, tc := range []struct {
		tol time.Duration
		ok  bool
	}{{0, true}, {time.Minute, false}, {2 * time.Minute, true}} {
		v := mustCompile(t, Auth{Tolerance: tc.tol, HMAC: &HMAC{Preset: PresetSlack, Secrets: []string{key}}})
		if err := v.Verify(h, body, now); (err == nil) != tc.ok {
			t.Errorf("tolerance %s: err = %v, want ok=%v", tc.tol, err, tc.ok)
		}
	}
}

func TestTokensAndBasic(t *testing.T) {
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	bearerAndBasic := Auth{BearerTokens: []string{"t1", "t2"}, Basic: []BasicUser{{"am", "pw"}}}
	header := Auth{HeaderToken: &HeaderToken{Header: "x-gitlab-token", Tokens: []string{"gl-new", "gl-old"}}}
	both := Auth{BearerTokens: []string{"t1"}, HeaderToken: &HeaderToken{Header: "X-Gitlab-Token", Tokens: []string{"gl"}}}
	cases := []struct {
		name string
		auth Auth
		h    http.Header
		ok   bool
	}{
		{"bearer", bearerAndBasic, hdr("Authorization", "Bearer t1"), true},
		{"bearer rotated", bearerAndBasic, hdr("Authorization", "Bearer t2"), true},
		{"bearer lowercase scheme", bearerAndBasic, hdr("Authorization", "bearer t1"), true},
		{"bearer wrong", bearerAndBasic, hdr("Authorization", "Bearer t3"), false},
		{"bearer prefix of token", bearerAndBasic, hdr("Authorization", "Bearer t"), false},
		{"basic", bearerAndBasic, hdr("Authorization", basic("am", "pw")), true},
		{"basic wrong password", bearerAndBasic, hdr("Authorization", basic("am", "px")), false},
		{"basic wrong user", bearerAndBasic, hdr("Authorization", basic("ax", "pw")), false},
		{"basic not base64", bearerAndBasic, hdr("Authorization", "Basic !!!"), false},
		{"no authorization", bearerAndBasic, hdr(), false},
		{"other scheme", bearerAndBasic, hdr("Authorization", "Digest x"), false},
		{"bare token without scheme", bearerAndBasic, hdr("Authorization", "t1-bare-secret"), false},
		{"basic only: bearer refused", Auth{Basic: []BasicUser{{"am", "pw"}}}, hdr("Authorization", "Bearer pw"), false},
		{"header token", header, hdr("X-Gitlab-Token", "gl-new"), true},
		{"header token rotated", header, hdr("X-Gitlab-Token", "gl-old"), true},
		{"header token wrong", header, hdr("X-Gitlab-Token", "gl"), false},
		{"header token missing", header, hdr("Authorization", "Bearer gl-new"), false},
		{"combined both present", both, hdr("Authorization", "Bearer t1", "X-Gitlab-Token", "gl"), true},
		{"combined header missing", both, hdr("Authorization", "Bearer t1"), false},
		{"combined bearer missing", both, hdr("X-Gitlab-Token", "gl"), false},
		{"no auth accepts", Auth{}, hdr(), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mustCompile(t, tc.auth).Verify(tc.h, nil, now)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			// The reason is logged: it must not repeat what the client sent.
			if err != nil {
				for _, vs := range tc.h {
					for _, v := range vs {
						if len(v) > 3 && strings.Contains(err.Error(), v) {
							t.Fatalf("reason %q repeats the header value %q", err, v)
						}
						for _, part := range strings.Fields(v) {
							if len(part) > 3 && strings.Contains(err.Error(), part) {
								t.Fatalf("reason %q repeats %q from the request", err, part)
							}
						}
					}
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		auth Auth
		want string
	}{
		{"empty token", Auth{BearerTokens: []string{""}}, "token.0: token is empty"},
		{"basic no user", Auth{Basic: []BasicUser{{"", "p"}}}, "basic.0.username: username is empty"},
		{"header token no header", Auth{HeaderToken: &HeaderToken{Tokens: []string{"x"}}}, "header_token.header: header is required"},
		{"header token no tokens", Auth{HeaderToken: &HeaderToken{Header: "X"}}, "header_token.tokens: at least one token is required"},
		{"hmac no header", Auth{HMAC: &HMAC{Secrets: []string{"s"}}}, "hmac.header: header is required without a preset (one of github, shopify, slack, stripe, standard)"},
		{"hmac preset and header", Auth{HMAC: &HMAC{Preset: PresetGitHub, Header: "X", Secrets: []string{"s"}}}, `hmac.header: cannot be set with preset "github"`},
		{"hmac unknown preset", Auth{HMAC: &HMAC{Preset: "gitea", Secrets: []string{"s"}}}, `hmac.preset: preset "gitea" is not one of github, shopify, slack, stripe, standard`},
		{"hmac bad algorithm", Auth{HMAC: &HMAC{Header: "X", Algorithm: "md5", Secrets: []string{"s"}}}, `hmac.algorithm: algorithm "md5" is not sha1, sha256 or sha512`},
		{"hmac bad encoding", Auth{HMAC: &HMAC{Header: "X", Encoding: "b32", Secrets: []string{"s"}}}, `hmac.encoding: encoding "b32" is not hex or base64`},
		{"hmac no secret", Auth{HMAC: &HMAC{Preset: PresetGitHub}}, "hmac.secrets: at least one secret is required"},
		{"standard secret not base64", Auth{HMAC: &HMAC{Preset: PresetStandard, Secrets: []string{"whsec_%%%secret%%%"}}}, `hmac.secrets.0: standard webhooks secret is not "whsec_" followed by base64`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.auth.Compile()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzVerify: whatever the headers and body, Verify must not panic and must
// not accept a request whose signature was made with another secret; a
// correctly signed body is accepted and the same signature on another body
// is refused.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "sha256=00", "t=1,v1=00", "v1,AAAA", "1700000000")
	f.Add([]byte(""), "", "", "", "")
	f.Add([]byte("x"), "sha256=zz", "t=,v1=,,=,", "v1, v1,!!", "-5")
	secret := []byte("fuzz-secret")
	presets := []Auth{
		{HMAC: &HMAC{Preset: PresetGitHub, Secrets: []string{string(secret)}}},
		{HMAC: &HMAC{Preset: PresetStripe, Secrets: []string{string(secret)}}},
		{HMAC: &HMAC{Preset: PresetStandard, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString(secret)}}},
		{HMAC: &HMAC{Preset: PresetSlack, Secrets: []string{string(secret)}}},
	}
	var vs []*Verifier
	for _, a := range presets {
		vs = append(vs, mustCompile(f, a))
	}
	f.Fuzz(func(t *testing.T, body []byte, sig, stripeSig, stdSig, ts string) {
		h := hdr("X-Hub-Signature-256", sig, "Stripe-Signature", stripeSig, "Webhook-Id", "id",
			"Webhook-Timestamp", ts, "Webhook-Signature", stdSig, "X-Slack-Signature", sig, "X-Slack-Request-Timestamp", ts)
		for i, v := range vs {
			if v.Verify(h, body, now) == nil {
				t.Fatalf("preset %d accepted a forged signature", i)
			}
		}
		// A real GitHub signature of body verifies, and not for body+"x".
		good := hdr("X-Hub-Signature-256", "sha256="+hexOf(vs[0].mac.sum(secret, body)))
		if err := vs[0].Verify(good, body, now); err != nil {
			t.Fatalf("genuine signature rejected: %v", err)
		}
		if vs[0].Verify(good, append(append([]byte{}, body...), 'x'), now) == nil {
			t.Fatal("signature accepted for another body")
		}
	})
}
