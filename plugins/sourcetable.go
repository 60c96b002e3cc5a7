package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// SourceListTable writes the source plugins part of `rulebook plugins
// list`: one line per plugin with its name, version, status and path,
// then the reasons of those that could not start.
func SourceListTable(w io.Writer, infos []SourceInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tVERSION\tSTATUS\tPATH")
	for _, in := range infos {
		st, version := "ok", in.Version
		if version == "" {
			version = "-"
		}
		if in.Err != nil {
			st = "error"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", in.Name, version, st, in.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, in := range infos {
		if in.Err != nil {
			if _, err := fmt.Fprintf(w, "\n%s: %s\n", in.Name, oneLine(in.Err.Error())); err != nil {
				return err
			}
		}
	}
	return nil
}

// DescribeSource writes `rulebook plugins describe NAME` for a source
// plugin: its identity and the JSON Schema of its arguments.
func DescribeSource(w io.Writer, in SourceInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "name:        %s\n", in.Name)
	b.WriteString("kind:        source\n")
	fmt.Fprintf(&b, "path:        %s\n", in.Path)
	if in.SHA256 != "" {
		fmt.Fprintf(&b, "sha256:      %s\n", in.SHA256)
	}
	if in.Version != "" {
		fmt.Fprintf(&b, "version:     %s\n", in.Version)
	}
	if in.ProtocolVersion != 0 {
		fmt.Fprintf(&b, "protocol:    %d\n", in.ProtocolVersion)
	}
	if in.Description != "" {
		fmt.Fprintf(&b, "description: %s\n", in.Description)
	}
	if in.Err != nil {
		fmt.Fprintf(&b, "error:       %s\n", oneLine(in.Err.Error()))
	}
	fmt.Fprintf(&b, "\nsource %s\n", in.Name)
	if strings.TrimSpace(in.Schema) == "" {
		b.WriteString("  arguments: any object\n")
	} else {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, []byte(in.Schema), "  ", "  "); err != nil {
			pretty.Reset()
			pretty.WriteString(in.Schema)
		}
		fmt.Fprintf(&b, "  arguments schema:\n  %s\n", pretty.String())
	}
	_, err := io.WriteString(w, b.String())
	return err
}
