// Command rulebook-plugin-ticket is the Rulebook action plugin for tickets
// in ServiceNow, Jira and GitHub issues (see package plugins/ticket). The
// engine starts it; it keeps its correlation state in the directory the
// engine passes in RULEBOOK_PLUGIN_STATE_DIR.
package main

import (
	"github.com/rulebook-dev/rulebook/plugins/sdk"
	"github.com/rulebook-dev/rulebook/plugins/ticket"
)

func main() {
	sdk.Serve(ticket.New(ticket.Options{StateDir: sdk.StateDir()}))
}
