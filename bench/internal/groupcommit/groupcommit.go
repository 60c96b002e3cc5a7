//go:build linux

// Package groupcommit is the least a durable acknowledgement costs on this
// machine, shared by bench/floor and bench/actions/forkhook -durable: one
// committer goroutine appends every body waiting at that moment to a
// preallocated, already synced log file with one write and one fdatasync
// (the cheapest sync ext4 offers: no file size to flush), then releases
// their callers. It parses nothing and keeps no index.
//
// Append waits for the commit; AppendThen does not, and is told once a
// commit covered its body (bench/actions/forkhook -promises records a
// command's result so and frees its slot after).
package groupcommit

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
)

// Log is a preallocated log file written by one committer goroutine.
type Log struct {
	f     *os.File
	size  int64
	queue chan *pending
}

// pending is one body waiting for the committer: its caller waits on
// done (Append) or is called back with then (AppendThen).
type pending struct {
	body []byte
	err  error
	done chan struct{}
	then func(error)
}

// Open creates dir/log of size bytes, written and synced whole, and starts
// its committer. The log wraps around when full.
func Open(dir string, size int64) (*Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := preallocate(filepath.Join(dir, "log"), size)
	if err != nil {
		return nil, err
	}
	l := &Log{f: f, size: size, queue: make(chan *pending, 1024)}
	go l.commit()
	return l, nil
}

// Append returns once body is written and synced, with the group it was
// committed in.
func (l *Log) Append(body []byte) error {
	p := &pending{body: body, done: make(chan struct{})}
	l.queue <- p
	<-p.done
	return p.err
}

// AppendThen queues body for the next commit and returns at once. The
// committer calls then with the commit's error once that commit wrote and
// synced body: on the committer's goroutine, before the next commit, so
// then must be short. Bodies are committed in the order they are queued,
// by Append and AppendThen alike.
func (l *Log) AppendThen(body []byte, then func(error)) {
	l.queue <- &pending{body: body, then: then}
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
// and releases their callers (or calls them back).
func (l *Log) commit() {
	var (
		group []*pending
		buf   []byte
		off   int64
	)
	for p := range l.queue {
		group = append(group[:0], p)
	drain:
		for {
			select {
			case p := <-l.queue:
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
		if off+int64(len(buf)) > l.size {
			off = 0
		}
		_, err := l.f.WriteAt(buf, off)
		if err == nil {
			err = syscall.Fdatasync(int(l.f.Fd()))
		}
		off += int64(len(buf))
		for _, p := range group {
			if p.then != nil {
				p.then(err)
				continue
			}
			p.err = err
			close(p.done)
		}
	}
}
