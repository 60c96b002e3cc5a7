package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// itemID gives the meta.uuid of an event or fact the engine creates
// (post_event, set_fact, journaled feedback) without one. It derives from
// the firing that creates it, or from the record, and its rank, so the
// replay after a restart recreates the same IDs, and timers over partial
// matches of such items fire under the same firing IDs as before. Items of
// Inject, which has neither, get random IDs.
func (e *Engine) itemID() string {
	e.created++
	switch {
	case e.queuing.id != "":
		return derivedID(fmt.Sprintf("item\x00%s\x00%d", e.queuing.id, e.created))
	case e.rec.Seq != 0:
		return derivedID(fmt.Sprintf("item\x00%s\x00%d\x00%d", e.rec.Stream, e.rec.Seq, e.created))
	}
	return NewID()
}

// firingID is derived from the journal position and the match, so the same
// record processed twice yields the same firing and invocation IDs. A
// timer's firing is derived from the timer: its rule, deadline and the
// events it holds, so a timer that fires again after a restart (its state
// rebuilt by Replay) yields the same ID whether Tick or a record found it
// due. A firing caused by another firing's set_fact or post_event derives
// its ID from that firing's, so a timer's cascade, too, gets the same IDs
// whether Tick or a record found the timer due, and does not shift the
// record's own firing IDs. Other firings without a journal position
// (Inject) get a random ID when there is a Dispatcher.
func (e *Engine) firingID(s *rsState, r *Rule, at time.Time, eventIDs []string, timer bool) string {
	var key string
	switch {
	case timer:
		// Not counted in e.fired: a record's firing IDs must not depend on
		// whether a timer fell due in its expire or in a Tick before it.
		key = fmt.Sprintf("timer\x00%s\x00%s\x00%s\x00%d\x00%s", e.opts.Stream, s.rs.Name, r.Name, at.UnixNano(), strings.Join(eventIDs, "\x00"))
	case e.evaluating.id != "":
		if e.causeFired == nil {
			e.causeFired = map[string]int{}
		}
		e.causeFired[e.evaluating.id]++
		key = fmt.Sprintf("caused\x00%s\x00%s\x00%s\x00%d", e.evaluating.id, s.rs.Name, r.Name, e.causeFired[e.evaluating.id])
	case e.rec.Seq == 0:
		e.fired++
		key = fmt.Sprintf("t\x00%d\x00%s\x00%s\x00%d", at.UnixNano(), s.rs.Name, r.Name, e.fired)
		if e.opts.Dispatcher != nil {
			// Injected firings have no journal position; keep them unique
			// across restarts.
			key += "\x00" + NewID()
		}
	default:
		e.fired++
		key = fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%d", e.rec.Stream, e.rec.Seq, s.rs.Name, r.Name, e.fired)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
