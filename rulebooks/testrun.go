package rulebooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rulebook-dev/rulebook/engine"
)

// TestFile is a `rulebook test` file: unit tests for one rulebook, run in
// virtual time like `promtool test rules`.
type TestFile struct {
	// Rulebook is the rulebook under test, relative to the test file.
	Rulebook string         `yaml:"rulebook"`
	Vars     map[string]any `yaml:"vars"`
	// Start is the virtual time of offset 0 (default 2026-01-01T00:00:00Z).
	Start string     `yaml:"start"`
	Cases []TestCase `yaml:"cases"`
}

// TestCase is one scenario.
type TestCase struct {
	Name   string      `yaml:"name"`
	Events []TestEvent `yaml:"events"`
	// RunFor is how long virtual time runs on after the last event, so
	// timeouts and once_after windows can end.
	RunFor string `yaml:"run_for"`
	// Firings are the expected firings, in order.
	Firings []ExpectedFiring `yaml:"firings"`
	// AllowUnexpected lets firings not listed pass (the listed ones must
	// still appear, in order).
	AllowUnexpected bool `yaml:"allow_unexpected"`
	// Facts, when given, are expected (as subsets) in these rulesets' facts at
	// the end.
	Facts map[string][]map[string]any `yaml:"facts"`
}

// TestEvent is one input event.
type TestEvent struct {
	At string `yaml:"at"`
	// Ruleset and Source choose where it goes; default the first ruleset.
	Ruleset string         `yaml:"ruleset"`
	Source  string         `yaml:"source"`
	Event   map[string]any `yaml:"event"`
	// Repeat sends the event this many times (default 1), Every apart.
	Repeat int    `yaml:"repeat"`
	Every  string `yaml:"every"`
}

// ExpectedFiring is what a firing must look like; empty fields are not
// checked, args and events are compared as subsets.
type ExpectedFiring struct {
	Rule    string         `yaml:"rule"`
	Ruleset string         `yaml:"ruleset"`
	Action  string         `yaml:"action"`
	Args    map[string]any `yaml:"args"`
	Events  map[string]any `yaml:"events"`
	Event   map[string]any `yaml:"event"`
	At      string         `yaml:"at"`
}

// TestOptions configure RunTestFile.
type TestOptions struct {
	Registry *engine.Registry
	// Out receives the report.
	Out io.Writer
	// Verbose also prints what every case fired and the actions' output.
	Verbose bool
}

// TestSummary counts cases.
type TestSummary struct {
	Passed, Failed int
}

type recorded struct {
	firing  *engine.Firing
	actions []engine.RenderedAction
	at      time.Duration
}

// RunTestFile runs every case of a test file and reports to opts.Out. The
// error is for a file that cannot be run at all (unreadable, invalid
// rulebook); failing cases are counted in the summary.
func RunTestFile(path string, opts TestOptions) (TestSummary, error) {
	var sum TestSummary
	data, err := os.ReadFile(path)
	if err != nil {
		return sum, err
	}
	var tf TestFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return sum, fmt.Errorf("%s: %w", path, err)
	}
	if tf.Rulebook == "" {
		return sum, fmt.Errorf("%s: missing key \"rulebook\"", path)
	}
	if len(tf.Cases) == 0 {
		return sum, fmt.Errorf("%s: no cases", path)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if tf.Start != "" {
		if start, err = time.Parse(time.RFC3339, tf.Start); err != nil {
			return sum, fmt.Errorf("%s: start: %w", path, err)
		}
	}
	rbPath := tf.Rulebook
	if !filepath.IsAbs(rbPath) {
		rbPath = filepath.Join(filepath.Dir(path), rbPath)
	}
	fmt.Fprintf(opts.Out, "%s (%s)\n", path, rbPath)
	for _, tc := range tf.Cases {
		problems, log, err := runCase(rbPath, &tf, tc, start, opts)
		if err != nil {
			return sum, err
		}
		if len(problems) == 0 {
			sum.Passed++
			fmt.Fprintf(opts.Out, "  PASS %s\n", tc.Name)
		} else {
			sum.Failed++
			fmt.Fprintf(opts.Out, "  FAIL %s\n", tc.Name)
			for _, p := range problems {
				fmt.Fprintf(opts.Out, "       %s\n", strings.ReplaceAll(p, "\n", "\n       "))
			}
		}
		if opts.Verbose || len(problems) > 0 {
			fmt.Fprint(opts.Out, indent(log, "       | "))
		}
	}
	return sum, nil
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}

func parseOffset(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return engine.ParseDuration(s)
}

func runCase(rbPath string, tf *TestFile, tc TestCase, start time.Time, opts TestOptions) ([]string, string, error) {
	clock := engine.NewFakeClock(start)
	rb, err := Load(rbPath, Options{Registry: opts.Registry, Clock: clock, ExtraVars: tf.Vars})
	if err != nil {
		return nil, "", err
	}
	var fired []recorded
	var out bytes.Buffer
	eng := engine.New(rb.Rulesets, engine.Options{
		Clock:  clock,
		Stdout: &out,
		OnFiring: func(f *engine.Firing, actions []engine.RenderedAction) {
			fired = append(fired, recorded{firing: f, actions: actions, at: clock.Now().Sub(start)})
		},
	})
	type input struct {
		at  time.Duration
		rec engine.Record
	}
	var inputs []input
	for i, ev := range tc.Events {
		at, err := parseOffset(ev.At)
		if err != nil {
			return nil, "", fmt.Errorf("case %q: events[%d]: at: %w", tc.Name, i, err)
		}
		rs, src, err := eventTarget(rb, ev)
		if err != nil {
			return nil, "", fmt.Errorf("case %q: events[%d]: %w", tc.Name, i, err)
		}
		repeat := max(ev.Repeat, 1)
		every, err := parseOffset(ev.Every)
		if err != nil {
			return nil, "", fmt.Errorf("case %q: events[%d]: every: %w", tc.Name, i, err)
		}
		// Test events go through the source's filters, as live ones do.
		chain, err := (&engine.Compiler{Clock: clock}).CompileFilters(src.Filters)
		if err != nil {
			return nil, "", fmt.Errorf("case %q: events[%d]: source %q: %w", tc.Name, i, src.Name, err)
		}
		for r := 0; r < repeat; r++ {
			body := cloneMap(ev.Event)
			when := at + time.Duration(r)*every
			e := engine.NewEvent(body, src.Name, src.Type, start.Add(when))
			parts, err := chain.Apply(e)
			if err != nil {
				return nil, "", fmt.Errorf("case %q: events[%d]: source %q: %w", tc.Name, i, src.Name, err)
			}
			for _, p := range parts {
				inputs = append(inputs, input{at: when, rec: engine.Record{Seq: uint64(len(inputs) + 1), Source: engine.SourceRef{Ruleset: rs, Name: src.Name, Type: src.Type}, Event: p}})
			}
		}
	}
	sort.SliceStable(inputs, func(i, j int) bool { return inputs[i].at < inputs[j].at })
	runFor, err := parseOffset(tc.RunFor)
	if err != nil {
		return nil, "", fmt.Errorf("case %q: run_for: %w", tc.Name, err)
	}
	ctx := context.Background()
	var last time.Duration
	for _, in := range inputs {
		if err := eng.AdvanceTo(ctx, clock, start.Add(in.at)); err != nil {
			return nil, "", err
		}
		if err := eng.Process(ctx, in.rec); err != nil {
			return nil, "", err
		}
		last = in.at
	}
	if err := eng.AdvanceTo(ctx, clock, start.Add(last+runFor)); err != nil {
		return nil, "", err
	}

	var log strings.Builder
	for _, f := range fired {
		fmt.Fprintf(&log, "fired %s at %s (ruleset %q)", quoteRule(f.firing.Rule), f.at, f.firing.Ruleset)
		for _, a := range f.actions {
			b, _ := json.Marshal(a.Args)
			fmt.Fprintf(&log, "\n  %s %s", a.Type, b)
			if a.Error != "" {
				fmt.Fprintf(&log, " (error: %s)", a.Error)
			}
		}
		log.WriteString("\n")
	}
	if out.Len() > 0 && opts.Verbose {
		log.WriteString("output:\n" + out.String())
	}
	for i := range tc.Firings {
		exp := &tc.Firings[i]
		if exp.Action == "" || exp.Args == nil {
			continue
		}
		if spec, ok := opts.Registry.Action(exp.Action); ok {
			exp.Args = cloneMap(exp.Args)
			ResolvePaths(rbPath, exp.Args, spec.PathArgs)
		}
	}
	problems := compareFirings(tc, fired)
	for rsName, want := range tc.Facts {
		have := eng.Facts(rsName)
		for _, w := range want {
			found := false
			for _, h := range have {
				if subset(w, h) {
					found = true
					break
				}
			}
			if !found {
				b, _ := json.Marshal(w)
				problems = append(problems, fmt.Sprintf("ruleset %q has no fact like %s", rsName, b))
			}
		}
	}
	return problems, log.String(), nil
}

func quoteRule(s string) string { return fmt.Sprintf("%q", s) }

func cloneMap(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func eventTarget(rb *Rulebook, ev TestEvent) (string, engine.SourceConfig, error) {
	for _, rs := range rb.Rulesets {
		if ev.Ruleset != "" && rs.Name != ev.Ruleset {
			continue
		}
		if ev.Source == "" {
			var src engine.SourceConfig
			if len(rs.Sources) > 0 {
				src = rs.Sources[0]
			} else {
				src = engine.SourceConfig{Name: "test", Type: "test"}
			}
			return rs.Name, src, nil
		}
		for _, s := range rs.Sources {
			if s.Name == ev.Source {
				return rs.Name, s, nil
			}
		}
	}
	if ev.Ruleset != "" && ev.Source == "" {
		return "", engine.SourceConfig{}, fmt.Errorf("no ruleset named %q", ev.Ruleset)
	}
	return "", engine.SourceConfig{}, fmt.Errorf("no source named %q", ev.Source)
}

func compareFirings(tc TestCase, fired []recorded) []string {
	var problems []string
	j := 0
	for i, exp := range tc.Firings {
		matched := false
		for j < len(fired) {
			why := mismatch(exp, fired[j])
			if why == "" {
				matched = true
				j++
				break
			}
			if !tc.AllowUnexpected {
				problems = append(problems, fmt.Sprintf("firings[%d]: want %s\n  got  %s\n  (%s)", i, describeExpected(exp), describeFired(fired[j]), why))
				j++
				matched = true
				break
			}
			j++
		}
		if !matched {
			problems = append(problems, fmt.Sprintf("firings[%d]: want %s, but no further firing happened", i, describeExpected(exp)))
		}
	}
	if !tc.AllowUnexpected {
		for ; j < len(fired); j++ {
			problems = append(problems, fmt.Sprintf("unexpected firing: %s", describeFired(fired[j])))
		}
	}
	return problems
}

func describeExpected(e ExpectedFiring) string {
	parts := []string{fmt.Sprintf("rule %q", e.Rule)}
	if e.Ruleset != "" {
		parts = append(parts, fmt.Sprintf("ruleset %q", e.Ruleset))
	}
	if e.Action != "" {
		parts = append(parts, "action "+e.Action)
	}
	if e.Args != nil {
		b, _ := json.Marshal(e.Args)
		parts = append(parts, "args "+string(b))
	}
	if e.At != "" {
		parts = append(parts, "at "+e.At)
	}
	return strings.Join(parts, ", ")
}

func describeFired(f recorded) string {
	parts := []string{fmt.Sprintf("rule %q", f.firing.Rule), fmt.Sprintf("ruleset %q", f.firing.Ruleset)}
	for _, a := range f.actions {
		b, _ := json.Marshal(a.Args)
		parts = append(parts, fmt.Sprintf("%s %s", a.Type, b))
	}
	parts = append(parts, "at "+f.at.String())
	return strings.Join(parts, ", ")
}

func mismatch(e ExpectedFiring, f recorded) string {
	if e.Rule != "" && e.Rule != f.firing.Rule {
		return fmt.Sprintf("rule is %q", f.firing.Rule)
	}
	if e.Ruleset != "" && e.Ruleset != f.firing.Ruleset {
		return fmt.Sprintf("ruleset is %q", f.firing.Ruleset)
	}
	if e.At != "" {
		at, err := parseOffset(e.At)
		if err != nil {
			return fmt.Sprintf("bad expected at: %v", err)
		}
		if at != f.at {
			return fmt.Sprintf("fired at %s, not %s", f.at, at)
		}
	}
	if e.Events != nil || e.Event != nil {
		evs := firingEvents(f)
		for name, want := range e.Events {
			have, ok := evs[name]
			if !ok {
				return fmt.Sprintf("no matched event named %q", name)
			}
			wm, _ := toJSONMap(want)
			if !subset(wm, have) {
				b, _ := json.Marshal(have)
				return fmt.Sprintf("matched event %q is %s", name, b)
			}
		}
		if e.Event != nil {
			found := false
			for _, have := range evs {
				if subset(toJSON(e.Event).(map[string]any), have) {
					found = true
				}
			}
			if !found {
				return "no matched event has the expected fields"
			}
		}
	}
	if e.Action == "" && e.Args == nil {
		return ""
	}
	for _, a := range f.actions {
		if e.Action != "" && a.Type != e.Action {
			continue
		}
		if e.Args != nil && !subset(toJSON(e.Args).(map[string]any), toJSON(a.Args).(map[string]any)) {
			continue
		}
		return ""
	}
	if e.Action != "" {
		return fmt.Sprintf("no %s action with the expected args", e.Action)
	}
	return "no action with the expected args"
}

// firingEvents recovers the matched events of a recorded firing.
func firingEvents(f recorded) map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, v := range f.firing.Events {
		out[k] = toJSON(v).(map[string]any)
	}
	return out
}

func toJSONMap(v any) (map[string]any, bool) {
	m, ok := toJSON(v).(map[string]any)
	return m, ok
}

// toJSON normalises a value through JSON so numbers compare alike.
func toJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		if _, isMap := v.(map[string]any); isMap {
			return map[string]any{}
		}
	}
	return out
}

// subset reports whether every key of want is in have with an equal value
// (maps recursively, lists element-wise).
func subset(want, have map[string]any) bool {
	for k, wv := range want {
		hv, ok := have[k]
		if !ok {
			return false
		}
		if !valueSubset(toJSON(wv), toJSON(hv)) {
			return false
		}
	}
	return true
}

func valueSubset(w, h any) bool {
	switch wx := w.(type) {
	case map[string]any:
		hx, ok := h.(map[string]any)
		return ok && subset(wx, hx)
	case []any:
		hx, ok := h.([]any)
		if !ok || len(wx) != len(hx) {
			return false
		}
		for i := range wx {
			if !valueSubset(wx[i], hx[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(w, h)
}
