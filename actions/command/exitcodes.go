package command

import (
	"strconv"

	"github.com/rulebook-dev/rulebook/actions/internal/argvalue"
	"github.com/rulebook-dev/rulebook/engine"
)

// MaxOutputLimit bounds output_limit: the audit trail is not a log store.
const MaxOutputLimit = 16 << 20

func toExitCodes(path []string, v any, check bool) ([]int, error) {
	if s, ok := v.(string); ok && check && engine.IsTemplate(s) {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		if ints, ok := v.([]int); ok {
			list = make([]any, len(ints))
			for i, n := range ints {
				list[i] = n
			}
		} else {
			return nil, engine.ArgErrorf(path, "must be a list of exit codes, got %s", engine.TypeName(v))
		}
	}
	out := make([]int, 0, len(list))
	for i, e := range list {
		p := argvalue.AppendPath(path, strconv.Itoa(i))
		n, tmpl, err := argvalue.Int(p, e, check)
		if err != nil {
			return nil, err
		}
		if tmpl {
			continue
		}
		if n < 0 || n > 255 {
			return nil, engine.ArgErrorf(p, "exit code %d is outside 0-255", n)
		}
		out = append(out, n)
	}
	return out, nil
}
