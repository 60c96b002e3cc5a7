// Command rulebook-supervise is the supervisor daemon the engine starts,
// once per engine process and records directory, to run every
// run_command, run_playbook and run_module program (see the package
// procgroup of actions): it records each attempt's process, runs the
// program, forwards its output and records how it ended, so that a crash
// of the engine never loses an attempt nor runs one twice at once. The
// engine starts it itself (flags -serve -dir DIR -ppid PID, its socket on
// descriptor 3); it is not meant to be run by hand. Installed next to the
// rulebook binary, it is used in place of the engine executing itself
// again, which would keep a second copy of the engine's runtime and
// package state in memory for the daemon's lifetime. It is built from the
// same tree as rulebook.
package main

import (
	"os"

	"github.com/rulebook-dev/rulebook/actions/supervise"
)

func main() {
	os.Exit(supervise.Main())
}
