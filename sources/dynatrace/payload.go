package dynatrace

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// Problem is one decoded problem notification.
type Problem struct {
	// Fields is the notification as received, normalized: Tags is a list of
	// strings, ImpactedEntities a list, ProblemDetailsJSON an object when it
	// was sent as a JSON string, PID a string, and ProblemURL set when only
	// the default template's "Problem URL" was given. Unknown fields are
	// kept.
	Fields map[string]any
	PID    string
	// State is OPEN or RESOLVED (Dynatrace may add others; they are kept).
	State string
	// Hosts are the names of the impacted entities of type HOST.
	Hosts []string
}

// DedupeKey identifies one state of one problem.
func (p *Problem) DedupeKey() string { return "problem/" + p.PID + "/" + p.State }

// Decode reads a parsed body (what encoding/json makes of it) as a Dynatrace
// custom integration problem notification. The payload is a template the
// Dynatrace user writes, so the decoder is lenient where a template may
// differ ({PID} quoted or not, {ImpactedEntities} and {ProblemDetailsJSON}
// quoted into strings) and strict on what rules need: PID and State.
// Errors say which field is wrong, for a 400 answer.
func Decode(payload any) (*Problem, error) {
	obj, ok := payload.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("body is %s, not a problem notification object", httpingest.ValueKind(payload))
	}
	fields := make(map[string]any, len(obj)+1)
	for k, v := range obj {
		fields[k] = v
	}
	p := &Problem{Fields: fields}
	switch v := obj["PID"].(type) {
	case string:
		p.PID = strings.TrimSpace(v)
	case float64:
		p.PID = strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
	default:
		return nil, fmt.Errorf(`field "PID": must be a string or a number, not %s`, httpingest.ValueKind(v))
	}
	if p.PID == "" || p.PID == "{PID}" {
		return nil, errors.New(`field "PID": missing (the payload template needs "PID": "{PID}")`)
	}
	fields["PID"] = p.PID
	st, isStr := obj["State"].(string)
	st = strings.ToUpper(strings.TrimSpace(st))
	if !isStr || st == "" || st == "{STATE}" {
		return nil, fmt.Errorf(`field "State": must be OPEN or RESOLVED, not %s (the payload template needs "State": "{State}")`, httpingest.DescribeValue(obj["State"]))
	}
	p.State = st
	fields["State"] = st
	for _, k := range []string{"ProblemID", "ProblemTitle", "ProblemSeverity", "ProblemImpact", "ProblemURL", "Problem URL", "ImpactedEntity"} {
		if v, ok := obj[k]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				return nil, fmt.Errorf("field %q: must be a string, not %s", k, httpingest.ValueKind(v))
			}
		}
	}
	if _, ok := obj["ProblemURL"]; !ok {
		if u, ok := obj["Problem URL"].(string); ok {
			fields["ProblemURL"] = u
		}
	}

	tags, err := decodeTags(obj["Tags"])
	if err != nil {
		return nil, fmt.Errorf(`field "Tags": %w`, err)
	}
	fields["Tags"] = tags

	if v, ok := obj["ProblemDetailsJSON"]; ok {
		if s, isStr := v.(string); isStr && strings.TrimSpace(s) != "" {
			var parsed any
			if json.Unmarshal([]byte(s), &parsed) == nil {
				fields["ProblemDetailsJSON"] = parsed
			}
		}
	}

	entities, err := decodeEntities(obj["ImpactedEntities"])
	if err != nil {
		return nil, fmt.Errorf(`field "ImpactedEntities": %w`, err)
	}
	if _, ok := obj["ImpactedEntities"]; ok {
		fields["ImpactedEntities"] = entities
	}
	seen := map[string]bool{}
	p.Hosts = []string{}
	for _, e := range entities {
		m := e.(map[string]any)
		typ, _ := m["type"].(string)
		name, _ := m["name"].(string)
		name = strings.TrimSpace(name)
		if strings.EqualFold(typ, "HOST") && name != "" && !seen[name] {
			seen[name] = true
			p.Hosts = append(p.Hosts, name)
		}
	}
	return p, nil
}

// decodeTags reads {Tags}: a comma-separated string ("env:prod, team:web,
// [AWS]owner:ops") as a list of trimmed, non-empty tags; a list of strings
// is taken as is.
func decodeTags(v any) ([]any, error) {
	out := []any{}
	switch x := v.(type) {
	case nil:
	case string:
		for _, t := range strings.Split(x, ",") {
			if t = strings.TrimSpace(t); t != "" && t != "{Tags}" {
				out = append(out, t)
			}
		}
	case []any:
		for i, t := range x {
			s, ok := t.(string)
			if !ok {
				return nil, fmt.Errorf("item %d is %s, not a string", i, httpingest.ValueKind(t))
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	default:
		return nil, fmt.Errorf("must be a comma-separated string, not %s", httpingest.ValueKind(v))
	}
	return out, nil
}

// decodeEntities reads {ImpactedEntities}: a list of {type, name, entity},
// or that list quoted into a JSON string.
func decodeEntities(v any) ([]any, error) {
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		if s == "" || s == "{ImpactedEntities}" {
			return []any{}, nil
		}
		var parsed any
		if err := json.Unmarshal([]byte(s), &parsed); err != nil {
			return nil, errors.New("is a string that is not a JSON list (write {ImpactedEntities} unquoted in the template)")
		}
		v = parsed
	}
	switch x := v.(type) {
	case nil:
		return []any{}, nil
	case []any:
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("item %d is %s, not an entity object", i, httpingest.ValueKind(e))
			}
			for _, k := range []string{"type", "name", "entity"} {
				if f, ok := m[k]; ok && f != nil {
					if _, isStr := f.(string); !isStr {
						return nil, fmt.Errorf("item %d: %s is %s, not a string", i, k, httpingest.ValueKind(f))
					}
				}
			}
		}
		return x, nil
	}
	return nil, fmt.Errorf("is %s, not a list of entities", httpingest.ValueKind(v))
}
