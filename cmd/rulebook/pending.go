package main

import (
	"errors"
	"io"
)

// Temporary until the journal, dispatcher and plugin packages land in this
// session; removed before the first push.
func cmdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("not wired yet")
}
func cmdAudit(args []string, stdout, stderr io.Writer) error   { return errors.New("not wired yet") }
func cmdPlugins(args []string, stdout, stderr io.Writer) error { return errors.New("not wired yet") }
