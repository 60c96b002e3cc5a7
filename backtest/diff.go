package backtest

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// Change is one difference between two replays of the same events.
type Change struct {
	// Kind is "added" (only the new rulebook fires), "removed" (only the
	// old one does) or "changed" (both fire on the same events, with
	// different actions or arguments).
	Kind    string  `json:"kind"`
	Ruleset string  `json:"ruleset"`
	Rule    string  `json:"rule"`
	Old     *Firing `json:"old,omitempty"`
	New     *Firing `json:"new,omitempty"`
}

// Diff compares the firings of an old and a new rulebook over the same
// records. Two firings are the same firing when they have the same
// ruleset, rule and triggering events (in order); several such firings
// pair up in the order they happened. The changes are sorted by ruleset,
// rule, then time.
func Diff(old, new []Firing) []Change {
	key := func(f *Firing) string {
		return f.Ruleset + "\x00" + f.Rule + "\x00" + strings.Join(f.EventIDs, "\x00")
	}
	olds := map[string][]*Firing{}
	for i := range old {
		k := key(&old[i])
		olds[k] = append(olds[k], &old[i])
	}
	var out []Change
	for i := range new {
		nf := &new[i]
		k := key(nf)
		if q := olds[k]; len(q) > 0 {
			of := q[0]
			olds[k] = q[1:]
			if !reflect.DeepEqual(of.Actions, nf.Actions) {
				out = append(out, Change{Kind: "changed", Ruleset: nf.Ruleset, Rule: nf.Rule, Old: of, New: nf})
			}
			continue
		}
		out = append(out, Change{Kind: "added", Ruleset: nf.Ruleset, Rule: nf.Rule, New: nf})
	}
	for i := range old {
		of := &old[i]
		k := key(of)
		if q := olds[k]; len(q) > 0 && q[0] == of {
			olds[k] = q[1:]
			out = append(out, Change{Kind: "removed", Ruleset: of.Ruleset, Rule: of.Rule, Old: of})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Ruleset != b.Ruleset {
			return a.Ruleset < b.Ruleset
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.firing().Time.Before(b.firing().Time)
	})
	return out
}

func (c Change) firing() *Firing {
	if c.New != nil {
		return c.New
	}
	return c.Old
}

// maxEventText bounds how much of an event the text report prints.
const maxEventText = 400

// WriteFirings prints firings one per line block: time, rule, the events
// that caused it and the actions it would have run.
func WriteFirings(w io.Writer, fs []Firing) {
	for i := range fs {
		f := &fs[i]
		fmt.Fprintf(w, "%s  %q (ruleset %q)\n", f.Time.UTC().Format("2006-01-02T15:04:05.000Z"), f.Rule, f.Ruleset)
		writeDetail(w, "    ", f)
	}
}

func writeDetail(w io.Writer, indent string, f *Firing) {
	names := make([]string, 0, len(f.Events))
	for n := range f.Events {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, _ := json.Marshal(f.Events[n])
		s := string(b)
		if len(s) > maxEventText {
			s = s[:maxEventText] + "…"
		}
		fmt.Fprintf(w, "%sevent %s: %s\n", indent, n, s)
	}
	for _, a := range f.Actions {
		b, _ := json.Marshal(a.Args)
		fmt.Fprintf(w, "%s%s %s", indent, a.Type, b)
		if a.Error != "" {
			fmt.Fprintf(w, " (error: %s)", a.Error)
		}
		fmt.Fprintln(w)
	}
}

// WriteDiff prints the changes rule by rule: "+" a firing only the new
// rulebook has, "-" one only the old one has, "~" one whose actions
// changed (old, then new).
func WriteDiff(w io.Writer, changes []Change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "no difference")
		return
	}
	var cur string
	for _, c := range changes {
		if k := c.Ruleset + "\x00" + c.Rule; k != cur {
			cur = k
			var add, rem, chg int
			for _, d := range changes {
				if d.Ruleset == c.Ruleset && d.Rule == c.Rule {
					switch d.Kind {
					case "added":
						add++
					case "removed":
						rem++
					default:
						chg++
					}
				}
			}
			fmt.Fprintf(w, "rule %q (ruleset %q): %d added, %d removed, %d changed\n", c.Rule, c.Ruleset, add, rem, chg)
		}
		f := c.firing()
		mark := map[string]string{"added": "+", "removed": "-", "changed": "~"}[c.Kind]
		fmt.Fprintf(w, "  %s %s  events %s\n", mark, f.Time.UTC().Format("2006-01-02T15:04:05.000Z"), strings.Join(f.EventIDs, ", "))
		if c.Kind == "changed" {
			fmt.Fprintln(w, "    was:")
			writeDetail(w, "      ", c.Old)
			fmt.Fprintln(w, "    now:")
			writeDetail(w, "      ", c.New)
			continue
		}
		writeDetail(w, "    ", f)
	}
}
