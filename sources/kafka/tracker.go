package kafka

import (
	"sort"
	"sync"
)

// topicPartition names one partition.
type topicPartition struct {
	Topic     string
	Partition int
}

// tracker follows, per partition, which fetched messages are durable and so
// which offset may be committed: the commit point of a partition only moves
// past a message when it and every message fetched before it from that
// partition are done. Kafka offsets need not be contiguous (compaction,
// transaction markers), so "every earlier message" means every earlier one
// that was fetched, not every smaller integer.
//
// A partition may be fetched again from an older offset after a rebalance
// or a reconnect: fetched reports such redeliveries so the caller can skip
// what is already done or already on its way.
type tracker struct {
	mu    sync.Mutex
	parts map[topicPartition]*partState
}

type partState struct {
	// queue holds fetched offsets not yet popped, increasing.
	queue []pending
	// doneUpTo is the highest offset below which every fetched message is
	// done; -1 before the first.
	doneUpTo int64
	// committed is the offset of the last message whose commit succeeded
	// (Kafka stores committed+1); -1 before the first.
	committed int64
	// highWater is the partition's high watermark as of the last fetch.
	highWater int64
}

type pending struct {
	offset int64
	done   bool
}

func newTracker() *tracker { return &tracker{parts: map[topicPartition]*partState{}} }

func (t *tracker) part(tp topicPartition) *partState {
	p := t.parts[tp]
	if p == nil {
		p = &partState{doneUpTo: -1, committed: -1}
		t.parts[tp] = p
	}
	return p
}

// fetched records a fetched message. It returns false when the message needs
// no processing: it is already done, or an earlier fetch of it is pending.
func (t *tracker) fetched(tp topicPartition, offset, highWater int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.part(tp)
	if highWater > p.highWater {
		p.highWater = highWater
	}
	if offset <= p.doneUpTo {
		return false
	}
	if n := len(p.queue); n > 0 && offset <= p.queue[n-1].offset {
		return false
	}
	p.queue = append(p.queue, pending{offset: offset})
	return true
}

// done marks messages that fetched accepted as durable.
func (t *tracker) done(tp topicPartition, offsets ...int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.part(tp)
	for _, o := range offsets {
		p.markDone(o)
	}
}

func (p *partState) markDone(offset int64) {
	i := sort.Search(len(p.queue), func(i int) bool { return p.queue[i].offset >= offset })
	if i == len(p.queue) || p.queue[i].offset != offset {
		return
	}
	p.queue[i].done = true
	n := 0
	for n < len(p.queue) && p.queue[n].done {
		p.doneUpTo = p.queue[n].offset
		n++
	}
	if n > 0 {
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
	}
}

// committable returns, for every partition whose commit point moved past
// its last successful commit, the offset of the last done message.
func (t *tracker) committable() map[topicPartition]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[topicPartition]int64
	for tp, p := range t.parts {
		if p.doneUpTo > p.committed {
			if out == nil {
				out = map[topicPartition]int64{}
			}
			out[tp] = p.doneUpTo
		}
	}
	return out
}

// committed records a successful commit up to and including offset.
func (t *tracker) committed(tp topicPartition, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.part(tp)
	if offset > p.committed {
		p.committed = offset
	}
}

// inFlight is the number of fetched messages not yet done.
func (t *tracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.parts {
		for _, q := range p.queue {
			if !q.done {
				n++
			}
		}
	}
	return n
}

// PartitionStats describes one partition the source has fetched from.
type PartitionStats struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	// Done is the offset below which every fetched message is durable in
	// the journal (the next offset to commit), or -1.
	Done int64 `json:"done"`
	// Committed is the next offset Kafka holds for the group as far as this
	// source committed it, or -1.
	Committed int64 `json:"committed"`
	// HighWater is the partition's high watermark at the last fetch.
	HighWater int64 `json:"high_water"`
	// Lag is HighWater minus Done: messages not yet durable here.
	Lag int64 `json:"lag"`
	// InFlight is the number of fetched messages not yet durable.
	InFlight int `json:"in_flight"`
}

func (t *tracker) stats() []PartitionStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PartitionStats, 0, len(t.parts))
	for tp, p := range t.parts {
		ps := PartitionStats{Topic: tp.Topic, Partition: tp.Partition, Done: -1, Committed: -1, HighWater: p.highWater}
		if p.doneUpTo >= 0 {
			ps.Done = p.doneUpTo + 1
		}
		if p.committed >= 0 {
			ps.Committed = p.committed + 1
		}
		if next := p.doneUpTo + 1; p.highWater > next {
			ps.Lag = p.highWater - next
		}
		for _, q := range p.queue {
			if !q.done {
				ps.InFlight++
			}
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}
