package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// The store is one Pebble keyspace; the first byte of a key says what it
// holds. Numbers are big-endian so that keys sort in numeric order.
const (
	pMeta        = 'm' // m<name>                       → uint64
	pEvent       = 'e' // e<seq>                        → <accepted unix ns><record JSON>
	pDedupe      = 'd' // d<scope><dedupe key>          → <expiry unix ns>
	pDedupeExp   = 'D' // D<expiry><scope><dedupe key>  → empty (expiry index)
	pOrder       = 'o' // o<scope><order key>           → <newest timestamp unix ns><expiry unix ns>
	pOrderExp    = 'O' // O<expiry><scope><order key>   → empty (expiry index)
	pFiring      = 'f' // f<fseq>                       → Firing JSON
	pFiringID    = 'F' // F<firing id>                  → <fseq>
	pInvocation  = 'i' // i<fseq><index>                → InvocationState JSON
	pInvID       = 'I' // I<invocation id>              → <fseq><index>
	pUnfinished  = 'u' // u<fseq><index>                → empty
	pFact        = 't' // t<ruleset><order>             → fact JSON (engine.FactJournal)
	pPosition    = 'p' // p<scope>                      → a source's resume position (engine.Entry.Position)
	metaSeq      = "seq"
	metaDone     = "done"
	metaFiring   = "fseq"
	seqLen       = 8
	invRefLen    = seqLen + 4
	timeValueLen = 8
)

var errCorrupt = errors.New("journal: corrupt store")

func metaKey(name string) []byte { return append([]byte{pMeta}, name...) }

func seqKey(prefix byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, seq)
}

func keySeq(k []byte) (uint64, error) {
	if len(k) != 1+seqLen {
		return 0, fmt.Errorf("%w: key %x is not a sequence key", errCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

// scope returns the per-source part of dedupe and order keys: the ruleset and
// the source name, each length-prefixed so that no two sources share a key.
func scope(src engine.SourceRef) []byte {
	b := binary.AppendUvarint(nil, uint64(len(src.Ruleset)))
	b = append(b, src.Ruleset...)
	b = binary.AppendUvarint(b, uint64(len(src.Name)))
	return append(b, src.Name...)
}

// scopedKey is prefix + scope + key.
func scopedKey(prefix byte, sc []byte, key string) []byte {
	b := make([]byte, 0, 1+len(sc)+len(key))
	b = append(b, prefix)
	b = append(b, sc...)
	return append(b, key...)
}

// expiryKey is the index entry prefix + expiry + the scoped key without its
// own prefix byte.
func expiryKey(prefix byte, expiry int64, scoped []byte) []byte {
	b := make([]byte, 0, 1+timeValueLen+len(scoped)-1)
	b = append(b, prefix)
	b = binary.BigEndian.AppendUint64(b, uint64(expiry))
	return append(b, scoped[1:]...)
}

func invRef(fseq uint64, index int) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, invRefLen), fseq)
	return binary.BigEndian.AppendUint32(b, uint32(index))
}

func invKey(prefix byte, ref []byte) []byte { return append([]byte{prefix}, ref...) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d-byte value where 8 were expected", errCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func unixNano(t time.Time) int64 { return t.UnixNano() }

// prefixEnd returns the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
