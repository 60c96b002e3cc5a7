package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "validate RULEBOOK... [--strict] [--stats] [--format text|json] [--vars FILE] [--env-vars A,B]", stderr)
	format := fs.String("format", "text", "output format: text or json")
	stats := fs.Bool("stats", false, "say, per rule, which tests the rule index selects it by, or that it is tested against every event")
	vf := addVarsFlags(fs)
	// --strict checks what run checks: every secret reference must resolve
	// here. Without it an unresolved one is a warning.
	checkSecrets := new(bool)
	fs.BoolVar(checkSecrets, "strict", false, "check what run checks: every ${env:...}/${file:...} secret of a source or action must resolve here (without it an unresolved one is a warning)")
	fs.BoolVar(checkSecrets, "check-secrets", false, "the same as --strict")
	pluginDirs := addPluginFlags(fs)
	sourceDirs := addSourceDirFlags(fs)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errUsage
	}
	if err := checkFormat(*format, "text", "json"); err != nil {
		return err
	}
	extra, err := vf.load()
	if err != nil {
		return err
	}
	var all []*rulebooks.Error
	warnings := []*rulebooks.Error{}
	indexed := []ruleIndexStats{}
	failed := false
	for _, f := range files {
		file, err := rulebooks.ReadFile(f) // parsed once, for the plugins and the compile
		if err != nil {
			return err
		}
		reg, closeReg, err := newRegistry(registryOptions{rulebookPath: f, rulebook: file, pluginDirs: *pluginDirs, sourceDirs: *sourceDirs, log: discardLog()})
		if err != nil {
			return err
		}
		rb, err := file.Compile(rulebooks.Options{Registry: reg, Clock: engine.SystemClock{}, ExtraVars: extra, CheckSecrets: *checkSecrets})
		closeReg()
		if err == nil {
			// Warnings (valid but dangerous uses) do not fail validation.
			warnings = append(warnings, rb.Warnings...)
			var st []ruleIndexStats
			if *stats {
				st = indexStats(f, rb.Rulesets)
				indexed = append(indexed, st...)
			}
			if *format == "text" {
				for _, w := range rb.Warnings {
					fmt.Fprintln(stdout, w.Error())
				}
				for _, s := range st {
					fmt.Fprintln(stdout, s.String())
				}
				fmt.Fprintf(stdout, "%s: ok\n", f)
			}
			continue
		}
		failed = true
		var list rulebooks.ErrorList
		if !errors.As(err, &list) {
			list = rulebooks.ErrorList{{File: f, Line: 0, Column: 0, Message: err.Error()}}
		}
		all = append(all, list...)
		if *format == "text" {
			for _, e := range list {
				fmt.Fprintln(stdout, e.Error())
			}
		}
	}
	if *format == "json" {
		if all == nil {
			all = []*rulebooks.Error{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		out := map[string]any{"valid": !failed, "errors": all, "warnings": warnings}
		if *stats {
			out["rules"] = indexed
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// ruleIndexStats says how the rule index selects one rule (validate
// --stats): Tests[i] are the tests of condition i one of which an event
// must pass for the rule to be evaluated; a condition without any makes
// the rule evaluated for every event (Indexed false).
type ruleIndexStats struct {
	File    string     `json:"file"`
	Ruleset string     `json:"ruleset"`
	Rule    string     `json:"rule"`
	Indexed bool       `json:"indexed"`
	Tests   [][]string `json:"tests"`
}

func indexStats(file string, rulesets []*engine.Ruleset) []ruleIndexStats {
	var out []ruleIndexStats
	for _, rs := range rulesets {
		for _, r := range rs.Rules {
			st := ruleIndexStats{File: file, Ruleset: rs.Name, Rule: r.Name, Indexed: true, Tests: r.IndexedTests()}
			for i, t := range st.Tests {
				if t == nil {
					st.Tests[i] = []string{}
					st.Indexed = false
				}
			}
			out = append(out, st)
		}
	}
	return out
}

func (s ruleIndexStats) String() string {
	var parts []string
	for i, t := range s.Tests {
		p := strings.Join(t, " || ")
		if len(t) == 0 {
			p = "none"
		}
		if len(s.Tests) > 1 {
			p = fmt.Sprintf("[%d] %s", i, p)
		}
		parts = append(parts, p)
	}
	head := fmt.Sprintf("%s: ruleset %q: rule %q: ", s.File, s.Ruleset, s.Rule)
	if s.Indexed {
		return head + "indexed by " + strings.Join(parts, "; ")
	}
	return head + "not indexed, evaluated for every event (a condition has no equality, in, numeric comparison or defined() test on an event path in its top-level && chain): " + strings.Join(parts, "; ")
}
