package command

import (
	"testing"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
)

// The published schema agrees with Check on typical arguments.
func TestSchemaAgreesWithCheck(t *testing.T) {
	checktest.SchemaAgrees(t, Schema(), Check,
		`{"argv":["systemctl","restart","{{ event.service }}"],"env":{"A":"1"},"stdin":"none","success_exit_codes":[0,3],"output_limit":"64KiB","timeout":"30s"}`,
		`{"argv":"echo hi | wc -c","shell":true}`,
		`{"argv":["x"],"shell":"{{ vars.s }}","retry_exit_codes":"{{ vars.r }}"}`,
		`{"argv":[]}`,
		`{"argv":["x"],"stdin":"file"}`,
		`{"argv":["x"],"unknown":1}`,
		`{"argv":["x"],"success_exit_codes":[300]}`,
		`{"env":{}}`,
	)
}
