package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rulebook-dev/rulebook/bus"
	"github.com/rulebook-dev/rulebook/engine"
)

var _ bus.PartitionHandler = (*partition)(nil)

// DefaultBusKey is the partition key of an event on the bus: its source and
// first host, so one host's events meet the same rule state.
const DefaultBusKey = `event.meta.source.name + "/" + (event.meta.hosts?.[0] ?? "")`

// busKeyFunc compiles the --bus-key expression into the producer's key.
func busKeyFunc(expr string) (bus.KeyFunc, error) {
	comp := &engine.Compiler{}
	t, err := comp.CompileTemplate("{{ " + expr + " }}")
	if err != nil {
		return nil, fmt.Errorf("--bus-key: %w", err)
	}
	return func(src engine.SourceRef, e engine.Entry) string {
		v, err := t.Render(engine.Env{Event: e.Event, Fact: e.Event})
		if err != nil || v == nil {
			return src.Ruleset + "/" + src.Name
		}
		return fmt.Sprint(v)
	}, nil
}

// busLookback is how much history a process replays when it takes over a
// partition: the longest window any rule keeps state for.
func busLookback(rulesets []*engine.Ruleset) time.Duration {
	var d time.Duration
	for _, rs := range rulesets {
		for _, r := range rs.Rules {
			if r.Throttle != nil && r.Throttle.Window > d {
				d = r.Throttle.Window
			}
			switch r.Kind {
			case engine.All, engine.NotAll:
				w := r.Timeout
				if w == 0 {
					w = rs.DefaultEventsTTL
				}
				if w == 0 {
					w = engine.DefaultEventsTTL
				}
				if w > d {
					d = w
				}
			}
		}
	}
	return d
}

// partitions keeps one engine per Kafka partition this process owns, so the
// events of one key always meet the same rule state.
type partitions struct {
	a        *app
	mu       sync.Mutex
	rulesets []*engine.Ruleset
	owned    map[int]*partition
}

type partition struct {
	owner  *partitions
	id     int
	eng    *engine.Engine
	cancel context.CancelFunc
	done   chan struct{}
}

func newPartitions(a *app, rulesets []*engine.Ruleset) *partitions {
	return &partitions{a: a, rulesets: rulesets, owned: map[int]*partition{}}
}

// open builds the engine of a newly assigned partition and its timer loop.
func (ps *partitions) open(id int) (bus.PartitionHandler, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	a := ps.a
	p := &partition{owner: ps, id: id, done: make(chan struct{})}
	p.eng = engine.New(ps.rulesets, a.engineOptions(a.log.With().Int("partition", id).Logger()))
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.tick(ctx, a)
	ps.owned[id] = p
	a.log.Info().Int("partition", id).Msg("partition assigned")
	return p, nil
}

func (p *partition) Replay(ctx context.Context, rec engine.Record) error {
	return p.eng.Replay(ctx, rec)
}

func (p *partition) Process(ctx context.Context, rec engine.Record) error {
	p.owner.a.observeRecord(rec)
	return p.eng.Process(ctx, rec)
}

func (p *partition) Close() {
	p.cancel()
	<-p.done
	p.owner.mu.Lock()
	if p.owner.owned[p.id] == p {
		delete(p.owner.owned, p.id)
	}
	p.owner.mu.Unlock()
	p.owner.a.log.Info().Int("partition", p.id).Msg("partition released")
}

// engines returns the engines of the partitions owned now.
func (ps *partitions) engines() []*engine.Engine {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]*engine.Engine, 0, len(ps.owned))
	for _, p := range ps.owned {
		out = append(out, p.eng)
	}
	return out
}

// replace swaps the rulesets of every owned partition and of those
// assigned later.
func (ps *partitions) replace(rulesets []*engine.Ruleset) engine.ReloadSummary {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.rulesets = rulesets
	var sum engine.ReloadSummary
	for _, p := range ps.owned {
		sum = p.eng.Replace(rulesets)
	}
	return sum
}

// tick fires the partition engine's timers when they are due.
func (p *partition) tick(ctx context.Context, a *app) {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if d, ok := p.eng.NextDeadline(); ok && !d.After(a.clock.Now()) {
				if err := p.eng.Tick(ctx); err != nil && ctx.Err() == nil {
					a.log.Error().Err(err).Int("partition", p.id).Msg("timer firing not stored")
				}
			}
		}
	}
}
