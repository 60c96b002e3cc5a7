package httpingest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// printEmitter prints what it is given and accepts it.
type printEmitter struct{}

func (printEmitter) Emit(_ context.Context, src engine.SourceRef, es []engine.Entry) ([]engine.Outcome, error) {
	for _, e := range es {
		fmt.Printf("%s got %v (dedupe key %q)\n", src.Name, e.Event["alert"], e.DedupeKey)
	}
	return make([]engine.Outcome, len(es)), nil
}

// Example shows how an HTTP source (alertmanager, dynatrace, ...) is built
// on this package: decode the shared arguments, build an Endpoint with the
// source's own Build, and serve it through the Hub from Run.
func Example() {
	args := map[string]any{"address": "127.0.0.1:0", "path": "/alerts", "token": "s3cret"}

	// Check time (secret references unresolved), then New time.
	if err := httpingest.CheckKeys(args, "my_own_key"); err != nil {
		panic(err)
	}
	set, err := httpingest.DecodeSettings(args, true, httpingest.Defaults{Path: "/alerts"})
	if err != nil {
		panic(err)
	}
	build := func(req *httpingest.Request) ([]engine.Entry, error) {
		alerts, ok := req.Payload.([]any)
		if !ok {
			return nil, fmt.Errorf("payload is not a list of alerts")
		}
		var out []engine.Entry
		for _, a := range alerts {
			ev := engine.NewEvent(map[string]any{"alert": a, "meta": map[string]any{"headers": req.SafeHeaders()}}, "am", "alertmanager", req.Received)
			out = append(out, engine.Entry{Event: ev, DedupeKey: fmt.Sprint(a)})
		}
		return out, nil
	}
	ep := set.Endpoint(engine.SourceRef{Name: "am", Type: "alertmanager"}, time.Now, zerolog.Nop(), build)
	ep.Out = printEmitter{} // in Run: the engine's Emitter

	hub := httpingest.NewHub(httpingest.HubConfig{Log: zerolog.Nop()})
	defer hub.Stop(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- hub.Serve(ctx, set.Listener, set.Paths, ep) }() // Run's body

	var addr string
	for addr == "" {
		if a, ok := hub.Lookup(set.Listener.Address, "/alerts"); ok {
			addr = a.String()
		}
		time.Sleep(time.Millisecond)
	}
	for _, token := range []string{"wrong", "s3cret"} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/alerts", strings.NewReader(`["disk full","cpu hot"]`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			fmt.Println(resp.StatusCode)
		}
	}
	cancel()
	fmt.Println("serve:", <-served)
	// Output:
	// 401 {"error":"unauthorized"}
	// am got disk full (dedupe key "disk full")
	// am got cpu hot (dedupe key "cpu hot")
	// 200
	// serve: <nil>
}
