package sdk_test

import (
	"context"
	"fmt"
	"strconv"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

// tickets is a complete source plugin: it emits the tickets of a queue
// after the last one the engine made durable. Its main is one line:
//
//	func main() { sdk.ServeSource(ticketsInfo, tickets) }
//
// Built as rulebook-source-tickets and dropped into a plugins directory,
// it is used in a rulebook like any built-in source:
//
//	sources:
//	  - tickets: {queue: ops}
var ticketsInfo = sdk.SourceInfo{
	Name:        "tickets",
	Version:     "1.0.0",
	Description: "new tickets of a queue",
	Schema:      `{"type":"object","required":["queue"],"properties":{"queue":{"type":"string"}},"additionalProperties":false}`,
}

// queue stands in for the ticket system's API: ticket i of the queue.
var queue = []string{"disk full on db1", "cert expires on web2", "backup failed"}

func tickets(ctx context.Context, args map[string]any, resumeFrom string, emit sdk.EmitFunc) error {
	next := 0
	if resumeFrom != "" { // the position of the last durable event
		n, err := strconv.Atoi(resumeFrom)
		if err != nil {
			return fmt.Errorf("bad resume position %q", resumeFrom)
		}
		next = n + 1
	}
	for i := next; i < len(queue); i++ {
		ev := map[string]any{"queue": args["queue"], "id": i, "title": queue[i]}
		// emit returns once the engine has made the event durable; its
		// position is what resumeFrom will be after a restart.
		if err := emit(ev, strconv.Itoa(i)); err != nil {
			return nil // the engine is stopping the run
		}
	}
	<-ctx.Done() // a real source would poll for new tickets here
	return nil
}

// The engine calls the run function with the source's arguments and the
// last durable position. Here the run is called directly, as a unit test of
// a plugin would, with an emit that prints; the first run stops after one
// event, as if the plugin had crashed, and the second resumes after it.
func Example_sourcePlugin() {
	fmt.Printf("source %s %s: %s\n", ticketsInfo.Name, ticketsInfo.Version, ticketsInfo.Description)
	ctx, cancel := context.WithCancel(context.Background())
	var last string
	emit := func(ev map[string]any, position string) error {
		fmt.Printf("event %v %q (position %s)\n", ev["id"], ev["title"], position)
		last = position
		cancel() // "crash" after the first durable event
		return fmt.Errorf("stopped")
	}
	_ = tickets(ctx, map[string]any{"queue": "ops"}, "", emit)

	ctx, cancel = context.WithCancel(context.Background())
	n := 0
	emit = func(ev map[string]any, position string) error {
		fmt.Printf("event %v %q (position %s)\n", ev["id"], ev["title"], position)
		if n++; n == 2 {
			cancel()
		}
		return nil
	}
	_ = tickets(ctx, map[string]any{"queue": "ops"}, last, emit)
	// Output:
	// source tickets 1.0.0: new tickets of a queue
	// event 0 "disk full on db1" (position 0)
	// event 1 "cert expires on web2" (position 1)
	// event 2 "backup failed" (position 2)
}
