package httpcall

import (
	"testing"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
)

// The published schema agrees with Check on typical arguments.
func TestSchemaAgreesWithCheck(t *testing.T) {
	checktest.SchemaAgrees(t, Schema(), Check,
		`{"url":"https://h/x","method":"PUT","headers":{"A":"b","N":1},"body":{"a":[1]},"expect_status":[200,201],"timeout":"5s"}`,
		`{"url":"{{ vars.u }}","body":"{{ event.payload }}","tls":{"insecure_skip_verify":"{{ vars.i }}"}}`,
		`{"url":"http://h/","raw_body":"x=1"}`,
		`{"method":"GET"}`,
		`{"url":"http://h/","body":{},"raw_body":"x"}`,
		`{"url":"http://h/","tls":{"verify":false}}`,
		`{"url":"http://h/","expect_status":[99]}`,
		`{"url":"http://h/","method":"GET X"}`,
		`{"url":"http://h/","method":"PSOT"}`,
		`{"url":"http://h/","method":"Patch"}`,
		`{"url":"http://h/","method":"delete"}`,
		`{"url":"http://h/","method":"CONNECT"}`,
		`{"url":"http://h/","method":"{{ vars.method }}"}`,
	)
}
