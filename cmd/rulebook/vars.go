package main

import (
	"flag"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

type varsFlags struct {
	file    *string
	envVars *listFlag
}

func addVarsFlags(fs *flag.FlagSet) *varsFlags {
	v := &varsFlags{file: new(string), envVars: &listFlag{}}
	fs.StringVar(v.file, "vars", "", "YAML or JSON `FILE` of variables, merged over every ruleset's vars")
	fs.Var(v.envVars, "env-vars", "comma-separated environment `NAMES` to add as variables (repeatable)")
	return v
}

// load merges the vars file and the named environment variables.
func (v *varsFlags) load() (map[string]any, error) {
	out := map[string]any{}
	if *v.file != "" {
		data, err := os.ReadFile(*v.file)
		if err != nil {
			return nil, fmt.Errorf("--vars: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("--vars %s: want a mapping of variables: %w", *v.file, err)
		}
		for k, val := range m {
			out[k] = val
		}
	}
	for _, name := range *v.envVars {
		val, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("--env-vars: environment variable %q is not set", name)
		}
		out[name] = val
	}
	return out, nil
}

// addPluginFlags declares --plugins-dir.
func addPluginFlags(fs *flag.FlagSet) *[]string {
	l := &listFlag{}
	fs.Var(l, "plugins-dir", "directory with rulebook-plugin-* executables (repeatable; default: plugins/ beside the rulebook and beside the binary)")
	return (*[]string)(l)
}
