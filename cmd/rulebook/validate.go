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
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format: want text or json, got %q", *format)
	}
	extra, err := vf.load()
	if err != nil {
		return err
	}
	var all []*rulebooks.Error
	warnings := []*rulebooks.Error{}
	failed := false
	for _, f := range files {
		reg, closeReg, err := newRegistry(registryOptions{rulebookPath: f, pluginDirs: *pluginDirs, sourceDirs: *sourceDirs, log: discardLog()})
		if err != nil {
			return err
		}
		rb, err := rulebooks.Load(f, rulebooks.Options{Registry: reg, Clock: engine.SystemClock{}, ExtraVars: extra, CheckSecrets: *checkSecrets})
		closeReg()
		if err == nil {
			// Warnings (valid but dangerous uses) do not fail validation.
			warnings = append(warnings, rb.Warnings...)
			if *format == "text" {
				for _, w := range rb.Warnings {
					fmt.Fprintln(stdout, w.Error())
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
		if err := enc.Encode(map[string]any{"valid": !failed, "errors": all, "warnings": warnings}); err != nil {
			return err
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}
