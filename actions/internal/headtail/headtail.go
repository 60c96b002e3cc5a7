// Package headtail keeps a bounded sample of a stream: the first and the
// last bytes written, and a count of what was dropped between them, so that
// a chatty process cannot fill the audit trail but its start and its end
// stay readable.
package headtail

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// DefaultLimit is how many bytes a Buffer keeps when New is given none.
const DefaultLimit = 64 << 10

// Buffer is an io.Writer that keeps the first and the last half of at most
// limit bytes of what is written to it: the head shows what the process set
// out to do, the tail how it ended. It is safe for concurrent writers (stdout
// and stderr copied by two goroutines).
type Buffer struct {
	mu      sync.Mutex
	headCap int
	tailCap int
	head    []byte
	tail    []byte // the last tailCap bytes after head filled, with slack
	total   int64
}

// New returns a Buffer that keeps at most limit bytes (DefaultLimit when
// limit is not positive): the first half of them from the head, the rest
// from the tail.
func New(limit int) *Buffer {
	if limit <= 0 {
		limit = DefaultLimit
	}
	h := limit / 2
	return &Buffer{headCap: h, tailCap: limit - h}
}

// Write keeps what fits of p and counts all of it; it never fails.
func (c *Buffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	if room := c.headCap - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 || c.tailCap == 0 {
		return n, nil
	}
	if len(p) >= c.tailCap {
		c.tail = append(c.tail[:0], p[len(p)-c.tailCap:]...)
		return n, nil
	}
	c.tail = append(c.tail, p...)
	if len(c.tail) > 2*c.tailCap {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-c.tailCap:]...)
	}
	return n, nil
}

// Truncated reports how many bytes were dropped from the middle.
func (c *Buffer) Truncated() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.truncated()
}

func (c *Buffer) truncated() int64 {
	kept := int64(len(c.head)) + int64(min(len(c.tail), c.tailCap))
	return c.total - kept
}

// Total is how many bytes were written.
func (c *Buffer) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// String returns the kept output; when bytes were dropped, a marker line
// between head and tail says how many.
func (c *Buffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	tail := c.tail
	if len(tail) > c.tailCap {
		tail = tail[len(tail)-c.tailCap:]
	}
	dropped := c.truncated()
	if dropped == 0 {
		return string(c.head) + string(tail)
	}
	head := TrimCutRuneEnd(c.head)
	tail = TrimCutRuneStart(tail)
	return fmt.Sprintf("%s\n[... output truncated: %d bytes omitted ...]\n%s", head, dropped, tail)
}

// TrimCutRuneEnd drops a UTF-8 sequence cut short at the end of b.
func TrimCutRuneEnd(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// TrimCutRuneStart drops the continuation bytes at the start of b that
// belong to a sequence cut off before it.
func TrimCutRuneStart(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && i < len(b); i++ {
		if utf8.RuneStart(b[i]) {
			return b[i:]
		}
	}
	return b
}
