package rulebooks

import (
	"bytes"
	"runtime"

	"github.com/rulebook-dev/rulebook/engine"
)

// yaml.v3 parses a whole document before anyone sees a node of it: for a
// rulebook of 10,000 rules that is a third of the load, on one core, and
// the conditions (another third) could only be compiled after it. So
// NewFile guesses, from the text, which strings are conditions (the
// `condition: EXPR` lines, the `- EXPR` items under `all:`, `any:` and
// `not_all:`) and starts compiling them on the other cores while the YAML
// is parsed. The loader takes a guessed compile only for a condition node
// whose text is exactly the guessed string: a condition's compile depends
// on its text and the compiler's clock alone (not on vars, nor on the
// rule around it), so what the loader gets is what compiling the node
// would give, and a wrong guess costs its compile, never a difference.
// Every error is still found and reported by the loader as before.

// speculateMin is the number of guessed conditions below which nothing
// is compiled ahead: engine.StartConditions starts no helper goroutine
// for fewer than 256, so it would gain nothing.
const speculateMin = 256

// speculation is the compile of the conditions guessed from a file's
// text, going on while the YAML is parsed.
type speculation struct {
	ready chan struct{} // closed once batch and at are set
	batch *engine.ConditionBatch
	// at lists, for each guessed condition text, its indexes in batch
	// not yet taken by a rule.
	at map[string][]int
}

// speculate starts guessing and compiling the conditions of data, with a
// compiler on the system clock (what `run` and `validate` use).
func speculate(data []byte) *speculation {
	if runtime.GOMAXPROCS(0) < 2 {
		return nil // nobody to compile while the YAML is parsed
	}
	s := &speculation{ready: make(chan struct{})}
	go func() {
		defer close(s.ready)
		var srcs []string
		for _, v := range guessConditions(data) {
			if engine.CheckExprBounds(v) != nil {
				continue // compileCond reports it without compiling
			}
			_, cond, _ := engine.SplitAssignment(v)
			srcs = append(srcs, cond)
		}
		if len(srcs) < speculateMin {
			return
		}
		s.at = make(map[string][]int, len(srcs))
		for i, src := range srcs {
			s.at[src] = append(s.at[src], i)
		}
		// The batch's Get and Stop are called by the loader's goroutine
		// once ready is closed; this one no longer uses the compiler.
		s.batch = (&engine.Compiler{}).StartConditions(srcs)
	}()
	return s
}

// usableClock reports whether a compile with clock may take the speculation's
// results: the speculation compiled on the system clock, and the
// functions of a condition (now(), age()) are bound to the clock.
func usableClock(clock engine.Clock) bool {
	switch clock.(type) {
	case nil, engine.SystemClock:
		return true
	}
	return false
}

// take returns the index in s.batch of a compile of the condition text
// cond, each index once (two rules with the same condition get a
// condition each).
func (s *speculation) take(cond string) (int, bool) {
	<-s.ready
	list := s.at[cond]
	if len(list) == 0 {
		return 0, false
	}
	if len(list) == 1 {
		delete(s.at, cond)
	} else {
		s.at[cond] = list[1:]
	}
	return list[0], true
}

// stop ends the compiling (again is a no-op); s.batch must not be used
// after.
func (s *speculation) stop() {
	<-s.ready
	if s.batch != nil {
		s.batch.Stop()
	}
}

// guessConditions returns the conditions written on one line in a
// rulebook's block-style YAML: the value of a `condition:` key and the
// items of an `all:`, `any:` or `not_all:` list, as YAML would read them
// when they are plain scalars, or quoted ones without escapes. It may be
// wrong both ways (a string that is no condition, a condition it misses):
// it only guesses which compiles are worth starting early.
func guessConditions(data []byte) []string {
	var out []string
	list := -1 // the column of the all/any/not_all key whose items follow
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		s := bytes.TrimRight(line, " \r")
		rest := bytes.TrimLeft(s, " ")
		if len(rest) == 0 || rest[0] == '#' {
			continue
		}
		col := len(s) - len(rest)
		if list >= 0 {
			if col >= list && bytes.HasPrefix(rest, []byte("- ")) {
				if v, ok := scalarText(rest[2:]); ok {
					out = append(out, v)
				}
				continue
			}
			list = -1
		}
		for bytes.HasPrefix(rest, []byte("- ")) {
			trimmed := bytes.TrimLeft(rest[2:], " ")
			col += len(rest) - len(trimmed)
			rest = trimmed
		}
		key, val, ok := bytes.Cut(rest, []byte{':'})
		if !ok || (len(val) > 0 && val[0] != ' ') {
			continue
		}
		switch string(key) { // no string made to switch
		case "condition":
			if v, ok := scalarText(val); ok {
				out = append(out, v)
			}
		case "all", "any", "not_all":
			if len(bytes.TrimSpace(val)) == 0 {
				list = col
			}
		}
	}
	return out
}

// scalarText is the value of a one-line YAML scalar s (spaces around it
// allowed), when it is plain or quoted without escapes.
func scalarText(b []byte) (string, bool) {
	b = bytes.TrimLeft(b, " ")
	if len(b) == 0 {
		return "", false
	}
	switch b[0] {
	case '"', '\'':
		end := bytes.IndexByte(b[1:], b[0])
		if end < 0 {
			return "", false
		}
		v, after := b[1:1+end], bytes.TrimLeft(b[2+end:], " ")
		if bytes.IndexByte(v, '\\') >= 0 || (len(after) > 0 && after[0] != '#') {
			return "", false // an escape, a doubled quote, text after it
		}
		return string(v), true
	case '[', ']', '{', '}', '&', '*', '!', '|', '>', '%', '@', '`', '#':
		return "", false // flow collections, anchors, tags, block scalars
	}
	if i := bytes.Index(b, []byte(" #")); i >= 0 {
		b = bytes.TrimRight(b[:i], " ")
	}
	if bytes.Contains(b, []byte(": ")) || bytes.HasSuffix(b, []byte(":")) || bytes.IndexByte(b, '\t') >= 0 {
		return "", false
	}
	return string(b), true
}
