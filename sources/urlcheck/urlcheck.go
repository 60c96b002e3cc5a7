// Package urlcheck is the `url_check` source: it polls URLs and emits
// {"url_check": {"url", "status": "up"|"down", "status_code" | "error_msg"}}
// for each, every delay, like ansible.eda.url_check.
package urlcheck

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// Type is the source's key in rulebooks.
const Type = "url_check"

// Spec registers the source as `url_check`.
func Spec() engine.SourceSpec {
	return engine.SourceSpec{
		Type:        Type,
		Description: "polls URLs every delay and emits whether each is up (HTTP 200) or down",
		Check:       func(args map[string]any) error { _, err := parse(args); return err },
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			c, err := parse(cfg.Args)
			if err != nil {
				return nil, err
			}
			c.ref = engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}
			c.clock = cfg.Clock
			return c, nil
		},
		Schema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"urls"},
			"properties": map[string]any{
				"urls":       map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1, "description": "URLs to GET"},
				"delay":      map[string]any{"description": "pause between rounds: seconds or a duration (default 1)"},
				"verify_ssl": map[string]any{"type": "boolean", "description": "verify HTTPS certificates (default true)"},
				"timeout":    map[string]any{"description": "time limit of one request (default 10s)"},
			},
		},
	}
}

// Check is a running url_check source.
type Check struct {
	urls    []string
	delay   time.Duration
	timeout time.Duration
	client  *http.Client
	ref     engine.SourceRef
	clock   engine.Clock
}

var _ engine.Source = (*Check)(nil)

func parse(args map[string]any) (*Check, error) {
	c := &Check{delay: time.Second, timeout: 10 * time.Second}
	verify := true
	raw, ok := args["urls"].([]any)
	if !ok || len(raw) == 0 {
		return nil, engine.ArgErrorf([]string{"urls"}, "want a non-empty list of URLs")
	}
	for i, u := range raw {
		s, ok := u.(string)
		if !ok {
			return nil, engine.ArgErrorf([]string{"urls", fmt.Sprint(i)}, "want a URL, got %v", u)
		}
		pu, err := url.Parse(s)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, engine.ArgErrorf([]string{"urls", fmt.Sprint(i)}, "want an http or https URL, got %q", s)
		}
		c.urls = append(c.urls, s)
	}
	for k, v := range args {
		switch k {
		case "urls":
		case "delay", "timeout":
			d, err := engine.ParseDuration(v)
			if err != nil {
				return nil, &engine.ArgError{Path: []string{k}, Err: err}
			}
			if d <= 0 {
				return nil, engine.ArgErrorf([]string{k}, "must be positive")
			}
			if k == "delay" {
				c.delay = d
			} else {
				c.timeout = d
			}
		case "verify_ssl":
			b, ok := v.(bool)
			if !ok {
				return nil, engine.ArgErrorf([]string{k}, "want true or false, got %v", v)
			}
			verify = b
		default:
			return nil, engine.ArgErrorf([]string{k}, "unknown key %q (want urls, delay, verify_ssl, timeout)", k)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if !verify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // verify_ssl: false asks for it
	}
	c.client = &http.Client{Transport: tr, Timeout: c.timeout}
	return c, nil
}

// Run checks every URL, waits delay on the source's clock, and again,
// until ctx ends.
func (c *Check) Run(ctx context.Context, out engine.Emitter) error {
	defer c.client.CloseIdleConnections()
	for round := 0; ; round++ {
		if round > 0 && !engine.Sleep(ctx, c.clock, c.delay) {
			return nil
		}
		for _, u := range c.urls {
			body := map[string]any{"url_check": c.check(ctx, u)}
			if ctx.Err() != nil {
				return nil
			}
			ev := engine.NewEvent(body, c.ref.Name, c.ref.Type, c.clock.Now())
			if _, err := engine.EmitWait(ctx, c.clock, out, c.ref, []engine.Entry{{Event: ev}}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

func (c *Check) check(ctx context.Context, u string) map[string]any {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = c.client.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			status := "down"
			if resp.StatusCode == http.StatusOK {
				status = "up"
			}
			return map[string]any{"url": u, "status": status, "status_code": resp.StatusCode}
		}
	}
	return map[string]any{"url": u, "status": "down", "error_msg": err.Error()}
}
