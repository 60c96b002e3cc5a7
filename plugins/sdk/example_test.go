package sdk_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

// pager is a complete plugin: one action, "pager.page", which posts a
// message to an on-call webhook. Its main is one line:
//
//	func main() { sdk.Serve(pager{}) }
//
// Built as rulebook-plugin-pager and dropped into a plugins directory, it
// is used in a rulebook like any built-in action:
//
//	actions:
//	  - pager.page:
//	      url: https://oncall.example/hook
//	      message: "{{ event.alert.labels.alertname }} is firing"
type pager struct{}

func (pager) Describe() sdk.Info {
	return sdk.Info{
		Name:        "pager",
		Version:     "1.0.0",
		Description: "pages the on-call engineer",
		Actions: []sdk.Action{{
			Name:        "pager.page",
			Description: "post a message to an on-call webhook",
			Schema: `{
				"type": "object",
				"properties": {
					"url": {"type": "string"},
					"message": {"type": "string", "minLength": 1}
				},
				"required": ["url", "message"],
				"additionalProperties": false
			}`,
		}},
	}
}

func (pager) Invoke(ctx context.Context, req *sdk.Request) sdk.Response {
	url, _ := req.Args["url"].(string)
	msg, _ := req.Args["message"].(string)
	if req.Args["dry_run"] == true { // lets the example run without a server
		return sdk.Success("would page: " + msg)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return sdk.Failure("url: %v", err)
	}
	hreq.Header.Set("Idempotency-Key", req.ID) // stable across retries
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return sdk.RetryableFailure("post: %v", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		r := sdk.RetryableFailure("rate limited")
		r.RetryAfter = 30 * time.Second
		return r
	case resp.StatusCode >= 500:
		return sdk.RetryableFailure("server error %d", resp.StatusCode)
	case resp.StatusCode >= 400:
		return sdk.Failure("rejected with %d", resp.StatusCode)
	}
	req.Log.Info("paged", "status", resp.StatusCode)
	return sdk.Success("paged: " + msg)
}

// Example shows a whole plugin (the pager type above) and calls it the way
// the engine does. A real plugin's main is just sdk.Serve(pager{}).
func Example() {
	var p sdk.Plugin = pager{}
	for _, a := range p.Describe().Actions {
		fmt.Println("action:", a.Name)
	}
	resp := p.Invoke(context.Background(), &sdk.Request{
		ID:     "inv-1",
		Action: "pager.page",
		Args:   map[string]any{"url": "https://oncall.example/hook", "message": "disk full on web1", "dry_run": true},
		Log:    sdk.Logger(),
	})
	fmt.Println(resp.Status, resp.Output)
	// Output:
	// action: pager.page
	// succeeded would page: disk full on web1
}
