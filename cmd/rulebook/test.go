package main

import (
	"fmt"
	"io"

	"github.com/rulebook-dev/rulebook/rulebooks"
)

func cmdTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("test", "test TESTFILE... [-v]", stderr)
	verbose := fs.Bool("v", false, "print every firing and the actions' output, also for passing cases")
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
	var total rulebooks.TestSummary
	broken := 0
	for _, f := range files {
		reg, closeReg, err := newRegistry(registryOptions{rulebookPath: f, pluginDirs: *pluginDirs, sourceDirs: *sourceDirs, log: discardLog()})
		if err != nil {
			return err
		}
		sum, err := rulebooks.RunTestFile(f, rulebooks.TestOptions{Registry: reg, Out: stdout, Verbose: *verbose})
		closeReg()
		total.Passed += sum.Passed
		total.Failed += sum.Failed
		if err != nil {
			broken++
			fmt.Fprintf(stdout, "  ERROR %v\n", err)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", total.Passed, total.Failed+broken)
	if total.Failed > 0 || broken > 0 {
		return exitError{1}
	}
	return nil
}
