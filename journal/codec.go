package journal

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// encodeValue appends the JSON of v to b and returns, with it, the value a
// JSON decoder would give back for it (a map[string]any / []any / string /
// float64 / bool / nil tree of its own, with the strings shared): what Read
// returns for the record, built without parsing what was just written.
//
// Every source builds its events from decoded JSON, strings and numbers, so
// those are encoded here without reflection; any other value (a time.Time,
// a []string, a struct) goes through encoding/json both ways, so the record
// a reader sees is exactly the one a decoder would give after a restart.
// Object keys are written in map order: the stored form is only ever read
// back by this package.
func encodeValue(b []byte, v any) ([]byte, any, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil, nil
	// The decoded value of a bool, a plain string or a float64 is v itself:
	// handing v back, not x, spares boxing it again.
	case bool:
		if x {
			return append(b, "true"...), v, nil
		}
		return append(b, "false"...), v, nil
	case string:
		if plainString(x) {
			return appendPlainString(b, x), v, nil
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, nil, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(x, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), v, nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), float64(x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), float64(x), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), float64(x), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), float64(x), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil, nil
		}
		out := make(map[string]any, len(x))
		b = append(b, '{')
		first := true
		for k, vv := range x {
			if !first {
				b = append(b, ',')
			}
			first = false
			key := k
			if plainString(k) {
				b = appendPlainString(b, k)
			} else {
				var err error
				var dk any
				if b, dk, err = encodeValue(b, k); err != nil {
					return b, nil, err
				}
				key = dk.(string)
			}
			b = append(b, ':')
			var err error
			var dec any
			if b, dec, err = encodeValue(b, vv); err != nil {
				return b, nil, fmt.Errorf("%s: %w", k, err)
			}
			out[key] = dec
		}
		return append(b, '}'), out, nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil, nil
		}
		out := make([]any, len(x))
		b = append(b, '[')
		for i, vv := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, out[i], err = encodeValue(b, vv); err != nil {
				return b, nil, err
			}
		}
		return append(b, ']'), out, nil
	}
	// Everything else, and strings that need escaping, as encoding/json
	// writes and reads them.
	j, err := json.Marshal(v)
	if err != nil {
		return b, nil, err
	}
	var dec any
	if err := json.Unmarshal(j, &dec); err != nil {
		return b, nil, err
	}
	return append(b, j...), dec, nil
}

// plainString reports whether s is valid UTF-8 needing no JSON escape.
func plainString(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s)
}

func appendPlainString(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
