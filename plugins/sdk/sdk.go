// Package sdk is what an action plugin for Rulebook imports.
//
// An action plugin is a separate executable that the engine starts and talks
// to over gRPC (github.com/hashicorp/go-plugin). A plugin author implements
// Plugin (Describe and Invoke) and calls Serve from main:
//
//	func main() { sdk.Serve(myPlugin{}) }
//
// Build the binary as rulebook-plugin-NAME and put it in a plugins
// directory (beside the rulebook, beside the rulebook binary, or one given
// with --plugins-dir). The engine starts it, asks it to Describe itself, and
// registers every action it names: rulebooks then use `NAME.ACTION:` exactly
// like a built-in action, and the engine checks their arguments against the
// action's JSON Schema when it loads the rulebook.
//
// Each Invoke gets a context that ends when the invocation's timeout
// expires or the engine shuts down; a plugin must return promptly then. A
// plugin that ignores it, crashes or stops answering fails the invocation as
// Retryable and is restarted by the engine with backoff. Log with
// Request.Log (or Logger): the lines appear in the engine's log, tagged with
// the plugin's name. Never print to stdout: go-plugin uses it.
package sdk

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/rulebook-dev/rulebook/plugins/proto"
)

// Plugin is what a plugin author implements.
type Plugin interface {
	// Describe names the plugin and lists its actions. It is called once
	// per plugin start.
	Describe() Info
	// Invoke makes one attempt of the action req.Action. It must be safe for
	// concurrent use, and return when ctx ends (with Retryable). The
	// invocation ID (req.ID) is stable across attempts: use it as an
	// idempotency key with external systems.
	Invoke(ctx context.Context, req *Request) Response
}

// Info describes a plugin.
type Info struct {
	// Name is the plugin's name (the NAME of rulebook-plugin-NAME).
	Name        string
	Version     string
	Description string
	Actions     []Action
}

// Action describes one action a plugin provides.
type Action struct {
	// Name is the action type rulebooks use. Prefix it with the plugin's
	// name ("ticket.open") so it cannot collide with a built-in action.
	Name        string
	Description string
	// Schema is the JSON Schema of the action's arguments (draft 2020-12
	// unless it names another $schema). Empty accepts any object. The
	// engine validates arguments against it at load time; a value that is
	// still a template ("{{ ... }}") is not checked until it is rendered,
	// so Invoke must check the rendered values it depends on.
	Schema string
}

// Request is one attempt of one invocation.
type Request struct {
	// ID is the invocation's ID, stable across attempts and restarts.
	ID       string
	FiringID string
	// Action is the action type being invoked ("ticket.open").
	Action  string
	Ruleset string
	Rule    string
	// Args are the rendered arguments with secret references resolved,
	// as encoding/json decodes them (numbers are float64).
	Args map[string]any
	// Event completed the match; Events are all matched events by name.
	Event  map[string]any
	Events map[string]map[string]any
	// Hosts are the hosts of the matched events; HostPattern is the
	// ruleset's `hosts:`.
	Hosts       []string
	HostPattern string
	// StateDir is a directory private to this plugin that survives
	// restarts (empty when the engine gave none).
	StateDir string
	// Log writes to the engine's log, tagged with the plugin's name.
	Log hclog.Logger
}

// Status is the outcome class of one attempt.
type Status int

const (
	// Succeeded: done.
	Succeeded Status = iota + 1
	// Retryable: failed, but trying again may help (timeout, 5xx, 429).
	Retryable
	// Failed: failed permanently (4xx, bad input); retrying cannot help.
	Failed
)

func (s Status) String() string {
	switch s {
	case Succeeded:
		return "succeeded"
	case Retryable:
		return "retryable"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Response is what one attempt produced.
type Response struct {
	Status Status
	// Output is shown in the audit trail (its beginning).
	Output string
	// Error says what went wrong when Status is not Succeeded. Never put a
	// secret in it.
	Error string
	// RetryAfter, when set, is the earliest the next attempt may start.
	RetryAfter time.Duration
	// HTTPStatus is the status of the last HTTP response, if any.
	HTTPStatus int
	// Details are structured results (a ticket number, a URL).
	Details map[string]any
	// Facts and Events are fed back into the invocation's ruleset.
	Facts  []map[string]any
	Events []map[string]any
}

// Success returns a Succeeded response.
func Success(output string) Response { return Response{Status: Succeeded, Output: output} }

// Failure returns a permanent failure.
func Failure(format string, args ...any) Response {
	return Response{Status: Failed, Error: fmt.Sprintf(format, args...)}
}

// RetryableFailure returns a failure that may succeed when tried again.
func RetryableFailure(format string, args ...any) Response {
	return Response{Status: Retryable, Error: fmt.Sprintf(format, args...)}
}

// Logger returns the plugin's logger: JSON lines on stderr that the engine
// parses and forwards into its own log with the plugin's name.
func Logger() hclog.Logger { return logger }

var logger = hclog.New(&hclog.LoggerOptions{
	Level:      hclog.Trace,
	Output:     os.Stderr,
	JSONFormat: true,
})

// StateDir returns the directory the engine gave this plugin for durable
// state, or "" when it gave none.
func StateDir() string { return os.Getenv(proto.StateDirEnv) }
