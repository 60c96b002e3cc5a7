package main

import (
	"io"

	"github.com/rulebook-dev/rulebook/rulebooks"
)

// cmdDescribe prints an action's or a source's arguments from the rulebook
// JSON Schema (plugin actions included, with --plugins-dir).
func cmdDescribe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("describe", "describe ACTION|SOURCE [--plugins-dir DIR]", stderr)
	pluginDirs := addPluginFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	reg, closeReg, err := newRegistry(registryOptions{pluginDirs: *pluginDirs, log: discardLog()})
	if err != nil {
		return err
	}
	defer closeReg()
	return rulebooks.Describe(stdout, reg, pos[0])
}
