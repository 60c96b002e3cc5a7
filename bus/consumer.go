package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

// PartitionHandler owns the rule state of one partition while this process
// is assigned it: in practice one engine.Engine. The consumer calls it from
// one goroutine at a time.
type PartitionHandler interface {
	// Replay rebuilds state from a record another owner (or an earlier
	// incarnation of this process) already processed: nothing may leave
	// the process (engine.Engine.Replay). An error stops the partition,
	// which is then opened again after a backoff.
	Replay(ctx context.Context, rec engine.Record) error
	// Process evaluates a live record. The record's offset is committed
	// only after Process returned nil; an error (a firing that could not be
	// submitted) stops the partition without committing, and the record is
	// processed again by a fresh handler after a backoff, or by the next
	// owner.
	Process(ctx context.Context, rec engine.Record) error
	// Close releases the handler: the partition was revoked, its handler
	// failed, or Run ended.
	Close()
}

// Consumer defaults.
const (
	DefaultLookback       = engine.DefaultEventsTTL
	DefaultDedupeWindow   = 24 * time.Hour
	DefaultCommitInterval = time.Second
	DefaultReplayLimit    = 10000
)

// ConsumerConfig configures a Consumer. Zero durations take the defaults.
type ConsumerConfig struct {
	Config
	// Lookback is how much history is replayed when a partition is
	// assigned: records accepted within Lookback before now (Config.Clock)
	// and before the committed offset. Zero: DefaultLookback; negative:
	// nothing is replayed.
	Lookback time.Duration
	// DedupeWindow is the window of entries that carry none. Zero:
	// DefaultDedupeWindow.
	DedupeWindow time.Duration
	// DedupeLookback, when longer than Lookback, is how much history is
	// read on assignment to rebuild the dedupe keys and order timestamps
	// only (records older than Lookback are not replayed into the
	// handler). Set it to the dedupe window to recognise repeats across a
	// handover, at the cost of reading that much history. Zero: Lookback.
	DedupeLookback time.Duration
	// ReplayLimit bounds the replay in records when the broker cannot find
	// an offset by timestamp. Zero: DefaultReplayLimit.
	ReplayLimit int
	Log         zerolog.Logger

	// CommitInterval is how often processed offsets are committed (and
	// always when a partition is revoked or Run ends). Default 1s.
	CommitInterval time.Duration
	// Group timings, as kafka-go's ConsumerGroupConfig (defaults 10s, 30s,
	// 3s, 2s); tests lower them.
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	JoinGroupBackoff  time.Duration
	// PartitionWatchInterval is how often the topic's partition count is
	// checked (a change rebalances). Default 5s.
	PartitionWatchInterval time.Duration
	// MaxWait bounds one fetch's wait for new records. Default 500ms.
	MaxWait time.Duration
	// RetryBackoff is the pause before a failed partition is opened again,
	// doubled for each failure in a row (up to 30s). Default 1s.
	RetryBackoff time.Duration
}

func (cc *ConsumerConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cc.Lookback, DefaultLookback)
	def(&cc.DedupeWindow, DefaultDedupeWindow)
	def(&cc.CommitInterval, DefaultCommitInterval)
	def(&cc.SessionTimeout, 10*time.Second)
	def(&cc.RebalanceTimeout, 30*time.Second)
	def(&cc.HeartbeatInterval, 3*time.Second)
	def(&cc.JoinGroupBackoff, 2*time.Second)
	def(&cc.PartitionWatchInterval, 5*time.Second)
	def(&cc.MaxWait, 500*time.Millisecond)
	def(&cc.RetryBackoff, time.Second)
	if cc.ReplayLimit <= 0 {
		cc.ReplayLimit = DefaultReplayLimit
	}
}

// Consumer consumes the bus topic in a consumer group and drives one
// PartitionHandler per assigned partition. Build it with NewConsumer; Run it
// once.
type Consumer struct {
	cc     ConsumerConfig
	log    zerolog.Logger
	clock  engine.Clock
	dialer *kafkago.Dialer

	running atomic.Bool
	mu      sync.Mutex
	parts   map[int]*partition
	gen     int32
}

// partition is one partition's state. handler, filter and healthy belong
// to the goroutine running the partition while it is assigned, and to Run's
// goroutine between generations; done is written by that goroutine only,
// and the counters are read by Stats and the committer.
type partition struct {
	id      int
	handler PartitionHandler
	filter  *filter
	healthy bool

	owned, replaying atomic.Bool
	// done is the offset below which every record was processed (or
	// skipped) by an owner this process knows of: what the committer
	// commits; -1: unknown, nothing to commit.
	done                                    atomic.Int64
	committed, hwm                          atomic.Int64
	processed, replayed, duplicates, stale  atomic.Int64
	invalid, failures, replays, commitFails atomic.Int64
}

// NewConsumer builds a consumer. It does not connect: Run does.
func NewConsumer(cc ConsumerConfig) (*Consumer, error) {
	if err := cc.Config.Validate(); err != nil {
		return nil, err
	}
	if cc.Lookback < 0 {
		cc.Lookback = -1
	}
	cc.defaults()
	if cc.DedupeWindow < 0 {
		return nil, errors.New("bus: negative dedupe window")
	}
	if cc.HeartbeatInterval >= cc.SessionTimeout {
		return nil, fmt.Errorf("bus: heartbeat interval %s must be shorter than the session timeout %s", cc.HeartbeatInterval, cc.SessionTimeout)
	}
	return &Consumer{
		cc:     cc,
		log:    cc.Log.With().Str("component", "bus").Str("topic", cc.Topic).Str("group", cc.Group).Logger(),
		clock:  cc.Config.clock(),
		dialer: newDialer(cc.Config),
		parts:  map[int]*partition{},
	}, nil
}

// Run joins the group and consumes until ctx ends; then it commits what was
// processed, leaves the group, closes every handler and returns nil. open is
// called for each partition assigned to this process (and again after a
// handler failed) and must return a fresh handler with empty state. Run
// returns an error only when it cannot start: when the brokers refuse its
// TLS or SASL (or it refuses their certificate) before it first joined the
// group. Unreachable brokers are retried.
func (c *Consumer) Run(ctx context.Context, open func(partition int) (PartitionHandler, error)) error {
	if open == nil {
		return errors.New("bus: Run needs an open function")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("bus: Run called twice")
	}
	log := c.log
	group, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                     c.cc.Group,
		Brokers:                c.cc.Brokers,
		Dialer:                 c.dialer,
		Topics:                 []string{c.cc.Topic},
		HeartbeatInterval:      c.cc.HeartbeatInterval,
		SessionTimeout:         c.cc.SessionTimeout,
		RebalanceTimeout:       c.cc.RebalanceTimeout,
		JoinGroupBackoff:       c.cc.JoinGroupBackoff,
		PartitionWatchInterval: c.cc.PartitionWatchInterval,
		WatchPartitionChanges:  true,
		StartOffset:            kafkago.FirstOffset,
		Logger:                 kafkaconn.Log(log, zerolog.DebugLevel),
		ErrorLogger:            kafkaconn.Log(log, zerolog.WarnLevel),
	})
	if err != nil {
		return fmt.Errorf("bus: consumer group: %w", err)
	}
	// Closing the group ends the current generation (its goroutines make
	// their final commit) and leaves the group.
	stop := context.AfterFunc(ctx, func() { _ = group.Close() })
	defer stop()
	log.Info().Strs("brokers", c.cc.Brokers).Msg("bus consumer joining")
	joined := false
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafkago.ErrGroupClosed) {
				break
			}
			if kafkaconn.SecurityError(err) {
				if !joined {
					// Wrong credentials or an untrusted broker: no retry
					// can fix that, so Run cannot start.
					_ = group.Close()
					return fmt.Errorf("bus: consumer group %q: brokers %q: %w", c.cc.Group, c.cc.Brokers, err)
				}
				log.Error().Err(err).Msg("bus consumer group: brokers refused this process's tls or sasl, retrying")
				continue
			}
			log.Warn().Err(err).Msg("bus consumer group: joining failed, retrying")
			continue
		}
		joined = true
		c.startGeneration(ctx, gen, open)
	}
	_ = group.Close()
	c.mu.Lock()
	parts := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		parts = append(parts, p)
	}
	c.mu.Unlock()
	for _, p := range parts {
		p.owned.Store(false)
		if p.handler != nil {
			p.handler.Close()
			p.handler, p.filter = nil, nil
		}
	}
	log.Info().Msg("bus consumer stopped")
	return nil
}

// startGeneration closes the handlers of partitions this process lost and
// starts one goroutine per assigned partition, plus the committer. kafka-go
// returns the next generation only after every goroutine of this one ended.
func (c *Consumer) startGeneration(ctx context.Context, gen *kafkago.Generation, open func(int) (PartitionHandler, error)) {
	assigned := map[int]int64{}
	for _, a := range gen.Assignments[c.cc.Topic] {
		assigned[a.ID] = a.Offset
	}
	ids := make([]int, 0, len(assigned))
	for id := range assigned {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	c.mu.Lock()
	c.gen = gen.ID
	var lost []int
	for id, p := range c.parts {
		if _, ok := assigned[id]; !ok && p.owned.Load() {
			p.owned.Store(false)
			lost = append(lost, id)
			if p.handler != nil {
				p.handler.Close()
				p.handler, p.filter = nil, nil
			}
		}
	}
	parts := make([]*partition, 0, len(ids))
	for _, id := range ids {
		p := c.parts[id]
		if p == nil {
			p = &partition{id: id}
			p.done.Store(-1)
			p.committed.Store(-1)
			p.hwm.Store(-1)
			c.parts[id] = p
		}
		p.owned.Store(true)
		parts = append(parts, p)
	}
	c.mu.Unlock()
	sort.Ints(lost)
	c.log.Info().Int32("generation", gen.ID).Str("member_id", gen.MemberID).Ints("partitions", ids).Ints("revoked", lost).
		Msg("bus partitions assigned")

	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		offset := assigned[p.id]
		gen.Start(func(gctx context.Context) {
			defer wg.Done()
			if gctx.Err() != nil {
				// The generation ended before this started: kafka-go does
				// not wait for such a function, so it must not touch p.
				return
			}
			pctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(gctx, cancel)
			defer stop()
			c.runPartition(pctx, p, offset, open)
		})
	}
	gen.Start(func(gctx context.Context) {
		if gctx.Err() != nil {
			return
		}
		t := time.NewTicker(c.cc.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.commit(gen, parts)
				continue
			case <-gctx.Done():
			case <-ctx.Done():
			}
			break
		}
		// Final commit once every partition goroutine stopped processing.
		wg.Wait()
		c.commit(gen, parts)
	})
}

// commit commits, for each partition, the offset below which every record
// was processed.
func (c *Consumer) commit(gen *kafkago.Generation, parts []*partition) {
	offsets := map[int]int64{}
	for _, p := range parts {
		if d := p.done.Load(); d >= 0 && d > p.committed.Load() {
			offsets[p.id] = d
		}
	}
	if len(offsets) == 0 {
		return
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{c.cc.Topic: offsets}); err != nil {
		for _, p := range parts {
			if _, ok := offsets[p.id]; ok {
				p.commitFails.Add(1)
			}
		}
		c.log.Warn().Err(err).Int32("generation", gen.ID).Msg("bus offset commit failed; the next owner processes those records again")
		return
	}
	for _, p := range parts {
		if d, ok := offsets[p.id]; ok {
			p.committed.Store(d)
		}
	}
}

// maxRetryBackoff bounds the pause between attempts at a failing
// partition.
const maxRetryBackoff = 30 * time.Second

// runPartition consumes one partition until ctx ends, opening it again
// after a failure: after RetryBackoff, doubled for each failure in a row
// without a record processed in between, up to 30s.
func (c *Consumer) runPartition(ctx context.Context, p *partition, assigned int64, open func(int) (PartitionHandler, error)) {
	backoff := c.cc.RetryBackoff
	for {
		before := p.processed.Load()
		err := c.consumePartition(ctx, p, assigned, open)
		if ctx.Err() != nil {
			return
		}
		if p.processed.Load() != before {
			backoff = c.cc.RetryBackoff
		}
		p.failures.Add(1)
		c.log.Error().Err(err).Int("partition", p.id).Dur("retry_in", backoff).
			Msg("bus partition stopped; it is opened again from its last processed offset")
		t := time.NewTimer(backoff)
		backoff = min(2*backoff, max(maxRetryBackoff, c.cc.RetryBackoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// consumePartition replays the partition's recent history into a fresh
// handler (or keeps the handler of the previous generation when it is
// still current), then processes live records. It returns nil when ctx
// ended and an error when the partition must be opened again.
func (c *Consumer) consumePartition(ctx context.Context, p *partition, assigned int64, open func(int) (PartitionHandler, error)) error {
	b, err := c.offsets(ctx, p.id, assigned)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("offsets: %w", err)
	}
	if p.committed.Load() < b.committed {
		p.committed.Store(b.committed)
	}
	p.hwm.Store(b.last)
	done := p.done.Load()
	live := max(b.committed, done)
	start, replayFrom := live, live
	if p.handler != nil && p.healthy && done >= b.committed {
		// Still ours since the last generation and nobody processed past
		// what we did: keep the state, nothing to replay.
	} else {
		if p.handler != nil {
			p.handler.Close()
			p.handler, p.filter = nil, nil
		}
		h, err := open(p.id)
		if err != nil {
			return fmt.Errorf("open partition %d: %w", p.id, err)
		}
		p.handler, p.filter, p.healthy = h, newFilter(c.cc.DedupeWindow), true
		p.replays.Add(1)
		start, replayFrom = min(b.filterFrom, live), min(b.replayFrom, live)
	}
	p.done.Store(live)
	log := c.log.With().Int("partition", p.id).Logger()
	log.Info().Int64("filter_from", start).Int64("replay_from", replayFrom).Int64("live_from", live).Int64("end", b.last).
		Msg("bus partition started")

	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        c.cc.Brokers,
		Topic:          c.cc.Topic,
		Partition:      p.id,
		Dialer:         c.dialer,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        c.cc.MaxWait,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
		ErrorLogger:    kafkaconn.Log(log, zerolog.WarnLevel),
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("seek to %d: %w", start, err)
	}
	stream := Stream(c.cc.Topic, p.id)
	replayStarted := time.Now()
	replaying := start < live
	p.replaying.Store(replaying)
	defer p.replaying.Store(false)
	replayed := p.replayed.Load()
	// endReplay is called with the last record to replay or, when that
	// one is gone (compaction), the first live one.
	endReplay := func() {
		replaying = false
		p.replaying.Store(false)
		log.Info().Int64("replayed", p.replayed.Load()-replayed).Dur("took", time.Since(replayStarted)).Msg("bus partition replayed")
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch: %w", err)
		}
		if m.HighWaterMark > 0 {
			p.hwm.Store(m.HighWaterMark)
		}
		if replaying && m.Offset >= live {
			endReplay()
		}
		msg, err := decodeMessage(m.Value)
		if err != nil {
			p.invalid.Add(1)
			log.Error().Err(err).Int64("offset", m.Offset).Msg("bus record is not a rulebook bus message; skipped")
			if m.Offset >= live {
				p.done.Store(m.Offset + 1)
			} else if m.Offset+1 >= live {
				endReplay()
			}
			continue
		}
		outcome := p.filter.decide(&msg)
		// A record written before this assignment may have been processed
		// by the previous owner (or by this process, before the partition
		// moved): its firings may be stored already.
		rec := engine.Record{Seq: uint64(m.Offset) + 1, Stream: stream, Source: msg.ref(), Event: msg.Event, Accepted: msg.Accepted,
			Redelivered: m.Offset < b.last, Size: len(m.Value)}
		if m.Offset < live {
			// Before replayFrom, history only rebuilds the dedupe and
			// order keys.
			if outcome == engine.Accepted && m.Offset >= replayFrom {
				if err := p.handler.Replay(ctx, rec); err != nil {
					p.healthy = false
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("replay offset %d: %w", m.Offset, err)
				}
				p.replayed.Add(1)
			}
			if m.Offset+1 >= live {
				endReplay()
			}
			continue
		}
		switch outcome {
		case engine.Duplicate:
			p.duplicates.Add(1)
			log.Debug().Int64("offset", m.Offset).Str("source", msg.Source.Name).Str("dedupe_key", msg.DedupeKey).
				Msg("bus record skipped: duplicate")
		case engine.Stale:
			p.stale.Add(1)
			log.Debug().Int64("offset", m.Offset).Str("source", msg.Source.Name).Str("order_key", msg.OrderKey).
				Time("timestamp", msg.Timestamp).Msg("bus record skipped: stale")
		default:
			if err := p.handler.Process(ctx, rec); err != nil {
				// State may be half-updated: rebuild it before going on.
				p.healthy = false
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("process offset %d: %w", m.Offset, err)
			}
			p.processed.Add(1)
		}
		p.done.Store(m.Offset + 1)
	}
}

// bounds are where reading a newly assigned partition starts and turns.
type bounds struct {
	// filterFrom is the first record read to rebuild the dedupe and order
	// keys; replayFrom the first one also replayed into the handler.
	filterFrom, replayFrom int64
	// committed is the group's committed offset (the first live record);
	// last the partition's end.
	committed, last int64
}

// offsets resolves the committed offset (or the log start for a partition
// without one) and finds where the filter rebuild and the replay start: the
// first records accepted within DedupeLookback and Lookback, bounded by the
// log start and the committed offset.
func (c *Consumer) offsets(ctx context.Context, partition int, assigned int64) (bounds, error) {
	conn, err := c.dialLeader(ctx, partition)
	if err != nil {
		return bounds{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return bounds{}, err
	}
	committed := assigned
	switch {
	case assigned == kafkago.LastOffset:
		committed = last
	case assigned < 0:
		committed = first
	}
	b := bounds{committed: min(max(committed, first), last), last: last}
	now := c.clock.Now()
	warned := false
	at := func(back time.Duration) int64 {
		if back < 0 {
			return b.committed
		}
		off, err := conn.ReadOffset(now.Add(-back))
		switch {
		case err != nil:
			if !warned {
				c.log.Warn().Err(err).Int("partition", partition).Int("replay_limit", c.cc.ReplayLimit).
					Msg("bus broker cannot find offsets by time; replaying a bounded number of records instead of the lookback")
				warned = true
			}
			off = b.committed - int64(c.cc.ReplayLimit)
		case off < 0:
			// Nothing was accepted within back.
			off = b.committed
		}
		return min(max(off, first), b.committed)
	}
	b.replayFrom = at(c.cc.Lookback)
	b.filterFrom = b.replayFrom
	if c.cc.DedupeLookback > c.cc.Lookback {
		b.filterFrom = min(at(c.cc.DedupeLookback), b.replayFrom)
	}
	return b, nil
}

func (c *Consumer) dialLeader(ctx context.Context, partition int) (*kafkago.Conn, error) {
	var err error
	for _, b := range c.cc.Brokers {
		var conn *kafkago.Conn
		if conn, err = c.dialer.DialLeader(ctx, "tcp", b, c.cc.Topic, partition); err == nil {
			return conn, nil
		}
	}
	return nil, err
}

// Stats is a snapshot of a Consumer.
type Stats struct {
	Topic      string `json:"topic"`
	Group      string `json:"group"`
	Generation int32  `json:"generation"`
	// Owned lists the partitions this process is assigned now.
	Owned []int `json:"owned"`
	// Partitions has every partition this process has owned, the current
	// ones first.
	Partitions []PartitionStats `json:"partitions"`
}

// PartitionStats counts one partition's records since this process started.
type PartitionStats struct {
	Partition int  `json:"partition"`
	Owned     bool `json:"owned"`
	// Replaying is true while the partition's history is replayed (the
	// partition was just assigned): live records wait.
	Replaying bool `json:"replaying"`
	// Lag is the number of records between the partition's end and the
	// next record to process (known while owned).
	Lag int64 `json:"lag"`
	// Committed is the last committed offset (-1: none seen).
	Committed  int64 `json:"committed"`
	Processed  int64 `json:"processed"`
	Replayed   int64 `json:"replayed"`
	Duplicates int64 `json:"duplicates"`
	Stale      int64 `json:"stale"`
	// Invalid counts records that were not bus messages (skipped).
	Invalid int64 `json:"invalid"`
	// Failures counts handler or fetch failures that reopened the
	// partition; Replays the handlers opened (each replays history).
	Failures       int64 `json:"failures"`
	Replays        int64 `json:"replays"`
	CommitFailures int64 `json:"commit_failures"`
}

// Stats returns the consumer's counters. It is safe to call at any time.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{Topic: c.cc.Topic, Group: c.cc.Group, Generation: c.gen, Owned: []int{}}
	for _, p := range c.parts {
		ps := PartitionStats{
			Partition: p.id, Owned: p.owned.Load(), Replaying: p.replaying.Load(), Committed: p.committed.Load(),
			Processed: p.processed.Load(), Replayed: p.replayed.Load(),
			Duplicates: p.duplicates.Load(), Stale: p.stale.Load(), Invalid: p.invalid.Load(),
			Failures: p.failures.Load(), Replays: p.replays.Load(), CommitFailures: p.commitFails.Load(),
		}
		if ps.Owned {
			st.Owned = append(st.Owned, p.id)
			if hwm, done := p.hwm.Load(), p.done.Load(); hwm >= 0 && done >= 0 {
				ps.Lag = max(hwm-done, 0)
			}
		}
		st.Partitions = append(st.Partitions, ps)
	}
	sort.Ints(st.Owned)
	sort.Slice(st.Partitions, func(i, j int) bool {
		a, b := st.Partitions[i], st.Partitions[j]
		if a.Owned != b.Owned {
			return a.Owned
		}
		return a.Partition < b.Partition
	})
	return st
}

// Stream is the engine.Record.Stream of the records of a partition of the
// bus topic: "topic/partition".
func Stream(topic string, partition int) string {
	return topic + "/" + strconv.Itoa(partition)
}

// Topic returns the bus topic the consumer reads.
func (c *Consumer) Topic() string { return c.cc.Topic }
