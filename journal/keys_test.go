package journal

import (
	"bytes"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// FuzzScopedKey checks that dedupe and order keys of different sources or
// keys never collide, whatever bytes rulesets, names and keys hold, and that
// the expiry index leads back to the key.
func FuzzScopedKey(f *testing.F) {
	f.Add("a", "bc", "k", "ab", "c", "k")
	f.Add("a", "b", "ck", "a", "bc", "k")
	f.Add("", "", "", "", "", "")
	f.Add("rs", "hook\x00", "k", "rs", "hook", "\x00k")
	f.Fuzz(func(t *testing.T, r1, n1, k1, r2, n2, k2 string) {
		a := scopedKey(pDedupe, scope(engine.SourceRef{Ruleset: r1, Name: n1}), k1)
		b := scopedKey(pDedupe, scope(engine.SourceRef{Ruleset: r2, Name: n2}), k2)
		same := r1 == r2 && n1 == n2 && k1 == k2
		if bytes.Equal(a, b) != same {
			t.Fatalf("(%q,%q,%q) and (%q,%q,%q): keys equal %v, triples equal %v", r1, n1, k1, r2, n2, k2, bytes.Equal(a, b), same)
		}
		ik := expiryKey(pDedupeExp, 12345, a)
		if back := append([]byte{pDedupe}, ik[1+timeValueLen:]...); !bytes.Equal(back, a) {
			t.Fatalf("expiry key %x leads to %x, want %x", ik, back, a)
		}
	})
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte{'i', 0, 1}, []byte{'i', 0, 2}},
		{[]byte{'i', 0xff}, []byte{'j'}},
		{[]byte{0xff, 0xff}, nil},
	} {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tc.in, got, tc.want)
		}
	}
}
