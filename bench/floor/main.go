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
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/rulebook-dev/rulebook/bench/internal/benchhttp"
)

// pending is one request body waiting for the committer.
type pending struct {
	body []byte
	err  error
	done chan struct{}
}

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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := preallocate(filepath.Join(dir, "log"), size)
	if err != nil {
		return err
	}
	defer f.Close()

	queue := make(chan *pending, 1024)
	go commit(f, size, queue)
	return benchhttp.Serve(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := benchhttp.ReadBody(w, r)
		if !ok {
			return
		}
		p := &pending{body: body, done: make(chan struct{})}
		queue <- p
		<-p.done
		if p.err != nil {
			http.Error(w, p.err.Error(), http.StatusServiceUnavailable)
			return
		}
		benchhttp.Accepted(w)
	}))
}

// preallocate creates the log file and writes and syncs it whole, so later
// writes overwrite allocated blocks and a sync has no metadata to flush.
func preallocate(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero[:min(int64(len(zero)), size-off)], off); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// commit is the committer: it takes every body waiting, writes them as
// length-prefixed records with one write at the log's offset, syncs once,
// and releases their handlers.
func commit(f *os.File, size int64, queue <-chan *pending) {
	var (
		group []*pending
		buf   []byte
		off   int64
	)
	for p := range queue {
		group = append(group[:0], p)
	drain:
		for {
			select {
			case p := <-queue:
				group = append(group, p)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, p := range group {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(p.body)))
			buf = append(buf, p.body...)
		}
		if off+int64(len(buf)) > size {
			off = 0
		}
		_, err := f.WriteAt(buf, off)
		if err == nil {
			err = syscall.Fdatasync(int(f.Fd()))
		}
		off += int64(len(buf))
		for _, p := range group {
			p.err = err
			close(p.done)
		}
	}
}
