package schematest

import (
	"testing"
)

func TestCompile(t *testing.T) {
	s := Compile(t, map[string]any{"type": "object", "required": []any{"a"}})
	if err := s.Validate(map[string]any{"a": 1.0}); err != nil {
		t.Errorf("valid document rejected: %v", err)
	}
	if err := s.Validate(map[string]any{}); err == nil {
		t.Error("a document without the required key was accepted")
	}
}
