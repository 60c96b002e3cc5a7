package argvalue

import (
	"testing"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
	"github.com/rulebook-dev/rulebook/engine"
)

// A schema made by ObjectSchema accepts the policy keys IsPolicyKey knows,
// rejects unknown keys, needs the required ones and takes a template
// wherever OrTemplate allows one. (A size string above max, such as
// "2MiB" here, passes the schema and fails Size: the pattern cannot bound
// it; the loader runs Check after the schema.)
func TestObjectSchema(t *testing.T) {
	s := ObjectSchema("t", "d", map[string]any{
		"n":       OrTemplate(map[string]any{"type": "integer"}),
		"size":    SizeSchema(1<<20, "bytes"),
		"retries": map[string]any{"type": "integer", "description": "own text"},
	}, "n")
	props := s["properties"].(map[string]any)
	for k := range policyDescriptions {
		if !IsPolicyKey(k) {
			t.Errorf("schema describes %q, which IsPolicyKey does not know", k)
		}
	}
	for k := range policyKeys {
		if _, ok := props[k]; !ok {
			t.Errorf("policy key %q missing from the schema", k)
		}
	}
	if d := props["retries"].(map[string]any)["description"]; d != "own text" {
		t.Errorf("retries description = %v, want the action's own", d)
	}
	checktest.SchemaAgrees(t, s, func(args map[string]any) error {
		if _, ok := args["n"]; !ok {
			return engine.ArgErrorf([]string{"n"}, "is required")
		}
		for k, v := range args {
			switch k {
			case "n":
				if _, _, err := Int([]string{k}, v, true); err != nil {
					return err
				}
			case "size":
				if _, err := Size([]string{k}, v, true, 1<<20); err != nil {
					return err
				}
			case "retries":
				if _, _, err := Int([]string{k}, v, false); err != nil {
					return err
				}
			default:
				if !IsPolicyKey(k) {
					return engine.ArgErrorf([]string{k}, "unknown key")
				}
			}
		}
		return nil
	},
		`{"n":1}`,
		`{"n":"{{ vars.n }}","timeout":"5s","lock":"x","delay":1,"max_delay":"1m"}`,
		`{"n":1,"size":"64KiB"}`,
		`{"n":1,"size":4096}`,
		`{"n":1,"size":"{{ vars.s }}"}`,
		`{"n":1,"size":"lots"}`,
		`{"n":1,"retries":2}`,
		`{"n":1,"retries":"x"}`,
		`{"n":"seven"}`,
		`{"size":1}`,
		`{"n":1,"other":1}`,
	)
}
