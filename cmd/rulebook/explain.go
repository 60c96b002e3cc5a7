package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
)

// cmdExplain explains one event against a fresh engine for the rulebook:
// what each rule's condition says and what its throttle or an earlier rule
// would do (engine.Engine.Explain). Against the live state of a running
// process it is POST /api/explain on the admin listener.
func cmdExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("explain", "explain RULEBOOK EVENT.json|- [--ruleset NAME] [--format text|json] [--vars FILE] [--env-vars A,B]", stderr)
	ruleset := fs.String("ruleset", "", "explain this ruleset only (default: every ruleset)")
	format := fs.String("format", "text", "output format: text or json")
	vf := addVarsFlags(fs)
	pluginDirs := addPluginFlags(fs)
	sourceDirs := addSourceDirFlags(fs)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 2 {
		fs.Usage()
		return errUsage
	}
	if err := checkFormat(*format, "text", "json"); err != nil {
		return err
	}
	path, eventPath := files[0], files[1]
	event, err := readEventFile(eventPath, stdin)
	if err != nil {
		return err
	}
	extra, err := vf.load()
	if err != nil {
		return err
	}
	file, err := rulebooks.ReadFile(path) // parsed once, for the plugins and the compile
	if err != nil {
		return err
	}
	reg, closeReg, err := newRegistry(registryOptions{rulebookPath: path, rulebook: file, pluginDirs: *pluginDirs, sourceDirs: *sourceDirs, log: discardLog()})
	if err != nil {
		return err
	}
	defer closeReg()
	clock := engine.SystemClock{}
	rb, err := file.Compile(rulebooks.Options{Registry: reg, Clock: clock, ExtraVars: extra})
	if err != nil {
		return err
	}
	// A fresh engine: no facts, no throttle windows, no partial matches.
	// Nothing is dispatched: Explain fires nothing.
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, Stdout: io.Discard, Log: discardLog()})
	xs, err := eng.Explain(*ruleset, event)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"explanations": xs})
	}
	return engine.WriteText(stdout, xs)
}

// readEventFile reads one JSON object from path, or from stdin for "-".
func readEventFile(path string, stdin io.Reader) (map[string]any, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	var event map[string]any
	if err := json.Unmarshal(data, &event); err != nil {
		return nil, fmt.Errorf("event %s: not a JSON object: %w", path, err)
	}
	if event == nil {
		return nil, fmt.Errorf("event %s: not a JSON object", path)
	}
	return event, nil
}
