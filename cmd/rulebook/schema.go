package main

import (
	"io"

	"github.com/rulebook-dev/rulebook/rulebooks"
)

// schemaPath is where the checked-in schema lives; a test keeps it current.
const schemaPath = "rulebooks/rulebook.schema.json"

func cmdSchema(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("schema", "schema", stderr)
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	reg, closeReg, err := newRegistry(registryOptions{log: discardLog()})
	if err != nil {
		return err
	}
	defer closeReg()
	b, err := rulebooks.Schema(reg)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
