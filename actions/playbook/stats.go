package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/rulebook-dev/rulebook/actions/internal/headtail"
	"github.com/rulebook-dev/rulebook/actions/internal/procgroup"
	"github.com/rulebook-dev/rulebook/engine"
)

// MaxStatsFile bounds the stats file the callback plugin writes.
const MaxStatsFile = 8 << 20

// runStats is what the callback plugin writes (rulebook_stats.py).
type runStats struct {
	Hosts    map[string]hostStats      `json:"hosts"`
	Custom   map[string]map[string]any `json:"custom"`
	Failures []taskFailure             `json:"failures"`
}

type hostStats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Unreachable int `json:"unreachable"`
	Failures    int `json:"failures"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

type taskFailure struct {
	Kind string `json:"kind"`
	Host string `json:"host"`
	Task string `json:"task"`
	Msg  string `json:"msg"`
	RC   *int   `json:"rc,omitempty"`
}

// readStats reads the plugin's file; nil when the run ended before the
// recap (killed, a syntax error).
func readStats(path string) (*runStats, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("the run ended before its recap")
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &runStats{}
	dec := json.NewDecoder(&limitedReader{f: f, n: MaxStatsFile})
	dec.UseNumber()
	if err := dec.Decode(st); err != nil {
		return nil, fmt.Errorf("stats file: %w", err)
	}
	return st, nil
}

type limitedReader struct {
	f interface{ Read([]byte) (int, error) }
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("larger than the limit")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

// recap returns the per-host counts as Ansible's PLAY RECAP names them.
func (st *runStats) recap() map[string]any {
	out := make(map[string]any, len(st.Hosts))
	for h, s := range st.Hosts {
		out[h] = map[string]any{
			"ok": s.OK, "changed": s.Changed, "unreachable": s.Unreachable, "failed": s.Failures,
			"skipped": s.Skipped, "rescued": s.Rescued, "ignored": s.Ignored,
		}
	}
	return out
}

func (st *runStats) totals() (failed, unreachable int) {
	for _, s := range st.Hosts {
		failed += s.Failures
		unreachable += s.Unreachable
	}
	return failed, unreachable
}

// customStats returns the set_stats data: the run-wide data first, then
// per-host data (set_stats per_host: true) sorted by host, each with a
// "host" key unless the data sets one.
func (st *runStats) customStats() []map[string]any {
	var out []map[string]any
	if d := st.Custom["_run"]; len(d) > 0 {
		out = append(out, fromNumbers(d))
	}
	hosts := make([]string, 0, len(st.Custom))
	for h := range st.Custom {
		if h != "_run" {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		d := st.Custom[h]
		if len(d) == 0 {
			continue
		}
		m := fromNumbers(d)
		if _, ok := m["host"]; !ok {
			m["host"] = h
		}
		out = append(out, m)
	}
	return out
}

// fromNumbers converts json.Number to int64 or float64, the types events
// and facts hold.
func fromNumbers(m map[string]any) map[string]any {
	out, _ := convertNumbers(m).(map[string]any)
	return out
}

func convertNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = convertNumbers(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = convertNumbers(e)
		}
		return l
	}
	return v
}

// classify turns how ansible ended into a result. Exit codes of
// ansible-core 2.14: 0 ok; 1 error; 2 a task failed (also argparse's bad
// options); 3 and 4 unreachable hosts, but 4 is also a parse error, told
// apart by the recap; 5 bad options; 99 interrupted.
func classify(bin string, po procgroup.Outcome, st *runStats) engine.Result {
	if po.CtxErr != nil {
		reason := "cancelled"
		if errors.Is(po.CtxErr, context.DeadlineExceeded) {
			reason = "timed out"
		}
		return engine.RetryableFailure("%s %s; its process group was killed", bin, reason)
	}
	if po.StartErr != nil {
		return engine.Failure("cannot start %s: %v", bin, unwrapExecErr(po.StartErr))
	}
	if po.WaitErr != nil {
		return engine.RetryableFailure("%s: %v", bin, po.WaitErr)
	}
	if po.Signaled {
		return engine.RetryableFailure("%s killed by signal %s", bin, po.Signal)
	}
	code := po.ExitCode
	r := engine.Result{ExitCode: &code}
	failed, unreachable := 0, 0
	if st != nil {
		failed, unreachable = st.totals()
	}
	switch {
	case code == exitOK && st != nil && len(st.Hosts) == 0:
		// ansible exits 0 when the inventory has no host the play or the
		// limit matches; the remediation did not happen.
		r.Status = engine.Failed
		r.Error = fmt.Sprintf("%s ran on no host: the inventory and limit matched none", bin)
	case code == exitOK:
		r.Status = engine.Succeeded
		return r
	case failed > 0:
		r.Status = engine.Failed
		r.Error = fmt.Sprintf("%s failed (exit status %d)%s", bin, code, failureSummary(st, "failed"))
	case unreachable > 0 || code == exitUnreachable:
		r.Status = engine.Retryable
		r.Error = fmt.Sprintf("%s: hosts unreachable (exit status %d)%s", bin, code, failureSummary(st, "unreachable"))
	case code == exitUnreachOrParse && st == nil:
		r.Status = engine.Failed
		r.Error = fmt.Sprintf("%s could not parse its input (exit status %d)", bin, code)
	case code == exitInterrupted:
		r.Status = engine.Retryable
		r.Error = fmt.Sprintf("%s was interrupted (exit status %d)", bin, code)
	default:
		r.Status = engine.Failed
		r.Error = fmt.Sprintf("%s failed (exit status %d)", bin, code)
	}
	return r
}

// errorLine returns Ansible's "ERROR! ..." line from output, else its last
// non-empty line, shortened.
func errorLine(output string) string {
	line := ""
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "ERROR!") {
			line = l
			break
		}
		if l != "" {
			line = l
		}
	}
	if len(line) > 300 {
		line = string(headtail.TrimCutRuneEnd([]byte(line[:300]))) + "..."
	}
	return line
}

func failureSummary(st *runStats, kind string) string {
	if st == nil {
		return ""
	}
	var first *taskFailure
	n := 0
	for i := range st.Failures {
		if st.Failures[i].Kind == kind {
			if first == nil {
				first = &st.Failures[i]
			}
			n++
		}
	}
	if first == nil {
		return ""
	}
	msg := strings.TrimSpace(first.Msg)
	if len(msg) > 300 {
		msg = string(headtail.TrimCutRuneEnd([]byte(msg[:300]))) + "..."
	}
	s := fmt.Sprintf(": task %q on %s: %s", first.Task, first.Host, msg)
	if n > 1 {
		s += fmt.Sprintf(" (and %d more)", n-1)
	}
	return s
}
