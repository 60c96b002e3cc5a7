// Command hang is a test plugin whose hang.run ignores its context and
// never returns the first time it sees a marker path (it creates the marker
// first), and succeeds once the marker exists. With freeze: true the whole
// process stops (SIGSTOP) instead, so it answers nothing at all.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

type hang struct{}

func (hang) Describe() sdk.Info {
	return sdk.Info{
		Name:    "hang",
		Version: "0.0.1",
		Actions: []sdk.Action{{
			Name:   "hang.run",
			Schema: `{"type":"object","properties":{"marker":{"type":"string"},"freeze":{"type":"boolean"}},"required":["marker"]}`,
		}},
	}
}

func (hang) Invoke(_ context.Context, req *sdk.Request) sdk.Response {
	marker, _ := req.Args["marker"].(string)
	if _, err := os.Stat(marker); err != nil {
		if err := os.WriteFile(marker, []byte("hung once\n"), 0o600); err != nil {
			return sdk.Failure("write marker: %v", err)
		}
		if req.Args["freeze"] == true {
			freeze()
		}
		select {} // ignores ctx on purpose
	}
	return sdk.Success(fmt.Sprintf("answered pid %d", os.Getpid()))
}

func main() { sdk.Serve(hang{}) }
