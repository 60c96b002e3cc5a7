package journal

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func firing(id string, at time.Time, ruleset, rule string, eventIDs []string, invocations int) *engine.Firing {
	f := &engine.Firing{ID: id, Time: at, Ruleset: ruleset, Rule: rule, EventIDs: eventIDs}
	for i := range invocations {
		f.Invocations = append(f.Invocations, &engine.Invocation{
			ID: fmt.Sprintf("%s/%d", id, i), FiringID: id, Index: i, Action: "run_command",
			Ruleset: ruleset, Rule: rule, Args: map[string]any{"cmd": "echo", "n": float64(i)}, Created: at,
		})
	}
	return f
}

func final(t *testing.T, as engine.ActionStore, inv *engine.Invocation, status engine.InvocationStatus) {
	t.Helper()
	setStatus(t, as, inv, status)
}

func setStatus(t *testing.T, as engine.ActionStore, inv *engine.Invocation, status engine.InvocationStatus) {
	t.Helper()
	st := &engine.InvocationState{Invocation: inv, Status: status, Updated: inv.Created.Add(time.Second),
		Attempts: []engine.Attempt{{N: 1, Start: inv.Created, Duration: time.Second, Status: engine.Succeeded, Output: "ok"}}}
	if err := as.Update(context.Background(), st); err != nil {
		t.Fatalf("update %s to %s: %v", inv.ID, status, err)
	}
}

func unfinishedIDs(t *testing.T, as engine.ActionStore) string {
	t.Helper()
	sts, err := as.Unfinished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(sts))
	for i, st := range sts {
		ids[i] = st.Invocation.ID + ":" + string(st.Status)
	}
	return strings.Join(ids, " ")
}

func TestSubmitIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	as := s.Actions()
	f := firing("f1", t0, "rs", "r", []string{"e1"}, 2)
	if err := as.Submit(ctx, f); err != nil {
		t.Fatal(err)
	}
	setStatus(t, as, f.Invocations[0], engine.StatusRunning)
	again := firing("f1", t0.Add(time.Hour), "rs", "other", []string{"e2"}, 3)
	again.Redelivered = true
	if err := as.Submit(ctx, again); err != nil {
		t.Fatalf("resubmit: %v", err)
	}
	got, err := as.Query(ctx, engine.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Firing.Rule != "r" || len(got[0].Invocations) != 2 {
		t.Fatalf("after resubmit: %+v, want the first firing only", got)
	}
	if st := got[0].Invocations[0]; st.Status != engine.StatusRunning || len(st.Attempts) != 1 || st.Attempts[0].Output != "ok" {
		t.Fatalf("resubmit changed the state: %+v", st)
	}
	if got[0].Firing.Invocations[1].ID != "f1/1" || got[0].Firing.Invocations[1].Args["n"] != float64(1) {
		t.Fatalf("firing invocations not rebuilt: %+v", got[0].Firing.Invocations[1])
	}
	if want := "f1/0:running f1/1:queued"; unfinishedIDs(t, as) != want {
		t.Fatalf("unfinished = %q, want %q", unfinishedIDs(t, as), want)
	}
}

func TestSubmitErrors(t *testing.T) {
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	dupInv := firing("f", t0, "rs", "r", nil, 2)
	dupInv.Invocations[1].ID = dupInv.Invocations[0].ID
	noInvID := firing("f", t0, "rs", "r", nil, 1)
	noInvID.Invocations[0].ID = ""
	for _, tc := range []struct {
		name string
		f    *engine.Firing
		want string
	}{
		{"nil firing", nil, "no id"},
		{"no id", &engine.Firing{}, "no id"},
		{"invocation without id", noInvID, "invocation 0 has no id"},
		{"repeated invocation id", dupInv, `invocation id "f/0" repeats`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Actions().Submit(context.Background(), tc.f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	err := s.Actions().Update(context.Background(), &engine.InvocationState{Invocation: &engine.Invocation{ID: "nope"}, Status: engine.StatusRunning})
	if err == nil || !strings.Contains(err.Error(), `unknown invocation "nope"`) {
		t.Fatalf("update of an unknown invocation: %v", err)
	}
}

func TestUnfinishedOrderAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, engine.NewFakeClock(t0), nil)
	as := s.Actions()
	// Submit order, not time or id order, decides.
	f1 := firing("zz", t0.Add(time.Minute), "rs", "r", nil, 2)
	f2 := firing("aa", t0, "rs", "r", nil, 1)
	f3 := firing("mm", t0, "rs", "r", nil, 1)
	for _, f := range []*engine.Firing{f1, f2, f3} {
		if err := as.Submit(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(t, as, f1.Invocations[1], engine.StatusSucceeded)
	setStatus(t, as, f2.Invocations[0], engine.StatusFailed)
	setStatus(t, as, f3.Invocations[0], engine.StatusRetrying)
	want := "zz/0:queued mm/0:retrying"
	if got := unfinishedIDs(t, as); got != want {
		t.Fatalf("unfinished = %q, want %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, engine.NewFakeClock(t0), nil)
	as = s.Actions()
	if got := unfinishedIDs(t, as); got != want {
		t.Fatalf("unfinished after restart = %q, want %q", got, want)
	}
	// A firing submitted after the restart comes after the earlier ones.
	f4 := firing("bb", t0, "rs", "r", nil, 1)
	if err := as.Submit(ctx, f4); err != nil {
		t.Fatal(err)
	}
	// A failed invocation may be retried by hand: back to unfinished.
	setStatus(t, as, f2.Invocations[0], engine.StatusQueued)
	if got, want := unfinishedIDs(t, as), "zz/0:queued aa/0:queued mm/0:retrying bb/0:queued"; got != want {
		t.Fatalf("unfinished = %q, want %q", got, want)
	}
}

func TestQueryFilters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	as := s.Actions()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	fs := []*engine.Firing{
		firing("f1", at(0), "web", "restart", []string{"e1"}, 1),
		firing("f2", at(10), "web", "page", []string{"e2", "e3"}, 2),
		firing("f3", at(20), "db", "restart", []string{"e3"}, 1),
		firing("f4", at(30), "db", "vacuum", []string{"e4"}, 0),
	}
	for _, f := range fs {
		if err := as.Submit(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(t, as, fs[0].Invocations[0], engine.StatusSucceeded)
	setStatus(t, as, fs[1].Invocations[1], engine.StatusFailed)
	setStatus(t, as, fs[2].Invocations[0], engine.StatusRetrying)
	cases := []struct {
		name   string
		filter engine.AuditFilter
		want   string
	}{
		{"all, newest first", engine.AuditFilter{}, "f4 f3 f2 f1"},
		{"ruleset", engine.AuditFilter{Ruleset: "web"}, "f2 f1"},
		{"rule", engine.AuditFilter{Rule: "restart"}, "f3 f1"},
		{"ruleset and rule", engine.AuditFilter{Ruleset: "db", Rule: "restart"}, "f3"},
		{"status failed", engine.AuditFilter{Status: engine.StatusFailed}, "f2"},
		{"status queued", engine.AuditFilter{Status: engine.StatusQueued}, "f2"},
		{"status succeeded", engine.AuditFilter{Status: engine.StatusSucceeded}, "f1"},
		{"status retrying", engine.AuditFilter{Status: engine.StatusRetrying}, "f3"},
		{"event id", engine.AuditFilter{EventID: "e3"}, "f3 f2"},
		{"since is inclusive", engine.AuditFilter{Since: at(10)}, "f4 f3 f2"},
		{"until is exclusive", engine.AuditFilter{Until: at(20)}, "f2 f1"},
		{"since and until", engine.AuditFilter{Since: at(5), Until: at(25)}, "f3 f2"},
		{"limit", engine.AuditFilter{Limit: 2}, "f4 f3"},
		{"limit after filter", engine.AuditFilter{Rule: "restart", Limit: 1}, "f3"},
		{"no match", engine.AuditFilter{Ruleset: "nope"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := as.Query(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(got))
			for i, e := range got {
				ids[i] = e.Firing.ID
				if len(e.Invocations) != len(e.Firing.Invocations) {
					t.Fatalf("%s: %d states for %d invocations", e.Firing.ID, len(e.Invocations), len(e.Firing.Invocations))
				}
			}
			if strings.Join(ids, " ") != tc.want {
				t.Fatalf("query = %q, want %q", strings.Join(ids, " "), tc.want)
			}
		})
	}
	got, err := as.Query(ctx, engine.AuditFilter{EventID: "e2"})
	if err != nil || len(got) != 1 {
		t.Fatalf("query e2: %v, %v", got, err)
	}
	e := got[0]
	if !e.Firing.Time.Equal(at(10)) || e.Firing.Ruleset != "web" || fmt.Sprint(e.Firing.EventIDs) != "[e2 e3]" ||
		e.Invocations[0].Status != engine.StatusQueued || e.Invocations[1].Status != engine.StatusFailed ||
		e.Invocations[1].Attempts[0].Duration != time.Second || e.Invocations[1].Invocation.Action != "run_command" {
		t.Fatalf("entry f2 = %+v", e)
	}
}

func TestActionCompact(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	as := s.Actions()
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	oldDone := firing("old-done", at(0), "rs", "r", nil, 2)
	oldOpen := firing("old-open", at(1), "rs", "r", nil, 1)
	oldEmpty := firing("old-empty", at(1), "rs", "r", nil, 0)
	newDone := firing("new-done", at(5), "rs", "r", nil, 1)
	for _, f := range []*engine.Firing{oldDone, oldOpen, oldEmpty, newDone} {
		if err := as.Submit(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	final(t, as, oldDone.Invocations[0], engine.StatusSucceeded)
	final(t, as, oldDone.Invocations[1], engine.StatusFailed)
	final(t, as, newDone.Invocations[0], engine.StatusSucceeded)
	n, err := as.Compact(ctx, at(3))
	if err != nil || n != 2 {
		t.Fatalf("compact = %d, %v; want 2", n, err)
	}
	got, err := as.Query(ctx, engine.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.Firing.ID)
	}
	if strings.Join(ids, " ") != "new-done old-open" {
		t.Fatalf("left after compaction: %v", ids)
	}
	if want := "old-open/0:queued"; unfinishedIDs(t, as) != want {
		t.Fatalf("unfinished = %q, want %q", unfinishedIDs(t, as), want)
	}
	// A compacted firing is forgotten: submitting it again stores it anew.
	if err := as.Submit(ctx, oldDone); err != nil {
		t.Fatal(err)
	}
	if want := "old-open/0:queued old-done/0:queued old-done/1:queued"; unfinishedIDs(t, as) != want {
		t.Fatalf("unfinished after resubmit = %q, want %q", unfinishedIDs(t, as), want)
	}
	if n, err := as.Compact(ctx, at(3)); err != nil || n != 0 {
		t.Fatalf("second compact = %d, %v; want 0", n, err)
	}
}
