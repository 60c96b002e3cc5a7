package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
)

// auditTimeout bounds a query of a running engine's admin listener.
const auditTimeout = 30 * time.Second

func cmdAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", "audit [--data-dir DIR | --admin ADDR] [--rule R] [--ruleset RS] [--status S] [--since T] [--until T] [--event ID] [--limit N] [--format table|json]", stderr)
	dataDir := fs.String("data-dir", "./data", "`DIR` of a stopped engine's data (a running engine holds it exclusively: use --admin)")
	adminAddr := fs.String("admin", "", "query a running engine through its admin listener at `ADDR` (host:port or URL) instead of opening --data-dir")
	tokenFlag := fs.String("admin-token", "", "bearer token of that admin listener (also RULEBOOK_ADMIN_TOKEN; ${env:..}/${file:..} allowed)")
	var fl dispatch.FilterFlags
	fs.StringVar(&fl.Rule, "rule", "", "only firings of this rule")
	fs.StringVar(&fl.Ruleset, "ruleset", "", "only firings of this ruleset")
	fs.StringVar(&fl.Status, "status", "", "only firings with an action in this status: queued, running, retrying, succeeded, failed, shadowed, pending_approval, rejected, cancelled")
	fs.StringVar(&fl.Since, "since", "", "from this time: RFC 3339, a date, or a duration back from now (90m, 2h, 7d)")
	fs.StringVar(&fl.Until, "until", "", "up to this time, same forms as --since")
	fs.StringVar(&fl.Event, "event", "", "only firings that matched this event id (meta.uuid)")
	fs.IntVar(&fl.Limit, "limit", 100, "at most this many firings, newest first (0: all; through --admin at most 1000)")
	format := fs.String("format", "table", "table or json (one JSON object per line)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	filter, err := dispatch.ParseFilter(fl, time.Now())
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	var entries []engine.AuditEntry
	if *adminAddr != "" {
		token, err := adminToken(*tokenFlag)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
		defer cancel()
		entries, err = remoteAudit(ctx, *adminAddr, token, fl)
		if err != nil {
			return err
		}
	} else {
		store, err := journal.Open(journal.Options{Dir: *dataDir, Log: discardLog()})
		if errors.Is(err, journal.ErrInUse) {
			return fmt.Errorf("open data dir %s: %w: query the running engine with --admin ADDR (its admin listener)", *dataDir, err)
		}
		if err != nil {
			return fmt.Errorf("open data dir %s: %w", *dataDir, err)
		}
		defer store.Close()
		entries, err = store.Actions().Query(context.Background(), filter)
		if err != nil {
			return err
		}
	}
	return dispatch.WriteAudit(stdout, *format, entries)
}

// remoteAudit asks a running engine's admin listener (GET /api/audit) for
// the audit entries the filter flags select; the listener applies them.
func remoteAudit(ctx context.Context, addr, token string, fl dispatch.FilterFlags) ([]engine.AuditEntry, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--admin: %q is not host:port or a URL", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/audit"
	q := url.Values{}
	for k, v := range map[string]string{"rule": fl.Rule, "ruleset": fl.Ruleset, "status": fl.Status, "since": fl.Since, "until": fl.Until, "event": fl.Event} {
		if v != "" {
			q.Set(k, v)
		}
	}
	// The listener caps the limit (0 included) at admin.MaxAuditLimit.
	q.Set("limit", strconv.Itoa(fl.Limit))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("--admin: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--admin: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("--admin: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (give the listener's token with --admin-token or RULEBOOK_ADMIN_TOKEN)"
		}
		return nil, fmt.Errorf("--admin: %s answered %s: %s", u.Host, resp.Status, msg)
	}
	var out struct {
		Entries []engine.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("--admin: %s did not answer with audit entries: %w", u.Host, err)
	}
	return out.Entries, nil
}
