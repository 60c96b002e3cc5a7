// Package alertmanager is the `alertmanager` source: it receives Prometheus
// Alertmanager's webhook notifications (payload version "4") and turns each
// alert into one event, through the same durable HTTP ingest path as the
// webhook source (httpingest): the answer is 200 only once the events are
// durable, 5xx otherwise (503 with Retry-After when the engine's backlog is
// full), because Alertmanager retries only on 5xx. A payload that is not a
// version 4 notification is answered 400 with the reason, which Alertmanager
// logs and does not retry.
//
// # Arguments
//
// Every argument of the webhook source about listening, TLS, limits and
// authentication (host, port, address, path, paths, methods, tls,
// max_body_bytes, allow_ips, token, basic, header_token, hmac, insecure, the
// timeouts) means the same here; path defaults to "/". Bodies are read as
// JSON whatever their Content-Type. Alertmanager's webhook_configs can send
// a bearer token (http_config.authorization.credentials) or basic auth
// (http_config.basic_auth) and a client certificate (http_config.tls_config).
// Beyond those:
//
//	host_label: instance       # label naming the affected host (default
//	                           # instance); a list tries each in order
//	notification_event: false  # also emit one event for the whole notification
//	dedupe_window: 24h         # how long an alert state is remembered (default 24h)
//
// # Events
//
// One event per alert, all of one notification stored atomically (one Emit):
//
//	alert:                      # the alert object as received, unknown fields kept
//	  status: firing            # or resolved
//	  labels: {alertname: ..., instance: ...}
//	  annotations: {...}
//	  startsAt, endsAt, generatorURL, fingerprint
//	group:                      # the notification's other fields
//	  receiver, status, groupKey, groupLabels, commonLabels,
//	  commonAnnotations, externalURL, truncatedAlerts, version
//	meta:
//	  hosts: [10.0.0.5]         # from host_label, port stripped (IPv6-aware)
//	  headers, endpoint, remote_addr, uuid, source, received_at
//
// With notification_event: true, one more event (stored first, in the same
// Emit) carries the whole notification, alerts included:
//
//	notification: {receiver, status, groupKey, ..., alerts: [...]}
//	meta: {hosts: [every alert's host, once], ...}
//
// # Repeats
//
// Alertmanager repeats a notification every repeat_interval while the alert
// fires, and a group notification lists every alert of the group again when
// one of them changes. An alert event is therefore deduplicated on
// fingerprint + status + startsAt within dedupe_window: a repeat is answered
// 200 and not processed again, a resolution or a new firing (a new startsAt)
// is. An alert is also ordered by its fingerprint: a late retry of its firing
// that arrives after its resolution (as from a second Alertmanager of an HA
// pair) is stale and not processed. The notification event is deduplicated
// on groupKey + the states of its alerts.
package alertmanager

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// Type is the source type in rulebooks.
const Type = "alertmanager"

// DefaultDedupeWindow is how long an alert state is remembered when
// dedupe_window is not set: longer than a typical repeat_interval (4h).
const DefaultDedupeWindow = 24 * time.Hour

// DefaultHostLabel is the label meta.hosts is taken from by default.
const DefaultHostLabel = "instance"

var _ engine.Source = (*Source)(nil)

// Spec registers the alertmanager source. It listens through hub, which the
// CLI shares with the other HTTP sources and stops on shutdown.
func Spec(hub *httpingest.Hub) engine.SourceSpec {
	return engine.SourceSpec{
		Type:        Type,
		Description: "receive Prometheus Alertmanager webhook notifications: one event per alert, repeats deduplicated",
		Check:       Check,
		Schema:      Schema(),
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			return New(hub, cfg)
		},
	}
}

var ownKeys = []string{"host_label", "notification_event", "dedupe_window"}

// Schema is the JSON Schema (draft 2020-12) of the alertmanager arguments.
func Schema() map[string]any {
	props := httpingest.SettingsSchema()
	props["host_label"] = map[string]any{
		"description": "label naming the affected host, for meta.hosts (default instance); a list tries each in order",
		"oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1},
		},
	}
	props["notification_event"] = map[string]any{"type": "boolean", "description": "also emit one event for the whole notification (default false)"}
	props["dedupe_window"] = map[string]any{"type": []any{"string", "number"}, "description": `how long an alert state (fingerprint, status, startsAt) is remembered (default "24h"; a duration or seconds)`}
	return httpingest.ArgsSchema(Type, "alertmanager source arguments", props)
}

type config struct {
	http              httpingest.Settings
	hostLabels        []string
	notificationEvent bool
	dedupeWindow      time.Duration
}

// Check validates args as written in the rulebook (secret references not
// resolved). Errors are *engine.ArgError naming the key.
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
	if hs.ContentType == "" {
		hs.ContentType = "application/json"
	}
	c := &config{http: hs, hostLabels: []string{DefaultHostLabel}}
	switch v := args["host_label"].(type) {
	case nil:
	case string:
		if strings.TrimSpace(v) == "" {
			return nil, engine.ArgErrorf([]string{"host_label"}, "must be a label name")
		}
		c.hostLabels = []string{v}
	case []any:
		if len(v) == 0 {
			return nil, engine.ArgErrorf([]string{"host_label"}, "must name at least one label")
		}
		c.hostLabels = c.hostLabels[:0]
		for i, x := range v {
			s, ok := x.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return nil, engine.ArgErrorf([]string{"host_label", fmt.Sprint(i)}, "must be a label name")
			}
			c.hostLabels = append(c.hostLabels, s)
		}
	default:
		return nil, engine.ArgErrorf([]string{"host_label"}, "must be a label name or a list of them")
	}
	if c.notificationEvent, err = httpingest.BoolArg(args, "notification_event", false); err != nil {
		return nil, err
	}
	if c.dedupeWindow, err = httpingest.DurationArg(args, "dedupe_window", DefaultDedupeWindow); err != nil {
		return nil, err
	}
	return c, nil
}

// Source is a running alertmanager source. Its Listener, Paths and Run are the
// httpingest.Service's; what is its own is build.
type Source struct {
	httpingest.Service
	cfg *config
}

// New builds an alertmanager source from resolved arguments.
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
	n, err := Decode(req.Payload)
	if err != nil {
		return nil, fmt.Errorf("alertmanager notification: %w", err)
	}
	r := req.HTTP
	// One headers map serves every event of the request (as n.Group does):
	// a notification of many alerts would otherwise copy the headers once
	// per alert on the request path.
	headers := req.SafeHeaders()
	reqMeta := func(hosts []string) map[string]any {
		return map[string]any{
			engine.MetaHosts:   hosts,
			engine.MetaHeaders: headers,
			"endpoint":         r.URL.Path,
			"remote_addr":      r.RemoteAddr,
		}
	}
	return Entries(n, EntryOptions{
		HostLabels:        s.cfg.hostLabels,
		NotificationEvent: s.cfg.notificationEvent,
		DedupeWindow:      s.cfg.dedupeWindow,
		Meta:              reqMeta,
		Source:            s.Ref,
		Received:          req.Received,
	}), nil
}

// EntryOptions say how Entries shapes events.
type EntryOptions struct {
	// HostLabels are tried in order for meta.hosts; empty: instance.
	HostLabels        []string
	NotificationEvent bool
	// DedupeWindow of every entry (zero: the journal's default).
	DedupeWindow time.Duration
	// Meta returns the meta object of one event, given its hosts; nil:
	// just the hosts.
	Meta     func(hosts []string) map[string]any
	Source   engine.SourceRef
	Received time.Time
}

// Entries turns a notification into its entries: the notification event
// first when asked for, then one per alert, in the notification's order.
func Entries(n *Notification, o EntryOptions) []engine.Entry {
	labels := o.HostLabels
	if len(labels) == 0 {
		labels = []string{DefaultHostLabel}
	}
	meta := o.Meta
	if meta == nil {
		meta = func(hosts []string) map[string]any { return map[string]any{engine.MetaHosts: hosts} }
	}
	// The notification event, when asked for, comes first: entries[0] is
	// kept for it and filled once every alert's host and state is known.
	// Only it needs allHosts and states.
	entries := make([]engine.Entry, 0, len(n.Alerts)+1)
	var allHosts, states []string
	var seenHost map[string]bool
	if o.NotificationEvent {
		entries = entries[:1]
		seenHost = map[string]bool{}
		states = make([]string, 0, len(n.Alerts))
	}
	for _, a := range n.Alerts {
		hosts := []string{}
		if h := hostFor(a.Labels, labels); h != "" {
			hosts = append(hosts, h)
			if o.NotificationEvent && !seenHost[h] {
				seenHost[h] = true
				allHosts = append(allHosts, h)
			}
		}
		body := map[string]any{
			"alert":        a.Fields,
			"group":        n.Group,
			engine.MetaKey: meta(hosts),
		}
		ev := engine.NewEvent(body, o.Source.Name, o.Source.Type, o.Received)
		key := a.DedupeKey()
		entries = append(entries, engine.Entry{
			Event:        ev,
			DedupeKey:    key,
			DedupeWindow: o.DedupeWindow,
			OrderKey:     "alert/" + a.Fingerprint,
			Timestamp:    a.StateTime(),
		})
		if o.NotificationEvent {
			states = append(states, key)
		}
	}
	if o.NotificationEvent {
		whole := make(map[string]any, len(n.Group)+1)
		for k, v := range n.Group {
			whole[k] = v
		}
		alerts := make([]any, len(n.Alerts))
		for i, a := range n.Alerts {
			alerts[i] = a.Fields
		}
		whole["alerts"] = alerts
		if allHosts == nil {
			allHosts = []string{}
		}
		ev := engine.NewEvent(map[string]any{"notification": whole, engine.MetaKey: meta(allHosts)}, o.Source.Name, o.Source.Type, o.Received)
		sort.Strings(states)
		entries[0] = engine.Entry{
			Event:        ev,
			DedupeKey:    "notification/" + hashHex(n.GroupKey+"\x00"+n.Status+"\x00"+strings.Join(states, "\x00")),
			DedupeWindow: o.DedupeWindow,
		}
	}
	return entries
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func hostFor(labels map[string]string, names []string) string {
	for _, n := range names {
		if h := HostOf(labels[n]); h != "" {
			return h
		}
	}
	return ""
}
