//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rulebook-dev/rulebook/bench/internal/groupcommit"
	"github.com/rulebook-dev/rulebook/engine"
)

// superviseArg, as the first argument, makes forkhook the supervisor of
// -promises: the server executes itself so, its end of a socketpair on
// descriptor 3. Not a flag: no user passes it.
const superviseArg = "-supervise-promises"

// The slots file DIR/slots holds one slot of slotSize bytes per command
// running at once, reused: the pid record (a JSON line padded with
// spaces) in its first pidPart bytes, the exit record after.
const (
	slotSize = 256
	pidPart  = 160
)

// freeRecord marks a slot free: it holds no attempt any more.
var freeRecord = padLine([]byte(`{"free":true}`), pidPart)

// padLine pads b with spaces to n-1 bytes and ends it with a newline.
func padLine(b []byte, n int) []byte {
	for len(b) < n-1 {
		b = append(b, ' ')
	}
	return append(b, '\n')
}

// promises is the server's side of -promises: the log it records the
// invocations and results in, the slots file, and its connection to the
// supervisor, whose answers wake the request waiting for them.
type promises struct {
	log    *groupcommit.Log
	logger *log.Logger
	slots  *os.File
	conn   net.Conn
	wmu    sync.Mutex // one frame at a time on conn

	mu      sync.Mutex
	waiting map[uint64]chan result
	free    []uint32
	nslots  uint32
}

// result is how a program ended, as the supervisor tells it.
type result struct {
	code   int
	output []byte
}

// resultRecord is what is logged once the program ended, not waited for.
type resultRecord struct {
	ID       string `json:"id"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
}

// startPromises opens DIR/slots and starts the supervisor.
func startPromises(commitLog *groupcommit.Log, dir string, logger *log.Logger) (*promises, error) {
	slots, err := os.OpenFile(filepath.Join(dir, "slots"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "supervisor"), os.NewFile(uintptr(fds[1]), "server")
	conn, err := net.FileConn(ours)
	_ = ours.Close()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, superviseArg, slots.Name())
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	err = cmd.Start()
	_ = theirs.Close()
	if err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait() }() // reaped should it end first; read then fails
	p := &promises{log: commitLog, logger: logger, slots: slots, conn: conn, waiting: map[uint64]chan result{}}
	go p.read()
	return p, nil
}

// read hands the supervisor's answers to the requests waiting for them.
func (p *promises) read() {
	r := bufio.NewReaderSize(p.conn, 64<<10)
	for {
		id, payload, err := readFrame(r)
		if err != nil {
			log.Fatalf("forkhook: the supervisor is gone: %v", err)
		}
		p.mu.Lock()
		ch := p.waiting[id]
		delete(p.waiting, id)
		p.mu.Unlock()
		ch <- result{code: int(int32(binary.BigEndian.Uint32(payload))), output: payload[4:]}
	}
}

// request is what the event's meta takes of its request.
type request struct {
	header               http.Header
	path, method, remote string
}

// run keeps the promises for one accepted event: the invocation synced,
// the program started by the supervisor in a slot, its result logged
// without waiting, the slot freed once a commit covered the result.
func (p *promises) run(id uint64, req request, payload map[string]any, received time.Time, prog, out, n string) {
	argv := []string{prog, out, n}
	headers := make(map[string]any, len(req.header))
	for k, v := range req.header {
		headers[k] = v[0]
	}
	event := engine.Event{"payload": payload, "meta": map[string]any{
		"headers": headers, "query": map[string]any{}, "endpoint": req.path, "method": req.method,
		"remote_addr": req.remote, "received_at": received, "uuid": fmt.Sprintf("%016x-%012d", received.UnixNano(), id),
		"source": map[string]any{"name": "bench", "type": "webhook"},
	}}
	invID := fmt.Sprintf("%d.0", id)
	// What Rulebook records before the program starts: the invocation's
	// queued state, the event that fired it under event and events.
	inv, err := json.Marshal(engine.InvocationState{Invocation: &engine.Invocation{
		ID: invID, FiringID: fmt.Sprint(id), Action: "run_command", Ruleset: "actions benchmark",
		Rule: "every request runs the program", Args: map[string]any{"argv": argv},
		Event: event, Events: map[string]engine.Event{"m_0": event}, HostPattern: "all", Created: received,
	}, Status: engine.StatusQueued, Updated: received})
	if err == nil {
		err = p.log.Append(inv)
	}
	if err != nil {
		p.logger.Printf("[%d] error recording the invocation: %+v", id, err)
		return
	}
	slot := p.take()
	p.logger.Printf("[%d] executing %s with arguments %q", id, prog, argv)
	res := p.start(id, slot, argv)
	p.logger.Printf("[%d] command output: %s", id, res.output)
	rec, err := json.Marshal(resultRecord{ID: invID, ExitCode: res.code, Output: string(res.output)})
	if err != nil {
		p.logger.Printf("[%d] error encoding the result: %+v", id, err)
		return
	}
	p.log.AppendThen(rec, func(err error) {
		if err == nil { // else the slot stays taken: its result is not durable
			p.release(slot)
		}
	})
	p.logger.Printf("[%d] finished handling", id)
}

// take returns a free slot, a new one when none is.
func (p *promises) take() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := len(p.free); k > 0 {
		s := p.free[k-1]
		p.free = p.free[:k-1]
		return s
	}
	p.nslots++
	return p.nslots - 1
}

// release marks slot free with one write, then gives it back.
func (p *promises) release(slot uint32) {
	if _, err := p.slots.WriteAt(freeRecord, int64(slot)*slotSize); err != nil {
		p.logger.Printf("error freeing slot %d: %+v", slot, err)
		return
	}
	p.mu.Lock()
	p.free = append(p.free, slot)
	p.mu.Unlock()
}

// start asks the supervisor to run argv in slot and waits for its result.
func (p *promises) start(id uint64, slot uint32, argv []string) result {
	ch := make(chan result, 1)
	p.mu.Lock()
	p.waiting[id] = ch
	p.mu.Unlock()
	q := binary.BigEndian.AppendUint32(nil, slot)
	q = append(q, strings.Join(argv, "\x00")...)
	p.wmu.Lock()
	err := writeFrame(p.conn, id, q)
	p.wmu.Unlock()
	if err != nil {
		log.Fatalf("forkhook: the supervisor is gone: %v", err)
	}
	return <-ch
}

// A frame is its payload's length (4 bytes), the request's id (8), then
// the payload: a start request's is the slot (4) and the argv joined
// with NULs; an answer's is the exit code (4, -1 when the program did not
// start) and the combined output (or why it did not start).
func writeFrame(w io.Writer, id uint64, payload []byte) error {
	b := make([]byte, 12, 12+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint64(b[4:], id)
	_, err := w.Write(append(b, payload...))
	return err
}

func readFrame(r *bufio.Reader) (uint64, []byte, error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	payload := make([]byte, binary.BigEndian.Uint32(h[:]))
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint64(h[4:]), payload, nil
}

// supervise is the supervisor: it starts every program the server asks
// for, each in a goroutine of its own, recorded in its slot. Once the
// server's end closes (the server ended or crashed), it waits for the
// programs still running, records how they end, and exits: their
// records are in the slots file for a later server.
func supervise(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "forkhook: the supervisor takes the slots file; the server starts it")
		return 2
	}
	syscall.CloseOnExec(3) // the programs must not hold the server's socket
	f := os.NewFile(3, "server")
	conn, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "forkhook: descriptor 3 is not the server's socket: %v\n", err)
		return 2
	}
	slots, err := os.OpenFile(args[0], os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "forkhook: %v\n", err)
		return 2
	}
	s := &supervisor{conn: conn, slots: slots, pid: os.Getpid()}
	r := bufio.NewReaderSize(conn, 64<<10)
	var wg sync.WaitGroup
	for {
		id, q, err := readFrame(r)
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.launch(id, q)
		}()
	}
	wg.Wait()
	return 0
}

type supervisor struct {
	conn  net.Conn
	wmu   sync.Mutex
	slots *os.File
	pid   int
}

// launch writes the pid record in the slot (written, not synced: only a
// kernel crash loses it, and that ends the program it names too), runs
// the program with its combined output captured, writes the exit record
// after the pid record and answers the server.
func (s *supervisor) launch(id uint64, q []byte) {
	off := int64(binary.BigEndian.Uint32(q)) * slotSize
	argv := strings.Split(string(q[4:]), "\x00")
	rec := fmt.Appendf(make([]byte, 0, slotSize), `{"id":"%d.0","supervisor":%d,"started":%d}`, id, s.pid, time.Now().UnixNano())
	rec = padLine(rec, pidPart)
	for len(rec) < slotSize {
		rec = append(rec, ' ') // blanks the exit record of the slot's last attempt
	}
	code := -1
	var out []byte
	if _, err := s.slots.WriteAt(rec, off); err != nil {
		out = []byte("write pid record: " + err.Error())
	} else {
		cmd := exec.Command(argv[0], argv[1:]...)
		out, err = cmd.CombinedOutput()
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		} else {
			out = append(out, err.Error()...)
		}
		if _, err := s.slots.WriteAt(fmt.Appendf(nil, `{"exit_code":%d}`, code), off+pidPart); err != nil {
			fmt.Fprintf(os.Stderr, "forkhook: write exit record: %v\n", err)
		}
	}
	a := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(out)), uint32(int32(code)))
	s.wmu.Lock()
	_ = writeFrame(s.conn, id, append(a, out...)) // fails once the server is gone: the slot keeps the exit
	s.wmu.Unlock()
}
