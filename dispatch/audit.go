package dispatch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rulebook-dev/rulebook/engine"
)

// FilterFlags are the `rulebook audit` flags as the user typed them.
type FilterFlags struct {
	Rule    string
	Ruleset string
	// Status is one of queued, running, retrying, succeeded, failed,
	// shadowed, pending_approval, rejected, cancelled.
	Status string
	// Since and Until are an RFC 3339 time, a date (2006-01-02, UTC) or a
	// duration back from now ("90m", "2h", "7d").
	Since string
	Until string
	// Event is a matched event's meta.uuid.
	Event string
	Limit int
}

// ParseFilter turns the audit flags into a filter; now anchors relative
// times. Errors name the flag.
func ParseFilter(fl FilterFlags, now time.Time) (engine.AuditFilter, error) {
	f := engine.AuditFilter{
		Ruleset: fl.Ruleset,
		Rule:    fl.Rule,
		EventID: fl.Event,
		Limit:   fl.Limit,
	}
	if fl.Limit < 0 {
		return f, fmt.Errorf("--limit: %d is negative", fl.Limit)
	}
	switch st := engine.InvocationStatus(fl.Status); st {
	case "":
	case engine.StatusQueued, engine.StatusRunning, engine.StatusRetrying, engine.StatusSucceeded, engine.StatusFailed,
		engine.StatusShadowed, engine.StatusPendingApproval, engine.StatusRejected, engine.StatusCancelled:
		f.Status = st
	default:
		return f, fmt.Errorf("--status: unknown status %q (want queued, running, retrying, succeeded, failed, shadowed, pending_approval, rejected or cancelled)", fl.Status)
	}
	var err error
	if f.Since, err = parseWhen(fl.Since, now); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseWhen(fl.Until, now); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, fmt.Errorf("--until: %s is before --since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return f, nil
}

// parseWhen reads an absolute time, a date or a duration ago.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, ok := parseAgo(s); ok {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q: want an RFC 3339 time, a date (2006-01-02) or a duration such as 90m, 2h or 7d", s)
}

// parseAgo reads a non-negative Go duration or a whole number of days
// ("7d").
func parseAgo(s string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

// WriteAudit writes entries in format "table" or "json" (JSON lines).
func WriteAudit(w io.Writer, format string, entries []engine.AuditEntry) error {
	switch format {
	case "", "table":
		return WriteTable(w, entries)
	case "json":
		return WriteJSONLines(w, entries)
	}
	return fmt.Errorf("--format: unknown format %q (want table or json)", format)
}

// WriteJSONLines writes one JSON object per firing: the firing and its
// invocations' recorded states.
func WriteJSONLines(w io.Writer, entries []engine.AuditEntry) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range entries {
		if err := enc.Encode(&entries[i]); err != nil {
			return fmt.Errorf("write audit entry %q: %w", entries[i].Firing.ID, err)
		}
	}
	return bw.Flush()
}

// summaryWidth is how many characters of output or error a table row shows.
const summaryWidth = 60

// WriteTable writes one aligned line per invocation (a firing without
// invocations gets one line): firing time, ruleset, rule, action, status,
// attempts, run time summed over attempts, the last exit code or HTTP status,
// and the beginning of the last attempt's error, or else of its output.
func WriteTable(w io.Writer, entries []engine.AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tRULESET\tRULE\tACTION\tSTATUS\tATTEMPTS\tDURATION\tEXIT/HTTP\tOUTPUT")
	for _, e := range entries {
		when := e.Firing.Time.UTC().Format(time.RFC3339)
		ruleset, rule := cell(e.Firing.Ruleset, 40), cell(e.Firing.Rule, 40)
		if len(e.Invocations) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t0\t-\t-\t\n", when, ruleset, rule)
			continue
		}
		for _, st := range e.Invocations {
			if st == nil {
				continue
			}
			action := "-"
			if st.Invocation != nil {
				action = st.Invocation.Action
			}
			var total time.Duration
			for _, a := range st.Attempts {
				total += a.Duration
			}
			code, summary := "-", ""
			if n := len(st.Attempts); n > 0 {
				last := st.Attempts[n-1]
				switch {
				case last.ExitCode != nil:
					code = "exit " + strconv.Itoa(*last.ExitCode)
				case last.HTTPStatus != 0:
					code = "http " + strconv.Itoa(last.HTTPStatus)
				}
				summary = last.Error
				if summary == "" {
					summary = last.Output
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", when, ruleset, rule, cell(action, 30),
				st.Status, len(st.Attempts), formatDuration(total), code, cell(summary, summaryWidth))
		}
	}
	return tw.Flush()
}

// cell makes s fit one table cell: control characters (newlines, tabs,
// terminal escapes) become spaces, runs of spaces collapse, and it is cut
// to width runes.
func cell(s string, width int) string {
	var b strings.Builder
	n := 0
	pendingSpace := false
	write := func(r rune) bool {
		if n >= width {
			return false
		}
		b.WriteRune(r)
		n++
		return true
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) {
			pendingSpace = n > 0
			continue
		}
		if pendingSpace {
			pendingSpace = false
			if !write(' ') {
				return b.String() + "…"
			}
		}
		if !write(r) {
			return strings.TrimRight(b.String(), " ") + "…"
		}
	}
	return b.String()
}

func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
