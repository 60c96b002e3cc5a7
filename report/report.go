// Package report summarizes the audit trail per rule: what a team looks at
// to promote a rule from shadow to approve to auto mode.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// Rule is the evidence about one rule over the audited period.
type Rule struct {
	Ruleset string `json:"ruleset"`
	Rule    string `json:"rule"`
	// Firings counts the rule's firings.
	Firings int `json:"firings"`
	// Actions counts its invocations by what became of them. Run are those
	// that were executed (at least one attempt): Succeeded plus Failed
	// plus those still running or retrying. DeadLetters are the Failed
	// whose last attempt was retryable: retries ran out.
	Actions Counts `json:"actions"`
	// EventToEnd is the time from the triggering event's arrival
	// (meta.received_at, else the firing time) to the end of the
	// invocation's last attempt, over the invocations that ran to a final
	// status; nil when there is none.
	EventToEnd *Quantiles `json:"event_to_action_end,omitempty"`
	// ApprovalRate is approved / (approved + rejected), expiries included
	// as their on_timeout decided; nil when nothing was decided.
	ApprovalRate *float64 `json:"approval_rate,omitempty"`
	// TimeToApprove is the time from the request to a person's approval.
	TimeToApprove *Quantiles `json:"time_to_approve,omitempty"`
}

// Counts are invocation outcomes.
type Counts struct {
	Run             int `json:"run"`
	Succeeded       int `json:"succeeded"`
	Failed          int `json:"failed"`
	DeadLetters     int `json:"dead_letters"`
	Shadowed        int `json:"shadowed"`
	PendingApproval int `json:"pending_approval"`
	Approved        int `json:"approved"`
	Rejected        int `json:"rejected"`
	Expired         int `json:"expired"`
	Cancelled       int `json:"cancelled"`
}

// Quantiles of a set of durations.
type Quantiles struct {
	N      int           `json:"n"`
	Median time.Duration `json:"median_ns"`
	P95    time.Duration `json:"p95_ns"`
}

// Build summarizes audit entries per rule, sorted by ruleset then rule.
func Build(entries []engine.AuditEntry) []Rule {
	type acc struct {
		r        Rule
		lat, tta []time.Duration
	}
	by := map[[2]string]*acc{}
	for _, e := range entries {
		k := [2]string{e.Firing.Ruleset, e.Firing.Rule}
		a := by[k]
		if a == nil {
			a = &acc{r: Rule{Ruleset: k[0], Rule: k[1]}}
			by[k] = a
		}
		a.r.Firings++
		for _, st := range e.Invocations {
			c := &a.r.Actions
			if len(st.Attempts) > 0 {
				c.Run++
			}
			switch st.Status {
			case engine.StatusSucceeded:
				c.Succeeded++
			case engine.StatusFailed:
				c.Failed++
				if n := len(st.Attempts); n > 0 && st.Attempts[n-1].Status == engine.Retryable {
					c.DeadLetters++
				}
			case engine.StatusShadowed:
				c.Shadowed++
			case engine.StatusPendingApproval:
				c.PendingApproval++
			case engine.StatusCancelled:
				c.Cancelled++
			}
			if ap := st.Approval; ap != nil {
				switch ap.Decision {
				case engine.DecisionApproved:
					c.Approved++
					if !ap.Expired && !ap.At.IsZero() {
						a.tta = append(a.tta, ap.At.Sub(ap.Requested))
					}
				case engine.DecisionRejected:
					c.Rejected++
				}
				if ap.Expired {
					c.Expired++
				}
			}
			if st.Status.Final() && len(st.Attempts) > 0 {
				last := st.Attempts[len(st.Attempts)-1]
				end := last.Start.Add(last.Duration)
				a.lat = append(a.lat, end.Sub(eventTime(e.Firing, st.Invocation)))
			}
		}
	}
	out := make([]Rule, 0, len(by))
	for _, a := range by {
		a.r.EventToEnd = quantiles(a.lat)
		a.r.TimeToApprove = quantiles(a.tta)
		if decided := a.r.Actions.Approved + a.r.Actions.Rejected; decided > 0 {
			rate := float64(a.r.Actions.Approved) / float64(decided)
			a.r.ApprovalRate = &rate
		}
		out = append(out, a.r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ruleset != out[j].Ruleset {
			return out[i].Ruleset < out[j].Ruleset
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// eventTime is when the event that triggered the invocation arrived.
func eventTime(f engine.Firing, inv *engine.Invocation) time.Time {
	if inv != nil {
		if meta, ok := inv.Event[engine.MetaKey].(map[string]any); ok {
			switch v := meta[engine.MetaReceivedAt].(type) {
			case string:
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					return t
				}
			case time.Time:
				return v
			}
		}
	}
	return f.Time
}

// quantiles returns the median and the 95th percentile (nearest rank); nil
// for no values.
func quantiles(ds []time.Duration) *Quantiles {
	if len(ds) == 0 {
		return nil
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)]
	}
	return &Quantiles{N: len(ds), Median: rank(0.5), P95: rank(0.95)}
}

// WriteJSON writes the report as one JSON document.
func WriteJSON(w io.Writer, rules []Rule) error {
	if rules == nil {
		rules = []Rule{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Rules []Rule `json:"rules"`
	}{rules})
}

// WriteTable writes the report as an aligned table, one rule per line.
func WriteTable(w io.Writer, rules []Rule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULESET\tRULE\tFIRINGS\tRUN\tOK\tFAILED\tDEAD\tSHADOWED\tPENDING\tAPPROVED\tREJECTED\tEXPIRED\tEVENT→END p50/p95\tAPPROVAL RATE\tTIME TO APPROVE p50/p95")
	for _, r := range rules {
		c := r.Actions
		rate := "-"
		if r.ApprovalRate != nil {
			rate = fmt.Sprintf("%.0f%%", *r.ApprovalRate*100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", r.Ruleset, r.Rule, r.Firings,
			c.Run, c.Succeeded, c.Failed, c.DeadLetters, c.Shadowed, c.PendingApproval, c.Approved, c.Rejected, c.Expired,
			fmtQ(r.EventToEnd), rate, fmtQ(r.TimeToApprove))
	}
	return tw.Flush()
}

func fmtQ(q *Quantiles) string {
	if q == nil {
		return "-"
	}
	return roundDur(q.Median) + " / " + roundDur(q.P95)
}

func roundDur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}
