package procgroup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The engine and its supervisor daemon talk over a unix socketpair in
// frames: a type byte, a request id (uint32), a payload length (uint32),
// all big-endian, then the payload. No descriptors are passed: the daemon
// gives each program pipes of its own and forwards their output.
const (
	// engine → daemon
	frameStart = 'S' // startRequest
	// daemon → engine
	frameHello  = 'H' // first frame: protocolVersion
	frameStdout = '1' // output bytes
	frameStderr = '2' // output bytes
	frameExit   = 'X' // exitRecord as JSON
	frameFail   = 'F' // the request failed before the program started: a message
)

// protocolVersion is what a daemon says in its hello frame; the engine
// uses only a daemon that says the same (a rulebook-supervise of another
// build may speak another protocol, or none: the per-command supervisor of
// earlier versions rejects the daemon's flags).
const protocolVersion = "rulebook-supervise/2"

// helloTimeout bounds how long the engine waits for a new daemon's hello.
const helloTimeout = 10 * time.Second

// maxFrame bounds a payload: a start request carries the program's stdin
// (the event's JSON), output frames at most a pipe read.
const maxFrame = 256 << 20

const frameHeader = 9

type frame struct {
	typ     byte
	id      uint32
	payload []byte
}

// frameWriter serializes frames onto a connection.
type frameWriter struct {
	mu   sync.Mutex
	conn net.Conn
}

func (w *frameWriter) write(typ byte, id uint32, payload []byte) error {
	var hdr [frameHeader]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:5], id)
	binary.BigEndian.PutUint32(hdr[5:9], uint32(len(payload)))
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(payload) == 0 {
		_, err := w.conn.Write(hdr[:])
		return err
	}
	bufs := net.Buffers{hdr[:], payload}
	_, err := bufs.WriteTo(w.conn)
	return err
}

// readFrame reads the next frame; its payload is a new slice.
func readFrame(r *bufio.Reader) (frame, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	f := frame{typ: hdr[0], id: binary.BigEndian.Uint32(hdr[1:5])}
	n := binary.BigEndian.Uint32(hdr[5:9])
	if n > maxFrame {
		return frame{}, fmt.Errorf("frame of %d bytes", n)
	}
	if n > 0 {
		f.payload = make([]byte, n)
		if _, err := io.ReadFull(r, f.payload); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return frame{}, err
		}
	}
	return f, nil
}

// Output modes of a start request.
const (
	outNone   = 0 // /dev/null
	outStream = 1 // its own stream
	outSame   = 2 // stderr only: the same pipe as stdout
)

// startRequest asks the daemon to start a program.
type startRequest struct {
	Base   string // record path without its suffix (.rec)
	ID     string // the attempt's invocation ID, kept in the record
	Note   string
	Path   string
	Args   []string
	Env    []string
	Dir    string
	Stdout byte // outNone or outStream
	Stderr byte // outNone, outStream or outSame
	Stdin  []byte
	HasIn  bool // Stdin is the program's stdin (else /dev/null)
}

func (q *startRequest) encode() []byte {
	var b []byte
	b = appendString(b, q.Base)
	b = appendString(b, q.ID)
	b = appendString(b, q.Note)
	b = appendString(b, q.Path)
	b = appendStrings(b, q.Args)
	b = appendStrings(b, q.Env)
	b = appendString(b, q.Dir)
	hasIn := byte(0)
	if q.HasIn {
		hasIn = 1
	}
	b = append(b, q.Stdout, q.Stderr, hasIn)
	b = appendString(b, string(q.Stdin))
	return b
}

func (q *startRequest) decode(b []byte) error {
	d := decoder{b: b}
	q.Base = d.string()
	q.ID = d.string()
	q.Note = d.string()
	q.Path = d.string()
	q.Args = d.strings()
	q.Env = d.strings()
	q.Dir = d.string()
	q.Stdout, q.Stderr = d.byte(), d.byte()
	q.HasIn = d.byte() == 1
	q.Stdin = []byte(d.string())
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("start request: trailing bytes")
	}
	return d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return binary.BigEndian.AppendUint32(b, ^uint32(0))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("start request: truncated")

func (d *decoder) uint32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string {
	n := d.uint32()
	if d.err != nil || uint32(len(d.b)) < n {
		d.err = errShort
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// strings decodes a list; nil stays nil (an Env of nil means the
// daemon's environment to os/exec, an empty one none at all).
func (d *decoder) strings() []string {
	n := d.uint32()
	if d.err != nil || n == ^uint32(0) {
		return nil
	}
	if uint32(len(d.b))/4 < n {
		d.err = errShort
		return nil
	}
	ss := make([]string, 0, n)
	for i := uint32(0); i < n && d.err == nil; i++ {
		ss = append(ss, d.string())
	}
	return ss
}
