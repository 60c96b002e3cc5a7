package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
)

// cmdConvert prints a rulebook written for ansible-rulebook in the native
// form (expr conditions), comments kept. The rulebook must be valid; its
// problems are reported as validate reports them.
func cmdConvert(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", "convert RULEBOOK [--vars FILE] [--env-vars A,B]", stderr)
	vf := addVarsFlags(fs)
	pluginDirs := addPluginFlags(fs)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fs.Usage()
		return errUsage
	}
	extra, err := vf.load()
	if err != nil {
		return err
	}
	reg, closeReg, err := newRegistry(registryOptions{rulebookPath: files[0], pluginDirs: *pluginDirs, log: discardLog()})
	if err != nil {
		return err
	}
	defer closeReg()
	out, err := rulebooks.ConvertFile(files[0], rulebooks.Options{Registry: reg, Clock: engine.SystemClock{}, ExtraVars: extra})
	if err != nil {
		var list rulebooks.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(stderr, e.Error())
			}
			return exitError{1}
		}
		return err
	}
	_, err = stdout.Write(out)
	return err
}
