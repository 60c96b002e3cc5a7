// Package supervise links the supervisor daemon of supervised actions
// (run_command, run_playbook, run_module) into a binary. Any binary that
// links those actions can act as the supervisor (the engine executes
// itself again as "rulebook-supervise"); cmd/rulebook-supervise links only
// this package, so that the daemon, one per engine process, is a small
// program with a small memory footprint instead of a second copy of the
// engine.
package supervise

import (
	"os"

	"github.com/rulebook-dev/rulebook/actions/internal/procgroup"
)

// Main runs the supervisor daemon with os.Args and returns its exit
// status. A binary that links this package already ran it, from the
// package's initialisation, when started as the engine starts the
// supervisor; Main runs it for any other argv[0].
func Main() int {
	return procgroup.SuperviseMain(os.Args[1:])
}
