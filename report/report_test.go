package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestBuild(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := func(d time.Duration) engine.Event {
		return engine.Event{"meta": map[string]any{"received_at": t0.Add(d).Format(time.RFC3339Nano)}}
	}
	inv := func(rule string, evAt time.Duration) *engine.Invocation {
		return &engine.Invocation{Ruleset: "rs", Rule: rule, Event: ev(evAt)}
	}
	ran := func(rule string, status engine.InvocationStatus, evAt, end time.Duration, last engine.Status) *engine.InvocationState {
		return &engine.InvocationState{Invocation: inv(rule, evAt), Status: status,
			Attempts: []engine.Attempt{{N: 1, Start: t0.Add(end - time.Second), Duration: time.Second, Status: last}}}
	}
	entry := func(rule string, sts ...*engine.InvocationState) engine.AuditEntry {
		return engine.AuditEntry{Firing: engine.Firing{Ruleset: "rs", Rule: rule, Time: t0}, Invocations: sts}
	}
	var entries []engine.AuditEntry
	// auto: 20 runs taking 1s..20s from event to end, one failed for good,
	// one dead letter.
	for i := 1; i <= 20; i++ {
		st := engine.StatusSucceeded
		last := engine.Succeeded
		switch i {
		case 19:
			st, last = engine.StatusFailed, engine.Failed
		case 20:
			st, last = engine.StatusFailed, engine.Retryable
		}
		entries = append(entries, entry("auto", ran("auto", st, 0, time.Duration(i)*time.Second, last)))
	}
	// shadow: 3 firings, 2 actions each.
	for i := 0; i < 3; i++ {
		sh := &engine.InvocationState{Invocation: inv("shadow", 0), Status: engine.StatusShadowed}
		entries = append(entries, entry("shadow", sh, sh))
	}
	// approve: approved after 1m and 3m, rejected, expired (on_timeout
	// reject), expired (on_timeout approve, ran), pending.
	appr := func(decision, by string, after time.Duration, expired bool, st engine.InvocationStatus) *engine.InvocationState {
		s := &engine.InvocationState{Invocation: inv("approve", 0), Status: st,
			Approval: &engine.Approval{Requested: t0, Decision: decision, By: by, At: t0.Add(after), Expired: expired}}
		if st == engine.StatusSucceeded {
			s.Attempts = []engine.Attempt{{N: 1, Start: t0.Add(after), Duration: time.Second, Status: engine.Succeeded}}
		}
		return s
	}
	entries = append(entries,
		entry("approve", appr("approved", "alice", time.Minute, false, engine.StatusSucceeded)),
		entry("approve", appr("approved", "bob", 3*time.Minute, false, engine.StatusSucceeded)),
		entry("approve", appr("rejected", "alice", 2*time.Minute, false, engine.StatusRejected)),
		entry("approve", appr("rejected", "timeout", 30*time.Minute, true, engine.StatusRejected)),
		entry("approve", appr("approved", "timeout", 30*time.Minute, true, engine.StatusSucceeded)),
		entry("approve", &engine.InvocationState{Invocation: inv("approve", 0), Status: engine.StatusPendingApproval,
			Approval: &engine.Approval{Requested: t0}}),
	)
	got := Build(entries)
	if len(got) != 3 || got[0].Rule != "approve" || got[1].Rule != "auto" || got[2].Rule != "shadow" {
		t.Fatalf("rules %+v", got)
	}
	ap, au, sh := got[0], got[1], got[2]
	if want := (Counts{Run: 20, Succeeded: 18, Failed: 2, DeadLetters: 1}); au.Actions != want || au.Firings != 20 {
		t.Errorf("auto: %d firings %+v, want 20 %+v", au.Firings, au.Actions, want)
	}
	if q := au.EventToEnd; q == nil || q.N != 20 || q.Median != 10*time.Second || q.P95 != 19*time.Second {
		t.Errorf("auto latency %+v, want n 20 median 10s p95 19s", q)
	}
	if au.ApprovalRate != nil || au.TimeToApprove != nil {
		t.Errorf("auto has approval figures: %+v", au)
	}
	if want := (Counts{Shadowed: 6}); sh.Actions != want || sh.Firings != 3 || sh.EventToEnd != nil {
		t.Errorf("shadow: %+v", sh)
	}
	if want := (Counts{Run: 3, Succeeded: 3, PendingApproval: 1, Approved: 3, Rejected: 2, Expired: 2}); ap.Actions != want {
		t.Errorf("approve: %+v, want %+v", ap.Actions, want)
	}
	if ap.ApprovalRate == nil || *ap.ApprovalRate != 0.6 {
		t.Errorf("approval rate %v, want 0.6", ap.ApprovalRate)
	}
	if q := ap.TimeToApprove; q == nil || q.N != 2 || q.Median != time.Minute || q.P95 != 3*time.Minute {
		t.Errorf("time to approve %+v, want n 2, median 1m, p95 3m (expiries are not approvals by a person)", q)
	}

	var buf bytes.Buffer
	if err := WriteTable(&buf, got); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); !strings.Contains(s, "60%") || !strings.Contains(s, "1m0s / 3m0s") || !strings.Contains(s, "10s / 19s") {
		t.Errorf("table:\n%s", s)
	}
	buf.Reset()
	if err := WriteJSON(&buf, got); err != nil {
		t.Fatal(err)
	}
	var back struct{ Rules []Rule }
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Rules) != 3 || back.Rules[1].Actions.DeadLetters != 1 {
		t.Errorf("json %v:\n%s", err, buf.String())
	}
}
