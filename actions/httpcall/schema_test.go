package httpcall

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
		`{"url":"https://h/x","method":"PUT","headers":{"A":"b","N":1},"body":{"a":[1]},"expect_status":[200,201],"timeout":"5s"}`,
		`{"url":"{{ vars.u }}","body":"{{ event.payload }}","tls":{"insecure_skip_verify":"{{ vars.i }}"}}`,
		`{"url":"http://h/","raw_body":"x=1"}`,
		`{"method":"GET"}`,
		`{"url":"http://h/","body":{},"raw_body":"x"}`,
		`{"url":"http://h/","tls":{"verify":false}}`,
		`{"url":"http://h/","expect_status":[99]}`,
		`{"url":"http://h/","method":"GET X"}`,
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
