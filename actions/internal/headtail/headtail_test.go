package headtail

import (
	"strings"
	"sync"
	"testing"
)

func TestKeepsHeadAndTail(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"fits", 10, []string{"abc", "def"}, "abcdef"},
		{"exactly", 6, []string{"abc", "def"}, "abcdef"},
		{"one over", 6, []string{"abcdefg"}, "abc\n[... output truncated: 1 bytes omitted ...]\nefg"},
		{"many small writes", 4, []string{"1", "2", "3", "4", "5", "6", "7", "8"}, "12\n[... output truncated: 4 bytes omitted ...]\n78"},
		{"big write", 4, []string{"0123456789"}, "01\n[... output truncated: 6 bytes omitted ...]\n89"},
		{"utf8 cut", 6, []string{"ééééé"}, "é\n[... output truncated: 4 bytes omitted ...]\né"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.limit)
			for _, w := range tc.writes {
				_, _ = c.Write([]byte(w))
			}
			if got := c.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzBuffer(f *testing.F) {
	f.Add(7, []byte("hello world, this is output"), 3)
	f.Add(1, []byte("x"), 1)
	f.Fuzz(func(t *testing.T, limit int, data []byte, chunk int) {
		if limit <= 0 || limit > 1<<12 || chunk <= 0 {
			return
		}
		c := New(limit)
		for i := 0; i < len(data); i += chunk {
			_, _ = c.Write(data[i:min(i+chunk, len(data))])
		}
		got := c.String()
		if len(data) <= limit {
			if got != string(data) {
				t.Fatalf("got %q, want %q", got, data)
			}
			return
		}
		h := limit / 2
		if !strings.HasPrefix(got, string(TrimCutRuneEnd(data[:h]))) {
			t.Fatalf("head lost: %q", got)
		}
		if !strings.HasSuffix(got, string(TrimCutRuneStart(data[len(data)-(limit-h):]))) {
			t.Fatalf("tail lost: %q", got)
		}
		if c.Truncated() != int64(len(data)-limit) {
			t.Fatalf("truncated = %d, want %d", c.Truncated(), len(data)-limit)
		}
	})
}

func TestCounts(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		writes    []string
		total     int64
		truncated int64
	}{
		{"empty", 4, nil, 0, 0},
		{"fits", 4, []string{"ab", "cd"}, 4, 0},
		{"over", 4, []string{"abc", "defgh"}, 8, 4},
		{"default limit", 0, []string{strings.Repeat("x", DefaultLimit+10)}, DefaultLimit + 10, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.limit)
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if b.Total() != tc.total || b.Truncated() != tc.truncated {
				t.Errorf("total %d truncated %d, want %d %d", b.Total(), b.Truncated(), tc.total, tc.truncated)
			}
		})
	}
}

// Two writers at once, as stdout and stderr of one process: nothing is
// lost from the count and the kept bytes are whole writes' bytes.
func TestConcurrentWriters(t *testing.T) {
	b := New(64)
	var wg sync.WaitGroup
	for _, c := range []string{"o", "e"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				_, _ = b.Write([]byte(c))
			}
		}()
	}
	wg.Wait()
	if b.Total() != 2000 || b.Truncated() != 2000-64 {
		t.Errorf("total %d truncated %d", b.Total(), b.Truncated())
	}
	if s := strings.Trim(b.String(), "oe"); !strings.HasPrefix(s, "\n[... output truncated: 1936 bytes omitted ...]\n") {
		t.Errorf("String = %q", b.String())
	}
}

func TestTrimCutRune(t *testing.T) {
	tests := []struct {
		in         string
		end, start string
	}{
		{"abc", "abc", "abc"},
		{"", "", ""},
		{"é", "é", "é"},
		{"a\xc3", "a", "a\xc3"},
		{"\xa9b", "\xa9b", "b"},
		{"a\xe2\x98", "a", "a\xe2\x98"},
		{"\x98\x83z", "\x98\x83z", "z"},
		{"😀", "😀", "😀"},
	}
	for _, tc := range tests {
		if got := string(TrimCutRuneEnd([]byte(tc.in))); got != tc.end {
			t.Errorf("TrimCutRuneEnd(%q) = %q, want %q", tc.in, got, tc.end)
		}
		if got := string(TrimCutRuneStart([]byte(tc.in))); got != tc.start {
			t.Errorf("TrimCutRuneStart(%q) = %q, want %q", tc.in, got, tc.start)
		}
	}
}
