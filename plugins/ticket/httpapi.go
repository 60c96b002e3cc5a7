package ticket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// apiError is a failed call to a ticket system, classified for the engine.
type apiError struct {
	// Status is the HTTP status (0 for a transport error).
	Status     int
	Retryable  bool
	RetryAfter time.Duration
	Msg        string
}

func (e *apiError) Error() string { return e.Msg }

// api calls one ticket system's REST API.
type api struct {
	http    *http.Client
	system  string
	base    string // scheme://host[/prefix], no trailing slash
	header  http.Header
	now     func() time.Time
	maxBody int64
}

// call sends one request. body, when not nil, is sent as JSON; out, when
// not nil, receives the decoded JSON answer of a 2xx. Every other outcome
// is an *apiError: 429, 408 and 5xx and transport errors are retryable
// (429 and 503 with their Retry-After), other 4xx are not.
func (a *api) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := a.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &apiError{Msg: fmt.Sprintf("%s: encode request: %v", a.system, err)}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &apiError{Msg: fmt.Sprintf("%s: url %q: %v", a.system, redactURL(a.base), err)}
	}
	for k, v := range a.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return &apiError{Retryable: true, Msg: fmt.Sprintf("%s: %s %s: %v", a.system, method, path, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	limit := a.maxBody
	if limit <= 0 {
		limit = 4 << 20
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return &apiError{Status: resp.StatusCode, Retryable: true, Msg: fmt.Sprintf("%s: %s %s: read response: %v", a.system, method, path, err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil && len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				return &apiError{Status: resp.StatusCode, Msg: fmt.Sprintf("%s: %s %s: answer is not the documented JSON: %v", a.system, method, path, err)}
			}
		}
		return nil
	}
	e := &apiError{
		Status: resp.StatusCode,
		Msg:    fmt.Sprintf("%s: %s %s: %s", a.system, method, path, describeFailure(resp.StatusCode, raw)),
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header, a.now())
	case resp.StatusCode == http.StatusForbidden && rateLimited(resp.Header):
		// GitHub's primary and secondary rate limits answer 403.
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header, a.now())
	}
	return e
}

// retryAfter reads Retry-After (seconds or an HTTP date), then GitHub's
// x-ratelimit-reset (a Unix time).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d.Round(time.Second)
			}
			return 0
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			if d := time.Unix(reset, 0).Sub(now); d > 0 {
				return d.Round(time.Second)
			}
		}
	}
	return 0
}

func rateLimited(h http.Header) bool {
	return h.Get("Retry-After") != "" || h.Get("X-RateLimit-Remaining") == "0"
}

// describeFailure says what the API answered, using the error fields that
// ServiceNow ({"error":{"message","detail"}}), Jira ({"errorMessages":[],
// "errors":{}}) and GitHub ({"message"}) document.
func describeFailure(status int, raw []byte) string {
	msg := fmt.Sprintf("HTTP %d", status)
	var doc struct {
		Error         json.RawMessage   `json:"error"`
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
		Message       string            `json:"message"`
	}
	var parts []string
	if json.Unmarshal(raw, &doc) == nil {
		var sn struct{ Message, Detail string }
		if len(doc.Error) > 0 && json.Unmarshal(doc.Error, &sn) == nil {
			parts = appendNonEmpty(parts, sn.Message, sn.Detail)
		}
		parts = appendNonEmpty(parts, doc.ErrorMessages...)
		keys := make([]string, 0, len(doc.Errors))
		for k := range doc.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, k+": "+doc.Errors[k])
		}
		parts = appendNonEmpty(parts, doc.Message)
	}
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, "; ")
	}
	const max = 400
	if len(msg) > max {
		msg = msg[:max] + "..."
	}
	return msg
}

func appendNonEmpty(dst []string, ss ...string) []string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			dst = append(dst, s)
		}
	}
	return dst
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL drops user info from a URL before it goes into a message.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
