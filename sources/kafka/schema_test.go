package kafka

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rulebook-dev/rulebook/internal/schematest"
)

// The CLI registers the spec as it is: the spec carries the schema.
func TestSpecCarriesTheSchema(t *testing.T) {
	s := Spec()
	if !reflect.DeepEqual(s.Schema, Schema()) {
		t.Fatalf("Spec().Schema = %v, want Schema()", s.Schema)
	}
	if s.Check == nil || s.New == nil {
		t.Fatal("Spec() lacks Check or New")
	}
}

// The published schema accepts exactly what Check accepts, on these
// documents.
func TestSchemaAgreesWithCheck(t *testing.T) {
	sch := schematest.Compile(t, Schema())
	for _, d := range []string{
		`{"brokers": "a:1", "topic": "t"}`,
		`{"brokers": ["a:1", "b:2"], "topics": ["t", "u"], "group_id": "g", "offset": "latest", "format": "text"}`,
		`{"brokers": "a:1,b:2", "topic_pattern": "^alerts-", "dead_letter_topic": "dlq", "dedupe": false}`,
		`{"brokers": "a:1", "topic": "t", "tls": true, "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "${env:PW}"}}`,
		`{"brokers": "a:1", "topic": "t", "tls": {"ca": "/ca.pem", "cert": "/c.pem", "key": "/k.pem", "insecure_skip_verify": true}}`,
		`{"brokers": "a:1", "topic": "t", "session_timeout": "10s", "heartbeat_interval": 1, "commit_interval": 0.5, "batch_size": 10}`,
		`{"brokers": "${env:B}", "topic": "t", "offset": "${env:O}", "max_wait": "${env:W}"}`,
		`{"brokers": "a:1"}`,
		`{"topic": "t"}`,
		`{"brokers": "a:1", "topic": "t", "topics": "u"}`,
		`{"brokers": "a:1", "topic": "t", "topik": "x"}`,
		`{"brokers": "a:1", "topic": "t", "offset": "middle"}`,
		`{"brokers": "a:1", "topic": "t", "format": "xml"}`,
		`{"brokers": "a:1", "topic": "t", "dedupe": "yes"}`,
		`{"brokers": "a:1", "topic": "t", "tls": {"cert": "/c.pem"}}`,
		`{"brokers": "a:1", "topic": "t", "tls": {"cafile": "x"}}`,
		`{"brokers": "a:1", "topic": "t", "sasl": {"mechanism": "gssapi", "username": "u"}}`,
		`{"brokers": "a:1", "topic": "t", "sasl": {"mechanism": "plain"}}`,
		`{"brokers": "a:1", "topic": "t", "session_timeout": "soon"}`,
		`{"brokers": "a:1", "topic": "t", "batch_size": 0}`,
		`{"brokers": "a:1", "topic": "t", "batch_size": 2.5}`,
		`{"brokers": 9092, "topic": "t"}`,
	} {
		var args map[string]any
		if err := json.Unmarshal([]byte(d), &args); err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(d)))
		if err != nil {
			t.Fatal(err)
		}
		schemaErr := sch.Validate(inst)
		checkErr := Check(args)
		if (schemaErr == nil) != (checkErr == nil) {
			t.Errorf("%s: schema says %v, Check says %v", d, schemaErr, checkErr)
		}
	}
}
