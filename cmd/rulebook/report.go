package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rulebook-dev/rulebook/backtest"
	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/report"
)

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", "report [--data-dir DIR | --admin ADDR [--admin-token T]] [--since 7d] [--until T] [--rule R] [--ruleset RS] [--format table|json]", stderr)
	dataDir := fs.String("data-dir", "./data", "`DIR` of the engine's data (a running engine's is read from a copy)")
	adminAddr := fs.String("admin", "", "query a running engine through its admin listener at `ADDR` (host:port or URL) instead of --data-dir")
	tokenFlag := fs.String("admin-token", "", "bearer token of that admin listener (also RULEBOOK_ADMIN_TOKEN; ${env:..}/${file:..} allowed)")
	var fl dispatch.FilterFlags
	fs.StringVar(&fl.Rule, "rule", "", "only this rule")
	fs.StringVar(&fl.Ruleset, "ruleset", "", "only this ruleset")
	fs.StringVar(&fl.Since, "since", "7d", "from this time: RFC 3339, a date, or a duration back from now (90m, 2h, 7d)")
	fs.StringVar(&fl.Until, "until", "", "up to this time, same forms as --since")
	format := fs.String("format", "table", "table or json")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	filter, err := dispatch.ParseFilter(fl, time.Now())
	if err != nil {
		return err
	}
	var entries []engine.AuditEntry
	if *adminAddr != "" {
		token, err := adminToken(*tokenFlag)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*auditTimeout)
		defer cancel()
		entries, err = remoteAuditAll(ctx, *adminAddr, token, fl)
		if err != nil {
			return err
		}
	} else {
		filter.Limit = 0
		entries, err = localAudit(*dataDir, filter)
		if err != nil {
			return err
		}
	}
	rules := report.Build(entries)
	if *format == "json" {
		return report.WriteJSON(stdout, rules)
	}
	return report.WriteTable(stdout, rules)
}

// localAudit reads the audit trail of a data dir: directly when no engine
// holds it, else from a private copy (the running engine keeps it locked).
func localAudit(dataDir string, f engine.AuditFilter) ([]engine.AuditEntry, error) {
	ctx := context.Background()
	store, err := journal.Open(journal.Options{Dir: dataDir, Log: discardLog()})
	if errors.Is(err, journal.ErrInUse) {
		snap, err := backtest.OpenSnapshot(dataDir)
		if err != nil {
			return nil, err
		}
		defer snap.Close()
		return snap.Actions().Query(ctx, f)
	}
	if err != nil {
		return nil, fmt.Errorf("open data dir %s: %w", dataDir, err)
	}
	defer store.Close()
	return store.Actions().Query(ctx, f)
}

// remoteAuditAll pages through GET /api/audit (newest first, at most
// admin.MaxAuditLimit a page), moving --until back to the oldest firing of
// each page; firings on the boundary are deduplicated by id.
func remoteAuditAll(ctx context.Context, addr, token string, fl dispatch.FilterFlags) ([]engine.AuditEntry, error) {
	const page = 1000
	fl.Limit = page
	seen := map[string]bool{}
	var out []engine.AuditEntry
	for {
		got, err := remoteAudit(ctx, addr, token, fl)
		if err != nil {
			return nil, err
		}
		added := 0
		oldest := time.Time{}
		for _, e := range got {
			if !seen[e.Firing.ID] {
				seen[e.Firing.ID] = true
				out = append(out, e)
				added++
			}
			if oldest.IsZero() || e.Firing.Time.Before(oldest) {
				oldest = e.Firing.Time
			}
		}
		if len(got) < page {
			return out, nil
		}
		if added == 0 {
			return nil, fmt.Errorf("--admin: more than %d firings at %s; narrow --since/--until or read --data-dir", page, oldest.Format(time.RFC3339Nano))
		}
		// Until is exclusive: keep the boundary instant, its firings are deduplicated.
		fl.Until = oldest.Add(time.Nanosecond).Format(time.RFC3339Nano)
	}
}
