package kafka

import (
	"reflect"
	"testing"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
)

func TestSchemaAgreesWithCheck(t *testing.T) {
	checktest.SchemaAgrees(t, Schema(), Check,
		`{"brokers": "a:1", "topic": "t", "value": "x"}`,
		`{"brokers": ["a:1", "b:2"], "topic": "t", "key": "k", "value": {"a": [1, 2]}, "headers": {"h": "v", "n": 1}}`,
		`{"brokers": "{{ vars.brokers }}", "topic": "{{ event.topic }}", "value": "{{ event }}", "headers": "{{ vars.h }}"}`,
		`{"brokers": "a:1", "topic": "t", "value": null, "tls": {"ca": "/ca.pem"}, "sasl": {"mechanism": "SCRAM-SHA-256", "username": "u", "password": "${env:PW}"}}`,
		`{"brokers": "a:1", "topic": "t", "value": "x", "tls": true}`,
		`{"topic": "t", "value": "x"}`,
		`{"brokers": "a:1", "value": "x"}`,
		`{"brokers": "a:1", "topic": "t"}`,
		`{"brokers": "a:1", "topic": "t", "value": "x", "acks": 1}`,
		`{"brokers": "a:1", "topic": "t", "value": "x", "headers": "a=b"}`,
		`{"brokers": "a:1", "topic": "t", "value": "x", "headers": {"a": []}}`,
		`{"brokers": "a:1", "topic": "t", "value": "x", "key": {"a": 1}}`,
		`{"brokers": "a:1", "topic": "t", "value": "x", "tls": {"key": "k"}}`,
		`{"brokers": "a:1", "topic": "t", "value": "x", "sasl": {"mechanism": "md5", "username": "u"}}`,
		`{"brokers": 1, "topic": "t", "value": "x"}`,
	)
}

// The CLI publishes the schema the spec carries, as for every other action.
func TestSpecCarriesTheSchema(t *testing.T) {
	s := Spec()
	if !reflect.DeepEqual(s.Schema, Schema()) {
		t.Fatalf("Spec().Schema = %v, want Schema()", s.Schema)
	}
	if s.Check == nil || s.New == nil {
		t.Fatal("Spec() lacks Check or New")
	}
}

func FuzzCheckJSON(f *testing.F) {
	checktest.FuzzArgs(f, Check,
		`{"brokers": "a:1", "topic": "t", "value": "x"}`,
		`{"brokers": ["a:1"], "topic": "{{ x }}", "key": 1, "value": [1], "headers": {"h": true}, "tls": {"ca": "c"}, "sasl": {"mechanism": "plain", "username": "u"}}`,
	)
}
