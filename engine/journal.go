package engine

import (
	"context"
	"time"
)

// Record is one accepted event in the journal.
type Record struct {
	// Seq is the journal position: strictly increasing, never reused.
	Seq uint64
	// Stream names the log Seq counts in when there are several (a Kafka
	// partition, "topic/3"); empty for the embedded journal. Firing ids are
	// derived from Stream and Seq.
	Stream string
	Source SourceRef
	Event  Event
	// Accepted is when the journal made the event durable.
	Accepted time.Time
	// Size is how many bytes the journal keeps the record in (its source
	// and encoded event); 0 when unknown. It lets holders of records, who
	// see only the decoded event, bound the memory they keep.
	Size int
	// Redelivered says the record may have been processed before: a crash,
	// a restart or a partition move came between its first delivery and
	// its being marked done. Firings of a redelivered record may already be
	// stored, so their IDs are looked up (Firing.Redelivered); firings of a
	// record delivered for the first time are new by construction. A
	// Journal must set it on every record it cannot prove is delivered for
	// the first time.
	Redelivered bool
}

// Journal is the durable, ordered log between sources and the engine. The
// embedded journal is the default; a Kafka-backed one can replace it. Emit
// (from Emitter) appends; the engine reads in order and marks what it has
// processed, and on restart Read returns every record not yet marked done.
type Journal interface {
	Emitter
	// Read blocks until at least one record with Seq > after exists (or ctx
	// ends) and returns up to max of them in order.
	Read(ctx context.Context, after uint64, max int) ([]Record, error)
	// Done marks every record up to and including seq as processed. Processed
	// records are compacted after the retention period. Done need not be
	// durable when it returns: a crash may forget it, and then the records
	// are read again with Redelivered set (the firings they caused are
	// stored under stable IDs, so nothing is stored or run twice).
	Done(ctx context.Context, seq uint64) error
	// LastDone returns the Seq of the last record marked done: a restarted
	// engine reads from there.
	LastDone(ctx context.Context) (uint64, error)
	// Backlog is the number of accepted records not yet marked done.
	Backlog() int
	// Close stops accepting (Emit returns ErrClosed) and releases the store.
	Close() error
}

// HistoryJournal is a Journal that keeps processed records for a while (the
// embedded journal's retention) and can find them by time, so that a
// restarted engine rebuilds its rule state from them (Runner.Lookback).
type HistoryJournal interface {
	Journal
	// SeqSince returns the Seq of the first record still kept that was
	// accepted at or after t; a Seq beyond the last record when there is
	// none. Read(ctx, SeqSince(t)-1, ...) then returns it first. Accepted
	// times may be taken to grow with Seq; after the clock stepped back
	// the range may include records accepted before t.
	SeqSince(ctx context.Context, t time.Time) (uint64, error)
}
