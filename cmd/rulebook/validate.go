package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "validate RULEBOOK... [--strict] [--format text|json] [--vars FILE] [--env-vars A,B]", stderr)
	format := fs.String("format", "text", "output format: text or json")
	vf := addVarsFlags(fs)
	var strict bool
	const strictUsage = "check what run checks: every ${env:...}/${file:...} secret of a source or action must resolve here (without it an unresolved one is a warning)"
	fs.BoolVar(&strict, "strict", false, strictUsage)
	fs.BoolVar(&strict, "check-secrets", false, "the same as --strict")
	pluginDirs := addPluginFlags(fs)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errUsage
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format: want text or json, got %q", *format)
	}
	extra, err := vf.load()
	if err != nil {
		return err
	}
	var all, warnings []*rulebooks.Error
	failed := false
	for _, f := range files {
		reg, closeReg, err := newRegistry(registryOptions{rulebookPath: f, pluginDirs: *pluginDirs, log: discardLog()})
		if err != nil {
			return err
		}
		rb, err := rulebooks.Load(f, rulebooks.Options{Registry: reg, Clock: engine.SystemClock{}, ExtraVars: extra, CheckSecrets: strict})
		closeReg()
		if err == nil {
			warnings = append(warnings, rb.Warnings...)
			if *format == "text" {
				for _, w := range rb.Warnings {
					fmt.Fprintln(stdout, w.Error())
				}
				if len(rb.Warnings) > 0 {
					fmt.Fprintf(stdout, "%s: ok, with %d warning(s)\n", f, len(rb.Warnings))
				} else {
					fmt.Fprintf(stdout, "%s: ok\n", f)
				}
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
		if warnings == nil {
			warnings = []*rulebooks.Error{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"valid": !failed, "errors": all, "warnings": warnings}); err != nil {
			return err
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}
