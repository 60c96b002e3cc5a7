package rulebooks

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rulebook-dev/rulebook/engine"
)

// yamlLineRE matches the position yaml.v3 puts in a syntax error.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlSyntaxError turns a yaml.v3 syntax error in data into the position
// where the parser found the problem and a message with a hint for the
// common mistakes.
//
// yaml.v3 reports the line where the construct being parsed started (the
// enclosing mapping or list, counted from 0), not the line it choked on: an
// indentation mistake on line 16 reads "line 7". The line that broke the
// document is found again as the shortest prefix of it that fails with the
// same problem: that prefix ends at the line. This runs only for a
// rulebook that does not parse.
func yamlSyntaxError(data []byte, err error) (line, col int, msg string) {
	full := err.Error()
	m := yamlLineRE.FindStringSubmatch(full)
	if m == nil {
		return 1, 1, full
	}
	problem := full[len(m[0]):]
	line, _ = strconv.Atoi(m[1])
	lines := bytes.SplitAfter(data, []byte("\n"))
	// fails reports whether the first l lines fail with the same problem.
	fails := func(l int) bool {
		var n yaml.Node
		perr := yaml.Unmarshal(bytes.Join(lines[:l], nil), &n)
		if perr == nil {
			return false
		}
		pm := yamlLineRE.FindStringSubmatch(perr.Error())
		return pm != nil && perr.Error()[len(pm[0]):] == problem
	}
	// Bisect between the reported line (the problem is not before the
	// construct it is in) and the end (the whole document fails): a few
	// parses, not one per line. Cutting the document inside a multi-line
	// value can make a shorter prefix fail too; the line found is then
	// still one where the failure starts.
	lo, hi := max(line, 1)-1, len(lines)
	if fails(hi) {
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if fails(mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
		line = hi
	}
	line = max(line, 1)
	col = 1
	var text string
	if line <= len(lines) {
		text = strings.TrimRight(string(lines[line-1]), "\r\n")
		col = len(text) - len(strings.TrimLeft(text, " \t")) + 1
	}
	return line, col, "invalid YAML: " + problem + yamlHint(problem, text)
}

// flowItemRE finds a flow sequence on a line: `key: [items]`.
var flowItemRE = regexp.MustCompile(`^(\s*(?:-\s+)?[^\s:\[\]{}#]+:\s*)\[(.*)\]\s*(#.*)?$`)

// yamlHint explains the syntax errors a rulebook author hits most.
func yamlHint(problem, text string) string {
	switch {
	case strings.Contains(problem, "did not find expected ',' or ']'") && strings.Count(text, "[") > 1:
		// group_by: [event.meta.hosts[0]]: in a flow sequence a bare [
		// opens a nested list.
		h := "; in a [...] list an item that holds brackets must be quoted"
		if fm := flowItemRE.FindStringSubmatch(text); fm != nil && !strings.ContainsAny(fm[2], `,"'`) {
			h += ": " + strings.TrimSpace(fm[1]) + " [" + strconv.Quote(strings.TrimSpace(fm[2])) + "]"
		} else {
			h += `, e.g. ["event.meta.hosts[0]"]`
		}
		return h
	case strings.Contains(problem, "did not find expected key"),
		strings.Contains(problem, "did not find expected '-' indicator"),
		strings.Contains(problem, "did not find expected node content") && strings.HasPrefix(strings.TrimSpace(text), "-"):
		return "; check this line's indentation against the lines above it"
	}
	return ""
}

// Hints for spellings of Event-Driven Ansible rulebooks that the native
// format spells differently. They are appended to the message of the error
// such a spelling causes, in place of leaving the author with a raw parser
// error.
var (
	edaFilterRE = regexp.MustCompile(`template "[^"]*\|\s*([A-Za-z_]\w*)`)
)

// edaHint returns the hint for msg, or "". A filter the engine has as a
// function (engine.IsFunction) is named in the hint as a call.
func edaHint(msg string) string {
	m := edaFilterRE.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	const native = "; this rulebook is read as native (no EDA-only condition), so templates are expr, not Jinja; "
	switch f := m[1]; {
	case f == "default" || f == "d":
		return native + `a default is written event.x ?? "fallback"`
	case engine.IsFunction(f):
		return native + "call the function: " + f + "(event.x), or pipe into a call: event.x | " + f + "()"
	default:
		return native + "call a function instead, e.g. upper(event.x)"
	}
}
