package alertmanager

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// Version is the webhook payload version this source reads.
const Version = "4"

// Notification is one decoded Alertmanager webhook notification.
type Notification struct {
	// Group holds every top-level field except alerts (receiver, status,
	// groupKey, groupLabels, commonLabels, commonAnnotations, externalURL,
	// truncatedAlerts, version, and any field a newer Alertmanager adds), as
	// received.
	Group map[string]any
	// Status is the notification's status ("firing" or "resolved"), "" when
	// the sender gave none.
	Status string
	// GroupKey identifies the alert group, "" when absent.
	GroupKey string
	Alerts   []Alert
}

// Alert is one alert of a notification.
type Alert struct {
	// Fields is the alert object as received, unknown fields included.
	Fields map[string]any
	// Status is "firing" or "resolved".
	Status string
	Labels map[string]string
	// Fingerprint is the sender's, or when it sent none the one Alertmanager
	// computes from the labels (FNV-1a 64 of the sorted label pairs).
	Fingerprint string
	StartsAt    time.Time
	// EndsAt is zero when the sender gave none (or Go's zero time, which
	// Alertmanager sends for firing alerts).
	EndsAt time.Time
}

// DedupeKey identifies one state of the alert: a repeat notification of the
// same firing (or resolution) carries the same key, a new firing after a
// resolution a new startsAt and so a new key.
func (a Alert) DedupeKey() string {
	return "alert/" + a.Fingerprint + "/" + a.Status + "/" + a.StartsAt.UTC().Format(time.RFC3339Nano)
}

// StateTime is when the alert entered its status: startsAt when firing, the
// later of startsAt and endsAt when resolved.
func (a Alert) StateTime() time.Time {
	if a.Status == "resolved" && a.EndsAt.After(a.StartsAt) {
		return a.EndsAt
	}
	return a.StartsAt
}

// Decode reads a parsed webhook body (what encoding/json makes of it) as a
// version 4 notification. Errors say which field is wrong, for a 400 answer.
// Unknown fields are kept in Group and Alert.Fields.
func Decode(payload any) (*Notification, error) {
	obj, ok := payload.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("body is %s, not an alertmanager notification object", httpingest.ValueKind(payload))
	}
	if v, ok := obj["version"]; ok {
		s, isStr := v.(string)
		if !isStr || s != Version {
			return nil, fmt.Errorf("version: %s is not supported (only %q)", httpingest.DescribeValue(v), Version)
		}
	}
	n := &Notification{Group: make(map[string]any, len(obj))}
	for k, v := range obj {
		if k != "alerts" {
			n.Group[k] = v
		}
	}
	var err error
	if n.Status, err = optString(obj, "status"); err != nil {
		return nil, err
	}
	if n.GroupKey, err = optString(obj, "groupKey"); err != nil {
		return nil, err
	}
	for _, k := range []string{"groupLabels", "commonLabels", "commonAnnotations"} {
		if v, ok := obj[k]; ok && v != nil {
			if _, err := stringMap(v); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	raw, ok := obj["alerts"]
	if !ok {
		return nil, errors.New("alerts: missing")
	}
	list, ok := raw.([]any)
	if !ok && raw != nil {
		return nil, fmt.Errorf("alerts: is %s, not a list", httpingest.ValueKind(raw))
	}
	n.Alerts = make([]Alert, 0, len(list))
	for i, item := range list {
		a, err := decodeAlert(item)
		if err != nil {
			if err.field == "" {
				return nil, fmt.Errorf("alerts[%d]: %s", i, err.msg)
			}
			return nil, fmt.Errorf("alerts[%d].%s: %s", i, err.field, err.msg)
		}
		n.Alerts = append(n.Alerts, a)
	}
	return n, nil
}

// fieldError says which field of an alert is wrong ("" for the alert
// itself); Decode prefixes it with the alert's index.
type fieldError struct {
	field string
	msg   string
}

func decodeAlert(item any) (Alert, *fieldError) {
	obj, ok := item.(map[string]any)
	if !ok {
		return Alert{}, &fieldError{"", fmt.Sprintf("is %s, not an alert object", httpingest.ValueKind(item))}
	}
	a := Alert{Fields: obj}
	st, _ := obj["status"].(string)
	if st != "firing" && st != "resolved" {
		return Alert{}, &fieldError{"status", fmt.Sprintf(`must be "firing" or "resolved", not %s`, httpingest.DescribeValue(obj["status"]))}
	}
	a.Status = st
	lv, ok := obj["labels"]
	if !ok || lv == nil {
		return Alert{}, &fieldError{"labels", "missing"}
	}
	labels, lerr := stringMap(lv)
	if lerr != nil {
		return Alert{}, &fieldError{"labels", lerr.Error()}
	}
	a.Labels = labels
	if v, ok := obj["annotations"]; ok && v != nil {
		if _, err := stringMap(v); err != nil {
			return Alert{}, &fieldError{"annotations", err.Error()}
		}
	}
	var err error
	sv, ok := obj["startsAt"].(string)
	if !ok {
		return Alert{}, &fieldError{"startsAt", fmt.Sprintf("must be an RFC 3339 time, not %s", httpingest.DescribeValue(obj["startsAt"]))}
	}
	if a.StartsAt, err = time.Parse(time.RFC3339Nano, sv); err != nil {
		return Alert{}, &fieldError{"startsAt", fmt.Sprintf("%q is not an RFC 3339 time", sv)}
	}
	if v, ok := obj["endsAt"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr {
			return Alert{}, &fieldError{"endsAt", fmt.Sprintf("must be an RFC 3339 time, not %s", httpingest.DescribeValue(v))}
		}
		if s != "" {
			if a.EndsAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return Alert{}, &fieldError{"endsAt", fmt.Sprintf("%q is not an RFC 3339 time", s)}
			}
			if a.EndsAt.Year() <= 1 {
				a.EndsAt = time.Time{}
			}
		}
	}
	for _, k := range []string{"generatorURL", "fingerprint"} {
		if v, ok := obj[k]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				return Alert{}, &fieldError{k, fmt.Sprintf("must be a string, not %s", httpingest.DescribeValue(v))}
			}
		}
	}
	a.Fingerprint, _ = obj["fingerprint"].(string)
	if a.Fingerprint == "" {
		a.Fingerprint = Fingerprint(labels)
	}
	return a, nil
}

// Fingerprint is Alertmanager's fingerprint of a label set: FNV-1a 64 over
// the label names in order, each name and value followed by 0xff, as 16 hex
// digits.
func Fingerprint(labels map[string]string) string {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	h := uint64(offset)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h ^= 0xff
		h *= prime
	}
	for _, k := range names {
		add(k)
		add(labels[k])
	}
	return fmt.Sprintf("%016x", h)
}

// HostOf turns a label value naming a target into a host: the port is
// stripped ("10.0.0.5:9100" → "10.0.0.5", "[2001:db8::1]:9100" →
// "2001:db8::1"), a bare IPv6 address is kept whole, and a URL (a blackbox
// probe's instance) gives its host name. "" when nothing is left.
func HostOf(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if strings.Contains(v, "://") {
		if u, err := url.Parse(v); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	if h, _, err := net.SplitHostPort(v); err == nil {
		return h
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		return v[1 : len(v)-1]
	}
	return v
}

func optString(obj map[string]any, key string) (string, error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", fmt.Errorf("%s: must be a string, not %s", key, httpingest.DescribeValue(v))
	}
	return s, nil
}

// stringMap reads a label or annotation set: an object of strings.
func stringMap(v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is %s, not an object of strings", httpingest.ValueKind(v))
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%q is %s, not a string", k, httpingest.ValueKind(x))
		}
		out[k] = s
	}
	return out, nil
}
