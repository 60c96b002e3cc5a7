package command

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
	sch := compileSchema(t, Schema())
	for _, doc := range []string{
		`{"argv":["systemctl","restart","{{ event.service }}"],"env":{"A":"1"},"stdin":"none","success_exit_codes":[0,3],"output_limit":"64KiB","timeout":"30s"}`,
		`{"argv":"echo hi | wc -c","shell":true}`,
		`{"argv":["x"],"shell":"{{ vars.s }}","retry_exit_codes":"{{ vars.r }}"}`,
		`{"argv":[]}`,
		`{"argv":["x"],"stdin":"file"}`,
		`{"argv":["x"],"unknown":1}`,
		`{"argv":["x"],"success_exit_codes":[300]}`,
		`{"env":{}}`,
	} {
		var args map[string]any
		if err := json.Unmarshal([]byte(doc), &args); err != nil {
			t.Fatal(err)
		}
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
		schemaErr := sch.Validate(inst)
		checkErr := Check(args)
		if (schemaErr == nil) != (checkErr == nil) {
			t.Errorf("%s: schema says %v, Check says %v", doc, schemaErr, checkErr)
		}
	}
}
