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
	// records are compacted after the retention period. Done is durable before
	// it returns.
	Done(ctx context.Context, seq uint64) error
	// LastDone returns the Seq of the last record marked done: a restarted
	// engine reads from there.
	LastDone(ctx context.Context) (uint64, error)
	// Backlog is the number of accepted records not yet marked done.
	Backlog() int
	// Close stops accepting (Emit returns ErrClosed) and releases the store.
	Close() error
}
