// Command crash is a test plugin whose crash.run panics mid-invocation the
// first time it sees a marker path (it creates the marker first), and
// succeeds once the marker exists: a transient crash.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

type crash struct{}

func (crash) Describe() sdk.Info {
	return sdk.Info{
		Name:    "crash",
		Version: "0.0.1",
		Actions: []sdk.Action{{
			Name:   "crash.run",
			Schema: `{"type":"object","properties":{"marker":{"type":"string"}},"required":["marker"]}`,
		}},
	}
}

func (crash) Invoke(_ context.Context, req *sdk.Request) sdk.Response {
	marker, _ := req.Args["marker"].(string)
	if _, err := os.Stat(marker); err != nil {
		if err := os.WriteFile(marker, []byte("crashed once\n"), 0o600); err != nil {
			return sdk.Failure("write marker: %v", err)
		}
		panic("crash plugin: simulated crash in " + req.ID)
	}
	return sdk.Success(fmt.Sprintf("survived pid %d", os.Getpid()))
}

func main() { sdk.Serve(crash{}) }
