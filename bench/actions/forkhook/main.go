//go:build linux

// Command forkhook is the stand-in for adnanh/webhook in bench/actions.sh
// when that module cannot be fetched. It does per request what
// adnanh/webhook's default hook does (webhook.go, hookHandler and
// handleHook; no command output in the response): read the body, decode
// it as JSON into a map (UseNumber), answer 200 at once, and in a
// goroutine of its own look the command up on the PATH, give it the
// process's environment, run it with its combined output captured
// (cmd.CombinedOutput) and log that output, to a discarded log as
// adnanh/webhook does without -verbose. Nothing is recorded: it is the
// fork-per-request reference without durability; Rulebook's ratio to it
// is the cost of durability and of the engine.
//
// With -durable DIR it first appends each body to a log in DIR with group
// commit (bench/internal/groupcommit: one write and one fdatasync for all
// bodies waiting, the floor of a durable acknowledgement here) and answers
// and runs the command only then: the reference with the least durability
// costs, so that Rulebook's ratio to it is the cost of the engine alone.
//
// With -promises (and -durable DIR) it keeps, with nothing else, the
// promises Rulebook's run_command keeps per command (README, "Actions
// across crashes and shutdowns"; actions/internal/procgroup), each the
// cheapest way: the floor of what those promises cost here, no engine, no
// rules, no Pebble. Per request the HTTP side does what -durable does (read,
// group-committed append of the body, decode, answer 200); then a goroutine
//  1. appends the invocation's queued state, encoded as Rulebook encodes
//     it (engine.InvocationState: ids, the rendered argv, the event with
//     its meta under event and events), to the same log and waits for its
//     sync;
//  2. asks the supervisor to run it, in a slot of DIR/slots, over a
//     socketpair: the supervisor is this binary executed again (its first
//     argument -supervise-promises, its end of the socket on descriptor
//     3), so a program is not the server's child and outlives a server
//     crash. Per request, in a goroutine of its own, it writes the pid
//     record (a JSON line naming the invocation) in place in the slot,
//     written, not synced, runs the program with its combined output
//     captured (as CombinedOutput does), writes the exit record after the
//     pid record (not synced) and answers the exit code and output. Once the
//     server's end of the socket closes it waits for the programs still
//     running, records them, and exits;
//  3. appends the result (exit code and output) to the log without waiting
//     for the sync (groupcommit AppendThen), and once the commit that
//     covered it synced, marks the slot free with one write and reuses it.
//
// The slots file grows to the most programs running at once and is
// reused after. Left out, as no promise needs them: Rulebook's rewrite of
// the pid record with the program's pid and start time after the fork, a
// process group of the program's own, Pdeathsig, timeouts. Rulebook's
// ratio to it is what its engine and its implementation of the promises
// cost beyond the least they can.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/rulebook-dev/rulebook/bench/internal/groupcommit"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == superviseArg {
		os.Exit(supervise(os.Args[2:]))
	}
	addr := flag.String("addr", "127.0.0.1:0", "listen `address`")
	prog := flag.String("prog", "", "`path` of the program to run per request")
	out := flag.String("out", "", "`file` the program appends to")
	durable := flag.String("durable", "", "append each body to a group-committed log in this `dir` before answering")
	keep := flag.Bool("promises", false, "keep Rulebook's promises per command (needs -durable): invocation synced before start, program run by a supervisor process, result logged")
	verbose := flag.Bool("verbose", false, "log every request and the command's output to standard error")
	flag.Parse()
	logger := log.New(io.Discard, "", log.LstdFlags)
	if *verbose {
		logger.SetOutput(os.Stderr)
	}
	var commitLog *groupcommit.Log
	if *durable != "" {
		var err error
		if commitLog, err = groupcommit.Open(*durable, 64<<20); err != nil {
			log.Fatal(err)
		}
	}
	var p *promises
	if *keep {
		if commitLog == nil {
			log.Fatal("forkhook: -promises needs -durable DIR")
		}
		var err error
		if p, err = startPromises(commitLog, *durable, logger); err != nil {
			log.Fatal(err)
		}
	}
	var rid atomic.Uint64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var received time.Time
		if p != nil {
			received = time.Now()
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if commitLog != nil {
			if err := commitLog.Append(body); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		var payload map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&payload); err != nil {
			logger.Printf("error parsing JSON payload %+v", err)
		}
		id := rid.Add(1)
		logger.Printf("[%d] hook triggered successfully", id)
		if p != nil {
			go p.run(id, request{r.Header, r.URL.Path, r.Method, r.RemoteAddr}, payload, received, *prog, *out, fmt.Sprint(payload["n"]))
			return
		}
		go run(logger, id, *prog, *out, fmt.Sprint(payload["n"]))
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// run is adnanh/webhook's handleHook for a hook with two arguments (a
// string and a payload value) and no environment or file arguments.
func run(logger *log.Logger, id uint64, prog, out, n string) {
	path, err := exec.LookPath(prog)
	if err != nil {
		logger.Printf("unable to locate command: %q", prog)
		return
	}
	cmd := exec.Command(path)
	cmd.Args = []string{prog, out, n}
	cmd.Env = os.Environ()
	logger.Printf("[%d] executing %s (%s) with arguments %q", id, prog, cmd.Path, cmd.Args)
	output, err := cmd.CombinedOutput()
	logger.Printf("[%d] command output: %s", id, output)
	if err != nil {
		logger.Printf("[%d] error occurred: %+v", id, err)
	}
	logger.Printf("[%d] finished handling", id)
}
