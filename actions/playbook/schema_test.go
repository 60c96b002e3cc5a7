package playbook

import (
	"testing"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
)

// The published schema agrees with Check on typical arguments.
func TestSchemaAgreesWithCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema map[string]any
		check  func(map[string]any) error
		docs   []string
	}{
		{"run_playbook", PlaybookSchema(), CheckPlaybook, []string{
			`{"name":"my_ns.my_coll.site","limit":["a","b"],"verbosity":2,"check":true,"extra_vars":{"x":1},"set_facts":true,"retries":2}`,
			`{"name":"{{ vars.play }}","verbosity":"{{ vars.v }}"}`,
			`{"name":"a.b.c","verbosity":7}`,
			`{"name":"a.b.c","module_args":{}}`,
			`{"name":"a.b.c","extra_vars":{"ansible_eda":1}}`,
			`{"limit":"x"}`,
		}},
		{"run_module", ModuleSchema(), CheckModule, []string{
			`{"name":"ansible.builtin.copy","module_args":{"dest":"/x"},"limit":"web"}`,
			`{"name":"ping","set_facts":true}`,
			`{"name":"ping","module_args":[1]}`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checktest.SchemaAgrees(t, tc.schema, tc.check, tc.docs...)
		})
	}
}
