package journal

import (
	"bytes"
	"encoding/json"
	"sync"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// An invocation's stored state is the JSON of its engine.InvocationState:
// the invocation (arguments, matched events: most of the bytes) and what
// changes as it runs (status, attempts, times, approval). The Invocation of
// a stored state is never changed, so recording a new state of an
// invocation the dispatcher was given or read back need not encode it
// again: the store keeps the JSON it wrote at submit or read (rawCache)
// and writes it back with the new rest. The profile of parallel commands at 800/s put the two encodings of
// each run's states (running, then its result) at a tenth of the engine's
// CPU, nearly all of it the invocation.

// stateRest is engine.InvocationState without its invocation, with the
// same JSON names and options (TestStateRestMatchesInvocationState).
type stateRest struct {
	Status      engine.InvocationStatus `json:"status"`
	Attempts    []engine.Attempt        `json:"attempts,omitempty"`
	NextAttempt time.Time               `json:"next_attempt,omitempty"`
	Updated     time.Time               `json:"updated"`
	Approval    *engine.Approval        `json:"approval,omitempty"`
}

// statePrefix is how json.Marshal of an InvocationState begins: its first
// field is the invocation.
const statePrefix = `{"invocation":`

// encodeState returns the JSON of st: json.Marshal(st), with the
// invocation's part copied from inv when it is not nil (the JSON the same
// invocation was read from).
func encodeState(st *engine.InvocationState, inv []byte) ([]byte, error) {
	if inv == nil {
		return json.Marshal(st)
	}
	rest, err := json.Marshal(stateRest{Status: st.Status, Attempts: st.Attempts, NextAttempt: st.NextAttempt, Updated: st.Updated, Approval: st.Approval})
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(statePrefix)+len(inv)+len(rest))
	b = append(b, statePrefix...)
	b = append(b, inv...)
	b = append(b, ',')
	return append(b, rest[1:]...), nil
}

// invocationJSON returns the invocation's JSON in the stored state v (a
// part of v), or nil when v does not begin as encodeState writes it (an
// invocation of null, or not a state at all).
func invocationJSON(v []byte) []byte {
	if !bytes.HasPrefix(v, []byte(statePrefix)) || len(v) == len(statePrefix) || v[len(statePrefix)] != '{' {
		return nil
	}
	end := objectEnd(v, len(statePrefix))
	if end < 0 || end >= len(v) || v[end] != ',' {
		return nil
	}
	return v[len(statePrefix):end:end]
}

// objectEnd returns the index just past the JSON object or array that
// begins at v[i], or -1 when v ends first. v is valid JSON (a stored
// state), so only strings and nesting need tracking.
func objectEnd(v []byte, i int) int {
	depth := 0
	for ; i < len(v); i++ {
		switch v[i] {
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// rawCache's bounds: far more entries than the invocations running at once
// (the dispatcher's concurrency and one per sequential ruleset), and a few
// MiB, since an entry also keeps its Invocation from the garbage
// collector. An invocation of more than rawEntryMax bytes (large events) is
// not kept: encoding it again costs little next to its size. Entries of
// invocations that never reach a final state in this process (stopped,
// waiting for an approval read back later under a new pointer) are
// dropped with the rest when the cache fills.
const (
	rawCacheMax   = 1024
	rawCacheBytes = 4 << 20
	rawEntryMax   = 64 << 10
)

// rawInvocation is what the store read of an invocation: its JSON and
// its reference (which its ID maps to, for ever).
type rawInvocation struct {
	json []byte
	ref  []byte
}

// rawCache maps the *engine.Invocation of a state Invocation returned to
// what was read with it. Keyed by the pointer, so that a state carrying
// any other Invocation value (a copy, one built anew) is encoded whole.
type rawCache struct {
	mu    sync.Mutex
	m     map[*engine.Invocation]rawInvocation
	bytes int
}

func (c *rawCache) put(inv *engine.Invocation, r rawInvocation) {
	if len(r.json) > rawEntryMax {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[inv]; ok {
		c.bytes -= len(old.json)
	}
	if c.m == nil || len(c.m) >= rawCacheMax || c.bytes+len(r.json) > rawCacheBytes {
		c.m = make(map[*engine.Invocation]rawInvocation)
		c.bytes = 0
	}
	c.m[inv] = r
	c.bytes += len(r.json)
}

func (c *rawCache) get(inv *engine.Invocation) (rawInvocation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[inv]
	return r, ok
}

func (c *rawCache) drop(inv *engine.Invocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[inv]; ok {
		c.bytes -= len(old.json)
		delete(c.m, inv)
	}
}

func (c *rawCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
