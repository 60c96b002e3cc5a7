package kafka

import (
	"context"
	"maps"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
)

// process turns a batch of one partition's messages into events, forwards
// the undecodable ones to the dead-letter topic, emits the batch and marks
// it done. It retries until it succeeds or ctx ends; it returns false when
// ctx ended first (nothing of the batch is then marked done).
func (p *pipeline) process(ctx context.Context, tp topicPartition, batch []kafkago.Message) bool {
	s := p.s
	entries := make([]engine.Entry, len(batch))
	var dead []kafkago.Message
	now := s.clock.Now()
	for i, m := range batch {
		d := decodeValue(s.cfg.Format, m.Value)
		var body map[string]any
		if d.reason != "" {
			s.log.Warn().Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).
				Str("reason", d.reason).Bool("dead_lettered", p.dlq != nil).Msg("kafka message rejected")
			s.rejected.Add(1)
			body = rejectedBody(d.reason, m.Value)
			if p.dlq != nil {
				dead = append(dead, deadLetter(m, d.reason, s.ref.Name))
			}
		} else {
			body = map[string]any{"body": d.body}
		}
		ev := engine.NewEvent(body, s.ref.Name, s.ref.Type, now)
		km := kafkaMeta(m)
		meta := engine.Meta(ev)
		meta["kafka"] = km
		// meta.headers too, as Event-Driven Ansible's kafka source has them.
		meta[engine.MetaHeaders] = maps.Clone(km["headers"].(map[string]any))
		entries[i] = engine.Entry{Event: ev}
		if s.cfg.Dedupe {
			entries[i].DedupeKey = dedupeKey(m)
		}
	}
	if len(dead) > 0 {
		ok := s.retry(ctx, "dead letter", func() error { return p.dlq.WriteMessages(ctx, dead...) })
		if !ok {
			return false
		}
		s.deadLettered.Add(int64(len(dead)))
	}
	// A partition can be read far faster than the engine evaluates: stay
	// within the journal's window rather than fill its backlog.
	if engine.Pace(ctx, p.out, len(entries)) != nil {
		return false
	}
	var outcomes []engine.Outcome
	ok := s.retry(ctx, "emit", func() error {
		var err error
		outcomes, err = p.out.Emit(ctx, s.ref, entries)
		return err
	})
	if !ok {
		return false
	}
	for i := range entries {
		if i < len(outcomes) && outcomes[i] == engine.Duplicate {
			s.duplicates.Add(1)
		} else {
			s.emitted.Add(1)
		}
	}
	offsets := make([]int64, len(batch))
	for i, m := range batch {
		offsets[i] = m.Offset
	}
	s.tracker.done(tp, offsets...)
	return true
}

// retry calls fn until it succeeds or ctx ends, backing off between
// attempts (at least a BacklogError's RetryAfter, at most max_retry_backoff).
// It reports whether fn succeeded.
func (s *Source) retry(ctx context.Context, what string, fn func() error) bool {
	backoff := s.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait := backoff
		if be, ok := engine.IsBacklog(err); ok && be.RetryAfter > wait {
			wait = min(be.RetryAfter, s.cfg.MaxRetryBackoff)
		}
		s.retries.Add(1)
		if attempt == 1 || attempt%20 == 0 {
			s.log.Warn().Err(err).Str("step", what).Int("attempt", attempt).Dur("retry_in", wait).Msg("kafka delivery failed, retrying")
		}
		if !sleepCtx(ctx, wait) {
			return false
		}
		backoff = min(backoff*2, s.cfg.MaxRetryBackoff)
	}
}

// commitLoop commits durable offsets every commit_interval and logs the lag
// every lag_log_interval until ctx ends.
func (s *Source) commitLoop(ctx context.Context) {
	commit := time.NewTicker(s.cfg.CommitInterval)
	defer commit.Stop()
	lag := time.NewTicker(s.cfg.LagLogInterval)
	defer lag.Stop()
	var lastLag, lastFetched int64 = -1, -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-commit.C:
			s.commit(ctx)
			s.sampleReader()
		case <-lag.C:
			st := s.Stats()
			var total int64
			for _, p := range st.Partitions {
				total += p.Lag
			}
			// An idle, caught-up consumer logs at debug, not every interval
			// at info.
			ev := s.log.Info()
			if total == 0 && total == lastLag && st.Fetched == lastFetched {
				ev = s.log.Debug()
			}
			lastLag, lastFetched = total, st.Fetched
			ev.Int64("lag", total).Int64("reader_lag", st.Lag).Int("in_flight", st.InFlight).
				Int64("fetched", st.Fetched).Int64("emitted", st.Emitted).Int64("rejected", st.Rejected).
				Int64("rebalances", st.Rebalances).Msg("kafka consumer lag")
		}
	}
}

// sampleReader folds kafka-go's reader stats (whose counters reset on every
// read) into the source's.
func (s *Source) sampleReader() {
	s.mu.Lock()
	r := s.reader
	s.mu.Unlock()
	if r == nil {
		return
	}
	rs := r.Stats()
	s.rebalances.Add(rs.Rebalances)
	s.readerLag.Store(rs.Lag)
}

// commit commits, for each partition, the offset after the last message
// below which everything fetched is durable. A failed commit is retried on
// the next tick: nothing is lost, at worst replayed and deduplicated.
func (s *Source) commit(ctx context.Context) {
	offs := s.tracker.committable()
	if len(offs) == 0 {
		return
	}
	s.mu.Lock()
	r := s.reader
	s.mu.Unlock()
	if r == nil {
		return
	}
	msgs := make([]kafkago.Message, 0, len(offs))
	for tp, off := range offs {
		msgs = append(msgs, kafkago.Message{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// CommitMessages commits Offset+1 for each partition (the next message
	// to read), which is what the group resumes from.
	if err := r.CommitMessages(cctx, msgs...); err != nil {
		if ctx.Err() == nil {
			s.commitErrors.Add(1)
			s.log.Warn().Err(err).Int("partitions", len(msgs)).Msg("kafka offset commit failed, will retry")
		}
		return
	}
	for tp, off := range offs {
		s.tracker.committed(tp, off)
	}
	s.commits.Add(1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
