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
//
// # Setting up a plugin's module
//
// The module path github.com/rulebook-dev/rulebook is not fetchable, so a
// bare `go get` cannot resolve it: point the plugin's go.mod at a checkout
// of Rulebook with a replace directive. Write main.go (below) in a new
// directory beside the checkout (../rulebook here; any absolute or relative
// path works), then:
//
//	go mod init example.com/rulebook-plugin-pager
//	go mod edit -replace=github.com/rulebook-dev/rulebook=../rulebook
//	go get github.com/rulebook-dev/rulebook/plugins/sdk@v0.0.0
//	go build -o rulebook-plugin-pager .
//
// The version v0.0.0 is only a placeholder: the replace directive makes it
// the checkout, whatever its commit. go.mod then holds
//
//	replace github.com/rulebook-dev/rulebook => ../rulebook
//
// and a requirement of github.com/rulebook-dev/rulebook v0.0.0 with the
// SDK's dependencies at the versions Rulebook uses (go mod tidy tidies the
// list later, with network access).
//
// # A whole plugin
//
// The pager plugin has one action, "pager.page", that posts a message to a
// webhook. This is all of its main.go:
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"net/http"
//		"strings"
//
//		"github.com/rulebook-dev/rulebook/plugins/sdk"
//	)
//
//	type pager struct{}
//
//	func (pager) Describe() sdk.Info {
//		return sdk.Info{Name: "pager", Version: "1.0.0", Actions: []sdk.Action{{
//			Name:        "pager.page",
//			Description: "post a message to an on-call webhook",
//			Schema: `{"type": "object", "required": ["url", "message"], "additionalProperties": false,
//				"properties": {"url": {"type": "string"}, "message": {"type": "string"}}}`,
//		}}}
//	}
//
//	func (pager) Invoke(ctx context.Context, req *sdk.Request) sdk.Response {
//		url, _ := req.Args["url"].(string)
//		msg, _ := req.Args["message"].(string)
//		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(msg))
//		if err != nil {
//			return sdk.Failure("url: %v", err)
//		}
//		hreq.Header.Set("Idempotency-Key", req.ID) // stable across retries
//		resp, err := http.DefaultClient.Do(hreq)
//		if err != nil {
//			return sdk.RetryableFailure("post: %v", err)
//		}
//		resp.Body.Close()
//		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
//			return sdk.RetryableFailure("status %d", resp.StatusCode)
//		}
//		if resp.StatusCode >= 400 {
//			return sdk.Failure("status %d", resp.StatusCode)
//		}
//		return sdk.Success(fmt.Sprintf("paged (%d)", resp.StatusCode))
//	}
//
//	func main() { sdk.Serve(pager{}) }
//
// Put the binary in a plugins directory and rulebooks use the action like a
// built-in one:
//
//	action:
//	  pager.page:
//	    url: https://oncall.example/hook
//	    message: "{{ event.alert.labels.alertname }} is firing"
//
// TestDocumentedPluginBuilds builds exactly this, in a module of its own set
// up with the commands above, and starts it through the plugin host. The
// runnable Example (example_test.go) shows a fuller plugin, with its
// retries and logging, called the way the engine calls it.
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
