//go:build linux

// Command floor is the "floor" target of bench/ingest.sh: the least a
// durable acknowledgement costs on this machine. A plain net/http handler
// reads each request body and hands it to one committer goroutine, which
// appends every body waiting at that moment to a log file with one write and
// one fdatasync (group commit), then lets their handlers answer 200.
//
// It parses nothing, checks nothing, keeps no index and runs no rules, and
// its log is written over a preallocated, already synced file, so a sync
// flushes data and no file size (the cheapest sync ext4 offers). No durable
// webhook receiver can acknowledge faster on this machine with net/http: its
// ratio to the bare handler bounds the ratio any of them can reach, and
// tells the cost of the disk apart from the cost of the receiver's code.
//
//	go run ./bench/floor -addr 127.0.0.1:18084 -dir /tmp/floor
//
// Linux only, as the rest of bench/ingest.sh: it syncs with fdatasync, as
// Pebble does.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/rulebook-dev/rulebook/bench/internal/benchhttp"
	"github.com/rulebook-dev/rulebook/bench/internal/groupcommit"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18084", "listen address")
	dir := flag.String("dir", "", "directory of the log file (required)")
	size := flag.Int64("size", 64<<20, "size of the preallocated log in bytes; the log wraps around when full")
	flag.Parse()
	if err := run(*addr, *dir, *size); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(addr, dir string, size int64) error {
	if dir == "" {
		return errors.New("-dir is required")
	}
	log, err := groupcommit.Open(dir, size)
	if err != nil {
		return err
	}
	return benchhttp.Serve(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := benchhttp.ReadBody(w, r)
		if !ok {
			return
		}
		if err := log.Append(body); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		benchhttp.Accepted(w)
	}))
}
