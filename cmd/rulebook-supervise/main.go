// Command rulebook-supervise is the supervisor the engine starts for each
// run_command, run_playbook and run_module attempt (see the package
// procgroup of actions): it records the attempt's process, runs the
// program and records how it ended, so that a crash of the engine never
// runs an attempt twice at once. Installed next to the rulebook binary,
// it is used in place of the engine executing itself again, which costs
// several milliseconds of CPU per command more (the engine's runtime and
// package initialisation). It is built from the same tree as rulebook.
package main

import (
	"os"

	"github.com/rulebook-dev/rulebook/actions/supervise"
)

func main() {
	os.Exit(supervise.Main())
}
