package kafkaconn

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rulebook-dev/rulebook/internal/schematest"
)

// The schema fragments accept what the parsers accept, on these documents.
func TestSchemaAgreesWithParse(t *testing.T) {
	root := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"type":                 "object",
		"additionalProperties": false,
		"properties": map[string]any{
			"brokers": BrokersSchema(),
			"tls":     TLSSchema(),
			"sasl":    SASLSchema(map[string]any{"type": "string", "pattern": `\$\{`}),
		},
	}
	sch := schematest.Compile(t, root)
	for _, d := range []string{
		`{"brokers": "a:1"}`,
		`{"brokers": ["a:1", "b:2"]}`,
		`{"brokers": "a:1", "tls": true}`,
		`{"brokers": "a:1", "tls": false}`,
		`{"brokers": "a:1", "tls": {"ca": "/ca.pem", "cert": "/c.pem", "key": "/k.pem", "insecure_skip_verify": true}}`,
		`{"brokers": "a:1", "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "${env:PW}"}}`,
		`{"brokers": "a:1", "sasl": {"mechanism": "${env:M}", "username": "u"}}`,
		`{"brokers": []}`,
		`{"brokers": "a:1", "tls": "yes"}`,
		`{"brokers": "a:1", "tls": {"cafile": "x"}}`,
		`{"brokers": "a:1", "tls": {"cert": "/c.pem"}}`,
		`{"brokers": "a:1", "tls": {"key": "/k.pem"}}`,
		`{"brokers": "a:1", "sasl": {"mechanism": "gssapi", "username": "u"}}`,
		`{"brokers": "a:1", "sasl": {"mechanism": "plain"}}`,
		`{"brokers": "a:1", "sasl": {"mechanism": "plain", "username": "u", "user": "x"}}`,
	} {
		var v map[string]any
		if err := json.Unmarshal([]byte(d), &v); err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(d)))
		if err != nil {
			t.Fatal(err)
		}
		schemaOK := sch.Validate(inst) == nil
		_, err = ParseBrokers(v["brokers"], secretRef)
		if err == nil {
			_, err = ParseTLS(v["tls"])
		}
		if err == nil {
			_, err = ParseSASL(v["sasl"], secretRef)
		}
		if parseOK := err == nil; schemaOK != parseOK {
			t.Errorf("%s: schema accepts %v, parse accepts %v (%v)", d, schemaOK, parseOK, err)
		}
	}
}
