// Package checktest holds test helpers for an action's argument checking:
// that Check rejects with an *engine.ArgError at the right path, that it
// never fails otherwise on any JSON input, and that the published JSON
// Schema accepts exactly what Check accepts.
package checktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/schematest"
)

// ArgError fails t unless err is nil when path is "", or else an
// *engine.ArgError at path (elements joined with ".") whose text contains
// has.
func ArgError(t testing.TB, err error, path, has string) {
	t.Helper()
	if path == "" {
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return
	}
	var ae *engine.ArgError
	if !errors.As(err, &ae) {
		t.Fatalf("Check = %v, want *engine.ArgError at %q", err, path)
	}
	if got := strings.Join(ae.Path, "."); got != path {
		t.Errorf("path = %q, want %q (err %v)", got, path, err)
	}
	if !strings.Contains(err.Error(), has) {
		t.Errorf("error %q does not contain %q", err, has)
	}
}

// FuzzArgs feeds check argument maps decoded from arbitrary JSON, starting
// from seeds: it must not panic and must return *engine.ArgError for what
// it rejects.
func FuzzArgs(f *testing.F, check func(map[string]any) error, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var args map[string]any
		if json.Unmarshal([]byte(s), &args) != nil {
			return
		}
		err := check(args)
		var ae *engine.ArgError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("Check(%s) = %T %v, want *engine.ArgError", s, err, err)
		}
	})
}

// CompileSchema compiles a JSON Schema given as a map, failing t when it
// does not compile.
func CompileSchema(t testing.TB, s map[string]any) *jsonschema.Schema {
	t.Helper()
	return schematest.Compile(t, s)
}

// SchemaAgrees checks that schema accepts each JSON document of arguments
// exactly when check does.
func SchemaAgrees(t testing.TB, schema map[string]any, check func(map[string]any) error, docs ...string) {
	t.Helper()
	sch := CompileSchema(t, schema)
	for _, doc := range docs {
		var args map[string]any
		if err := json.Unmarshal([]byte(doc), &args); err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
		if err != nil {
			t.Fatal(err)
		}
		schemaErr := sch.Validate(inst)
		checkErr := check(args)
		if (schemaErr == nil) != (checkErr == nil) {
			t.Errorf("%s: schema says %v, Check says %v", doc, schemaErr, checkErr)
		}
	}
}
