// Command echo is a test plugin whose actions succeed: test.echo returns its
// arguments and the invocation's identity, test.wait waits for its context
// to end.
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

type echo struct{}

func (echo) Describe() sdk.Info {
	return sdk.Info{
		Name:        "echo",
		Version:     "1.2.3",
		Description: "test plugin that echoes",
		Actions: []sdk.Action{
			{
				Name:        "test.echo",
				Description: "returns its arguments",
				Schema: `{
					"type": "object",
					"properties": {
						"message": {"type": "string", "minLength": 1},
						"count": {"type": "integer", "minimum": 1},
						"mode": {"enum": ["plain", "loud"]},
						"tags": {"type": "array", "items": {"type": "string"}},
						"fail": {"enum": ["retry", "permanent"]}
					},
					"required": ["message"],
					"additionalProperties": false
				}`,
			},
			{Name: "test.wait", Description: "waits for its context to end"},
		},
	}
}

func (echo) Invoke(ctx context.Context, req *sdk.Request) sdk.Response {
	switch req.Action {
	case "test.wait":
		<-ctx.Done()
		return sdk.RetryableFailure("cancelled: %v", ctx.Err())
	case "test.echo":
		req.Log.Info("echo called", "message", req.Args["message"])
		switch req.Args["fail"] {
		case "retry":
			r := sdk.RetryableFailure("asked to fail, password=%v", req.Args["message"])
			r.RetryAfter = 1500 * time.Millisecond
			return r
		case "permanent":
			return sdk.Failure("asked to fail permanently")
		}
		b, _ := json.Marshal(map[string]any{
			"id": req.ID, "firing_id": req.FiringID, "action": req.Action,
			"ruleset": req.Ruleset, "rule": req.Rule, "args": req.Args,
			"event": req.Event, "events": req.Events, "hosts": req.Hosts,
			"state_dir": req.StateDir, "pid": os.Getpid(),
		})
		r := sdk.Success(string(b))
		r.HTTPStatus = 201
		r.Details = map[string]any{"echoed": true}
		r.Facts = []map[string]any{{"echoed": req.Args["message"]}}
		r.Events = []map[string]any{{"from": "echo"}}
		return r
	}
	return sdk.Failure("unknown action %q", req.Action)
}

func main() { sdk.Serve(echo{}) }
