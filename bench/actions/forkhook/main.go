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

	"github.com/rulebook-dev/rulebook/bench/internal/groupcommit"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen `address`")
	prog := flag.String("prog", "", "`path` of the program to run per request")
	out := flag.String("out", "", "`file` the program appends to")
	durable := flag.String("durable", "", "append each body to a group-committed log in this `dir` before answering")
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
	var rid atomic.Uint64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
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
