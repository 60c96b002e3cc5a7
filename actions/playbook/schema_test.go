package playbook

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compileSchema(t *testing.T, s map[string]any) *jsonschema.Schema {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return sch
}

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
		sch := compileSchema(t, tc.schema)
		for _, doc := range tc.docs {
			var args map[string]any
			if err := json.Unmarshal([]byte(doc), &args); err != nil {
				t.Fatal(err)
			}
			inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
			schemaErr := sch.Validate(inst)
			checkErr := tc.check(args)
			if (schemaErr == nil) != (checkErr == nil) {
				t.Errorf("%s %s: schema says %v, Check says %v", tc.name, doc, schemaErr, checkErr)
			}
		}
	}
}
