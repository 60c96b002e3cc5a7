package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

var _ engine.Emitter = (*Producer)(nil)

// KeyFunc returns the partition key of an entry: entries with equal keys
// land in the same partition, in the order they were acknowledged, and meet
// the same rule state.
type KeyFunc func(src engine.SourceRef, e engine.Entry) string

// Producer is the Emitter of sources in bus mode: each entry becomes one
// message on the bus topic, and Emit returns only once every in-sync
// replica has it. Build it with NewProducer; Close it once.
type Producer struct {
	cfg   Config
	key   KeyFunc
	log   zerolog.Logger
	clock engine.Clock
	w     *kafkago.Writer

	mu     sync.RWMutex
	closed bool
}

// NewProducer builds a producer for cfg. It does not connect: the first
// Emit does. key must not be nil.
func NewProducer(cfg Config, key KeyFunc, log zerolog.Logger) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("bus: producer needs a key function")
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	p := &Producer{cfg: cfg, key: key, log: log, clock: cfg.clock()}
	p.w = &kafkago.Writer{
		Addr:  kafkago.TCP(cfg.Brokers...),
		Topic: cfg.Topic,
		// Murmur2 of the key, as the Java client and kafka-go's Hash
		// family do: equal keys always land in one partition.
		Balancer:     &kafkago.Murmur2Balancer{Consistent: true},
		RequiredAcks: kafkago.RequireAll,
		// Emit is bounded by WriteTimeout; within it, a broker that is
		// restarting or electing a leader gets a few tries.
		MaxAttempts:     3,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 500 * time.Millisecond,
		BatchTimeout:    500 * time.Microsecond,
		BatchSize:       1000,
		WriteTimeout:    cfg.WriteTimeout,
		ReadTimeout:     cfg.WriteTimeout,
		Transport:       newTransport(cfg, min(5*time.Second, cfg.WriteTimeout)),
		ErrorLogger:     kafkaconn.Log(log, zerolog.DebugLevel),
	}
	return p, nil
}

// Emit produces one message per entry, keyed by the key function, and
// returns once Kafka acknowledged all of them (acks=all). Every outcome is
// Accepted: duplicates and stale entries are recognised by the consumer.
//
// Errors: ErrClosed after Close; a *engine.BacklogError when the brokers
// are unreachable, slow (nothing acknowledged within WriteTimeout) or
// without a leader or the topic (yet), so an HTTP sender gets 503 with
// Retry-After; ctx's error when ctx ended; any other error for a write that
// no retry can fix (a message over the broker's size limit, an invalid topic
// name, a refused authorization, failed SASL authentication, a broker
// certificate this process does not trust). Entries of one call may land in several partitions, and a
// failed call may have stored some of them: the sender's retry then
// delivers those twice, which the consumer drops when they carry a
// DedupeKey.
func (p *Producer) Emit(ctx context.Context, src engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	// kafka-go may still write a batch for a context that has already
	// ended (its wait races the write), so a caller that gave up would get
	// an acknowledgement: refuse first, as the journal's Emit does.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, engine.ErrClosed
	}
	if len(entries) == 0 {
		return nil, nil
	}
	now := p.clock.Now()
	msgs := make([]kafkago.Message, len(entries))
	for i, e := range entries {
		v, err := encodeMessage(newMessage(src, e, now))
		if err != nil {
			return nil, err
		}
		msgs[i] = kafkago.Message{Key: []byte(p.key(src, e)), Value: v, Time: now}
	}
	wctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()
	if err := p.w.WriteMessages(wctx, msgs...); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if retryable(err) {
			p.log.Warn().Err(err).Str("source", src.Name).Int("entries", len(entries)).
				Dur("retry_after", p.cfg.RetryAfter).Msg("bus write failed, sender told to retry")
			return nil, &engine.BacklogError{RetryAfter: p.cfg.RetryAfter}
		}
		return nil, fmt.Errorf("bus: produce to topic %q: %w", p.cfg.Topic, err)
	}
	out := make([]engine.Outcome, len(entries))
	for i := range out {
		out[i] = engine.Accepted
	}
	return out, nil
}

// Close stops accepting (Emit returns engine.ErrClosed), waits for Emits in
// progress and closes the writer. It is safe to call more than once.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	return p.w.Close()
}

// retryable says whether a failed write may succeed later: everything but
// errors that describe the message or the client's rights.
func retryable(err error) bool {
	var we kafkago.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && !retryable(e) {
				return false
			}
		}
		return true
	}
	// Network errors, timeouts, EOFs from a restarting broker, a missing
	// leader or topic: try later.
	return !kafkaconn.PermanentWriteError(err)
}
