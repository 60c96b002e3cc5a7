package admin

import (
	"context"
	"fmt"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// memJournal is an engine.Journal over a slice.
type memJournal struct {
	recs []engine.Record
	done uint64
}

func (j *memJournal) Emit(context.Context, engine.SourceRef, []engine.Entry) ([]engine.Outcome, error) {
	return nil, nil
}

func (j *memJournal) Read(_ context.Context, after uint64, max int) ([]engine.Record, error) {
	var out []engine.Record
	for _, r := range j.recs {
		if r.Seq > after && len(out) < max {
			out = append(out, r)
		}
	}
	return out, nil
}

func (j *memJournal) Done(_ context.Context, seq uint64) error { j.done = seq; return nil }
func (j *memJournal) LastDone(context.Context) (uint64, error) { return j.done, nil }
func (j *memJournal) Backlog() int                             { return len(j.recs) - int(j.done) }
func (j *memJournal) Close() error                             { return nil }

func TestTapJournal(t *testing.T) {
	j := &memJournal{}
	for i := 1; i <= 5; i++ {
		j.recs = append(j.recs, engine.Record{Seq: uint64(i), Source: engine.SourceRef{Ruleset: "ops"}})
	}
	var seen []uint64
	tj := TapJournal(j, func(r engine.Record) { seen = append(seen, r.Seq) })
	recs, err := tj.Read(context.Background(), 1, 3)
	if err != nil || len(recs) != 3 {
		t.Fatalf("read %v %v", recs, err)
	}
	if fmt.Sprint(seen) != "[2 3 4]" {
		t.Errorf("tapped %v, want [2 3 4]", seen)
	}
	if err := tj.Done(context.Background(), 4); err != nil || j.done != 4 || tj.Backlog() != 1 {
		t.Errorf("done not passed through: %d, backlog %d", j.done, tj.Backlog())
	}
}
