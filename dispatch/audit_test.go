package dispatch

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func auditEntries() []engine.AuditEntry {
	exit2 := 2
	f := newFiring("f1", "web", false, invSpec{action: "run_command"}, invSpec{action: "http"}, invSpec{action: "run_playbook"})
	return []engine.AuditEntry{
		{
			Firing: *f,
			Invocations: []*engine.InvocationState{
				{Invocation: f.Invocations[0], Status: engine.StatusSucceeded, Attempts: []engine.Attempt{
					{N: 1, Status: engine.Retryable, Duration: 1200 * time.Millisecond, ExitCode: &exit2, Error: "exit status 2"},
					{N: 2, Status: engine.Succeeded, Duration: 300 * time.Millisecond, ExitCode: new(int), Output: "cache\tcleared\n\x1b[31mred\x1b[0m"},
				}},
				{Invocation: f.Invocations[1], Status: engine.StatusFailed, Attempts: []engine.Attempt{
					{N: 1, Status: engine.Failed, Duration: 45 * time.Millisecond, HTTPStatus: 400, Error: "400 Bad Request: " + strings.Repeat("x", 100)},
				}},
				{Invocation: f.Invocations[2], Status: engine.StatusQueued},
			},
		},
		{Firing: engine.Firing{ID: "f2", Time: t0.Add(-time.Hour), Ruleset: "db", Rule: "only facts"}},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, auditEntries()); err != nil {
		t.Fatal(err)
	}
	want := `TIME                  RULESET  RULE        ACTION        STATUS     ATTEMPTS  DURATION  EXIT/HTTP  OUTPUT
2026-11-29T00:00:00Z  web      rule-web    run_command   succeeded  2         1.5s      exit 0     cache cleared [31mred [0m
2026-11-29T00:00:00Z  web      rule-web    http          failed     1         45ms      http 400   400 Bad Request: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…
2026-11-29T00:00:00Z  web      rule-web    run_playbook  queued     0         0s        -          
2026-11-28T23:00:00Z  db       only facts  -             -          0         -         -          
`
	if got := b.String(); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteAuditJSONLines(t *testing.T) {
	var b bytes.Buffer
	entries := auditEntries()
	if err := WriteAudit(&b, "json", entries); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(entries) {
		t.Fatalf("%d lines, want %d", len(lines), len(entries))
	}
	var got engine.AuditEntry
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Firing.ID != "f1" || len(got.Invocations) != 3 || got.Invocations[1].Attempts[0].HTTPStatus != 400 ||
		*got.Invocations[0].Attempts[0].ExitCode != 2 || got.Invocations[0].Invocation.Action != "run_command" {
		t.Fatalf("decoded %+v", got)
	}
	if err := WriteAudit(&b, "yaml", entries); err == nil || err.Error() != `--format: unknown format "yaml" (want table or json)` {
		t.Fatalf("unknown format: %v", err)
	}
}

func TestCell(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven cha…"},
		{"  lead\n\n\ttrail  ", 20, "lead trail"},
		{"cut at space here", 7, "cut at…"},
		{"ééééé", 3, "ééé…"},
		{"\x1b[2Jbad\x00", 10, "[2Jbad"},
		{"", 5, ""},
	}
	for _, tc := range tests {
		if got := cell(tc.in, tc.width); got != tc.want {
			t.Errorf("cell(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello world", 5, "hello\n[... 6 more bytes]"},
		{"aé", 2, "a\n[... 2 more bytes]"},
		{"日本", 0, "\n[... 6 more bytes]"},
	}
	for _, tc := range tests {
		if got := clip(tc.in, tc.limit); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

func TestParseFilter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		flags   FilterFlags
		want    engine.AuditFilter
		wantErr string
	}{
		{name: "empty", flags: FilterFlags{}, want: engine.AuditFilter{}},
		{
			name:  "all fields",
			flags: FilterFlags{Rule: "r", Ruleset: "rs", Status: "failed", Since: "2h", Until: "2026-11-29T11:30:00Z", Event: "ev", Limit: 5},
			want: engine.AuditFilter{Rule: "r", Ruleset: "rs", Status: engine.StatusFailed, EventID: "ev", Limit: 5,
				Since: now.Add(-2 * time.Hour), Until: time.Date(2026, 11, 29, 11, 30, 0, 0, time.UTC)},
		},
		{name: "days", flags: FilterFlags{Since: "7d"}, want: engine.AuditFilter{Since: now.Add(-7 * 24 * time.Hour)}},
		{name: "date", flags: FilterFlags{Since: "2026-11-01"}, want: engine.AuditFilter{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "bad status", flags: FilterFlags{Status: "done"}, wantErr: `--status: unknown status "done" (want queued, running, retrying, succeeded, failed, shadowed, pending_approval, rejected or cancelled)`},
		{name: "bad since", flags: FilterFlags{Since: "yesterday"}, wantErr: `--since: cannot parse "yesterday": want an RFC 3339 time, a date (2006-01-02) or a duration such as 90m, 2h or 7d`},
		{name: "negative duration", flags: FilterFlags{Until: "-2h"}, wantErr: `--until: cannot parse "-2h"`},
		{name: "until before since", flags: FilterFlags{Since: "1h", Until: "2h"}, wantErr: "--until: 2026-11-29T10:00:00Z is before --since 2026-11-29T11:00:00Z"},
		{name: "negative limit", flags: FilterFlags{Limit: -1}, wantErr: "--limit: -1 is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFilter(tc.flags, now)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Rule != tc.want.Rule || got.Ruleset != tc.want.Ruleset || got.Status != tc.want.Status ||
				got.EventID != tc.want.EventID || got.Limit != tc.want.Limit || !got.Since.Equal(tc.want.Since) || !got.Until.Equal(tc.want.Until) {
				t.Fatalf("filter %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "2h", "7d", "2026-11-01", "2026-11-29T11:30:00Z", "-1d", "99999999999d", "1e9h", "d"} {
		f.Add(s, "failed")
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, when, status string) {
		got, err := ParseFilter(FilterFlags{Since: when, Status: status}, now)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--") {
				t.Fatalf("error %q does not name its flag", err)
			}
			return
		}
		if strings.TrimSpace(when) != "" && got.Since.IsZero() {
			t.Fatalf("%q parsed to the zero time", when)
		}
		if !got.Since.IsZero() && got.Since.After(now) && !strings.ContainsAny(when, "-:") {
			t.Fatalf("relative %q is in the future: %s", when, got.Since)
		}
	})
}

func FuzzCell(f *testing.F) {
	for _, s := range []string{"", "a b", "\x1b[0m\n\t", "ééé", "\xff\xfe"} {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, s string, width int) {
		if width < 0 || width > 200 {
			return
		}
		got := cell(s, width)
		for _, r := range got {
			if r == '\n' || r == '\t' || r == '\r' || r == 0x1b {
				t.Fatalf("cell(%q) = %q keeps a control character", s, got)
			}
		}
		if n := len([]rune(strings.TrimSuffix(got, "…"))); n > width {
			t.Fatalf("cell(%q, %d) = %q is %d runes wide", s, width, got, n)
		}
	})
}
