// Package httpingest is the HTTP receiving machinery shared by the HTTP
// sources (webhook, alertmanager, dynatrace, ...). Sources never import each
// other, so everything they have in common lives here:
//
//   - Hub owns the listeners, so several sources can share one address, each
//     on its own paths; a listener opens with its first registration and
//     closes a little after its last (HubConfig.Linger: a source restarted by
//     a reload finds it still open, and its path answers 503 meanwhile).
//     Listener carries TLS (TLSFiles, with a client CA bundle for mTLS; the
//     files are read again when they change) and the read-header/read/write/
//     idle timeouts, which every source on one address must agree on.
//   - Endpoint is a source's http.Handler: IP allowlist (403), methods (405),
//     client certificate names (403), body limit (413), authentication (401),
//     content type (415), parsing (400), then Emit, answering 200 only once
//     the events are durable, 503 with Retry-After under back-pressure.
//   - Auth and Verifier check bearer tokens, basic auth, a token in a named
//     header and HMAC signatures (generic, or the github, shopify, slack,
//     stripe and standard presets), with several secrets at once and a
//     timestamp tolerance for the timestamped schemes; comparisons are
//     constant-time.
//   - ParseBody turns JSON, form, XML, text and raw bodies into a payload.
//   - DecodeSettings reads the arguments every HTTP source shares
//     (SettingsKeys, documented in SettingsSchema) and Settings.Endpoint
//     turns them into an Endpoint.
//
// A source embeds a Service (NewBase, then Base.Service with its Settings
// and the function that turns a request into entries), which gives it
// Listener, Paths and Run; Run calls Hub.Serve with its Listener, paths and
// Endpoint, and returns when its context ends, after the source's requests
// in flight.
package httpingest
