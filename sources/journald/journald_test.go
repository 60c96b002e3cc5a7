package journald

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
	"github.com/rulebook-dev/rulebook/journal"
)

// journalRemote is systemd-journal-remote (Debian package
// systemd-journal-remote, installed by test/setup.sh): it writes journal
// files from the export format, so the tests run the real journalctl on a
// real journal without a running journald.
func journalRemote(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("journalctl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("journalctl is not installed (package systemd)") // CI installs it (test/setup.sh): never skip there
		}
		t.Skip("journalctl is not installed (package systemd)")
	}
	for _, p := range []string{"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("systemd-journal-remote is not installed (test/setup.sh installs it)") // CI installs it (test/setup.sh): never skip there
	}
	t.Skip("systemd-journal-remote is not installed (test/setup.sh installs it)")
	return ""
}

// testJournal appends entries to DIR/test.journal.
type testJournal struct {
	t      *testing.T
	remote string
	dir    string
	n      int
}

func newJournal(t *testing.T) *testJournal {
	return &testJournal{t: t, remote: journalRemote(t), dir: t.TempDir()}
}

// field is one export-format field; a value with a control character is
// written in the binary form.
type field struct{ k, v string }

// add appends one entry per message, tagged SYSLOG_IDENTIFIER=ident, with
// the extra fields.
func (j *testJournal) add(ident string, extra []field, messages ...string) {
	j.t.Helper()
	var buf bytes.Buffer
	for _, m := range messages {
		j.n++
		fs := []field{
			{"__REALTIME_TIMESTAMP", fmt.Sprint(1_700_000_000_000_000 + j.n*1_000_000)},
			{"__MONOTONIC_TIMESTAMP", fmt.Sprint(j.n * 1000)},
			{"_BOOT_ID", "0123456789abcdef0123456789abcdef"},
			{"_HOSTNAME", "testhost"},
			{"PRIORITY", "6"},
			{"SYSLOG_IDENTIFIER", ident},
			{"MESSAGE", m},
		}
		for _, f := range append(fs, extra...) {
			if strings.ContainsAny(f.v, "\x00\x01\n") {
				buf.WriteString(f.k + "\n")
				binary.Write(&buf, binary.LittleEndian, uint64(len(f.v)))
				buf.WriteString(f.v + "\n")
				continue
			}
			buf.WriteString(f.k + "=" + f.v + "\n")
		}
		buf.WriteString("\n")
	}
	cmd := exec.Command(j.remote, "--output="+filepath.Join(j.dir, "test.journal"), "-")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		j.t.Fatalf("systemd-journal-remote: %v: %s", err, out)
	}
}

func messages(t *testing.T, j *journal.Store) []string {
	t.Helper()
	recs, err := j.Read(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprint(r.Event["journald"].(map[string]any)["message"]))
	}
	return out
}

// The source follows the journal from its end, emits only the matching
// entries, shaped as EDA's (lower-case field names, string values), and a
// restart resumes after the last durable entry: entries written while it
// was down come once, in order.
func TestFollowsMatchesAndResumes(t *testing.T) {
	jr := newJournal(t)
	jr.add("rbtest", nil, "before the start")
	store := sourcetest.OpenJournal(t, t.TempDir())
	defer store.Close()
	args := map[string]any{"match": "SYSLOG_IDENTIFIER=rbtest", "directory": jr.dir}
	stop := sourcetest.Start(t, Spec(), "j", args, engine.SystemClock{}, store)
	// journalctl starts at the end of the journal once it has opened it:
	// write probes until one arrives.
	probe := 0
	sourcetest.WaitFor(t, "the first probe", func() bool {
		if store.LastSeq() == 0 {
			probe++
			jr.add("rbtest", nil, fmt.Sprintf("probe %d", probe))
			time.Sleep(50 * time.Millisecond)
		}
		return store.LastSeq() > 0
	})
	jr.add("other", nil, "not matched")
	jr.add("rbtest", []field{{"BINARY", "a\x01b"}, {"TAG", "x"}, {"TAG", "y"}}, "one")
	jr.add("rbtest", nil, "two")
	var got []string
	sourcetest.WaitFor(t, "two", func() bool { got = messages(t, store); return got[len(got)-1] == "two" })
	stop()

	jr.add("rbtest", nil, "three", "four")
	jr.add("other", nil, "not matched either")
	sourcetest.Start(t, Spec(), "j", args, engine.SystemClock{}, store)
	// journalctl emits in order: anything emitted twice comes before a
	// last entry written after the others.
	jr.add("rbtest", nil, "end")
	sourcetest.WaitFor(t, "end", func() bool { got = messages(t, store); return got[len(got)-1] == "end" })
	got = got[:len(got)-1]
	var after []string
	for _, m := range got {
		if m == "before the start" || strings.Contains(m, "not matched") {
			t.Fatalf("journal holds %q: %v", m, got)
		}
		if !strings.HasPrefix(m, "probe ") {
			after = append(after, m)
		}
	}
	if strings.Join(after, ",") != "one,two,three,four" {
		t.Fatalf("journal holds %v, want the probes then one,two,three,four once each", got)
	}

	recs, err := store.Read(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var one map[string]any
	for _, r := range recs {
		if m := r.Event["journald"].(map[string]any); m["message"] == "one" {
			one = m
		}
		if s := engine.Meta(r.Event)["source"].(map[string]any); s["name"] != "j" || s["type"] != Type {
			t.Fatalf("meta.source = %v", s)
		}
	}
	if one["priority"] != "6" || one["syslog_identifier"] != "rbtest" || one["_hostname"] != "testhost" ||
		one["__realtime_timestamp"] == nil || !strings.HasPrefix(fmt.Sprint(one["__cursor"]), "s=") {
		t.Fatalf("event fields %v", one)
	}
	if one["binary"] != "a\x01b" || fmt.Sprint(one["tag"]) != "[x y]" {
		t.Fatalf("binary %q, repeated field %v", one["binary"], one["tag"])
	}
	for k := range one {
		if k != strings.ToLower(k) {
			t.Fatalf("field %q is not lower-cased", k)
		}
	}
}

// recorder stores nothing durable; it reports a stored position and
// records the calls.
type recorder struct {
	mu       sync.Mutex
	position string
	events   []engine.Event
	calls    []int
}

func (r *recorder) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, len(entries))
	for _, e := range entries {
		if e.Position == "" || e.Position != e.Event["journald"].(map[string]any)["__cursor"] {
			return nil, fmt.Errorf("entry position %q is not its cursor", e.Position)
		}
		r.events = append(r.events, e.Event)
	}
	return make([]engine.Outcome, len(entries)), nil
}

func (r *recorder) Position(context.Context, engine.SourceRef) (string, error) {
	return r.position, nil
}

// last returns the message of the last event, "" before any.
func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return ""
	}
	m, _ := r.events[len(r.events)-1]["journald"].(map[string]any)["message"].(string)
	return m
}

// With a stored cursor the source starts right after it, whatever the
// journal holds, in journal order and in batches of at most 256.
func TestStartsAfterTheStoredCursor(t *testing.T) {
	jr := newJournal(t)
	jr.add("rbtest", nil, "first")
	out, err := exec.Command("journalctl", "--directory="+jr.dir, "--output=json", "--no-pager", "--show-cursor", "--quiet", "-n1").CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl: %v: %s", err, out)
	}
	_, cursor, ok := strings.Cut(strings.TrimSpace(string(out)), "-- cursor: ")
	if !ok {
		t.Fatalf("no cursor in %s", out)
	}
	var msgs []string
	for i := 0; i < 300; i++ {
		msgs = append(msgs, fmt.Sprint("m", i))
	}
	// A last entry after the 300: what the source emits twice, or beyond
	// them, comes before it (journalctl emits in order).
	jr.add("rbtest", nil, append(msgs, "end")...)
	rec := &recorder{position: cursor}
	sourcetest.Start(t, Spec(), "j", map[string]any{"match": "ALL", "directory": jr.dir}, engine.SystemClock{}, rec)
	sourcetest.WaitFor(t, "the last entry", func() bool { return rec.last() == "end" })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.events = rec.events[:len(rec.events)-1]
	if len(rec.events) != 300 {
		t.Fatalf("%d events, want 300", len(rec.events))
	}
	for i, ev := range rec.events {
		if m := ev["journald"].(map[string]any)["message"]; m != msgs[i] {
			t.Fatalf("event %d is %v, want %s", i, m, msgs[i])
		}
	}
	for _, n := range rec.calls {
		if n > maxBatch {
			t.Fatalf("a call of %d entries: %v", n, rec.calls)
		}
	}
}

// journalctl missing, or failing, is a source error that says so.
func TestJournalctlErrors(t *testing.T) {
	journalRemote(t)
	src := sourcetest.Build(t, Spec(), "j", map[string]any{"match": "ALL", "directory": filepath.Join(t.TempDir(), "missing")}, engine.SystemClock{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := src.Run(ctx, &recorder{})
	if err == nil || !strings.Contains(err.Error(), "journalctl --follow") || !strings.Contains(err.Error(), "missing: No such file or directory") {
		t.Fatalf("Run on a missing directory = %v", err)
	}

	t.Setenv("PATH", t.TempDir())
	err = sourcetest.Build(t, Spec(), "j", map[string]any{"match": "ALL"}, engine.SystemClock{}).Run(ctx, &recorder{})
	if err == nil || !strings.Contains(err.Error(), "runs journalctl (Debian/Ubuntu package systemd), which is not installed") || !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("Run without journalctl = %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, ok := range []map[string]any{
		{"match": "ALL"},
		{"match": "PRIORITY=6"},
		{"match": "_EXE=/usr/bin/sudo", "delay": 1},
		{"match": []any{"_SYSTEMD_UNIT=a.service", "_SYSTEMD_UNIT=b.service", "PRIORITY=3"}, "directory": "/var/log/journal"},
	} {
		if err := Spec().Check(ok); err != nil {
			t.Errorf("Check(%v) = %v", ok, err)
		}
	}
	cases := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, `missing key "match"`},
		{map[string]any{"match": "priority=6"}, `match: want ALL or FIELD=value with an upper-case journal field name (PRIORITY=3, _SYSTEMD_UNIT=sshd.service), got "priority=6"`},
		{map[string]any{"match": []any{"ALL", "PRIORITY=1"}}, "match.0: ALL matches every entry"},
		{map[string]any{"match": []any{"PRIORITY=1", 3}}, "match.1: want a string"},
		{map[string]any{"match": []any{}}, "match: want ALL or at least one"},
		{map[string]any{"match": 6}, "match: want ALL, FIELD=value"},
		{map[string]any{"match": "ALL", "delay": "soon"}, "delay: "},
		{map[string]any{"match": "ALL", "directory": ""}, "directory: want a directory path"},
		{map[string]any{"match": "ALL", "cursor": "x"}, `cursor: unknown key "cursor"`},
	}
	for _, tc := range cases {
		err := Spec().Check(tc.args)
		var ae *engine.ArgError
		if err == nil || !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%v) = %v, want *ArgError with %q", tc.args, err, tc.want)
		}
	}
}
