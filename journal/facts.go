package journal

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rulebook-dev/rulebook/engine"
)

var _ engine.FactJournal = (*Store)(nil)

// factWrite is one fact change as the committer writes it: value nil
// deletes the key.
type factWrite struct {
	key, value []byte
}

// factKey is pFact + the length-prefixed ruleset + the fact's order.
func factKey(ruleset string, order uint64) []byte {
	b := binary.AppendUvarint([]byte{pFact}, uint64(len(ruleset)))
	b = append(b, ruleset...)
	return binary.BigEndian.AppendUint64(b, order)
}

// parseFactKey is factKey's inverse.
func parseFactKey(k []byte) (string, uint64, error) {
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || len(k) != 1+w+int(n)+seqLen {
		return "", 0, fmt.Errorf("%w: key %x is not a fact key", errCorrupt, k)
	}
	return string(k[1+w : 1+w+int(n)]), binary.BigEndian.Uint64(k[1+w+int(n):]), nil
}

// DoneWithFacts implements engine.FactJournal: Done, with the fact changes
// in the same write, synced when there are any (a fact an admin injected is
// in no record that a crash would make the engine process again).
func (s *Store) DoneWithFacts(ctx context.Context, seq uint64, changes []engine.FactChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	writes := make([]factWrite, 0, len(changes))
	for _, c := range changes {
		w := factWrite{key: factKey(c.Ruleset, c.Order)}
		if c.Fact != nil {
			v, err := json.Marshal(c.Fact)
			if err != nil {
				// A value JSON cannot hold (NaN): the fact lives on in
				// memory, it cannot survive a restart.
				s.log.Error().Err(err).Str("ruleset", c.Ruleset).Str("fact_id", engine.EventID(c.Fact)).
					Msg("fact not stored: it will not survive a restart")
				continue
			}
			w.value = v
		}
		writes = append(writes, w)
	}
	s.wal.askDone(seq)
	r := &request{kind: reqDone, seq: seq, facts: writes}
	if err := s.submit(r); err != nil {
		return err
	}
	return r.err
}

// Facts implements engine.FactJournal.
func (s *Store) Facts(ctx context.Context) ([]engine.FactChange, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, engine.ErrClosed
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pFact}, UpperBound: []byte{pFact + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []engine.FactChange
	for ok := it.First(); ok; ok = it.Next() {
		ruleset, order, err := parseFactKey(it.Key())
		if err != nil {
			return nil, err
		}
		var fact map[string]any
		if err := json.Unmarshal(it.Value(), &fact); err != nil || fact == nil {
			return nil, fmt.Errorf("%w: fact %d of ruleset %q: %v", errCorrupt, order, ruleset, err)
		}
		out = append(out, engine.FactChange{Ruleset: ruleset, Order: order, Fact: fact})
	}
	return out, it.Error()
}
