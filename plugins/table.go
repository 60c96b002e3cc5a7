package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// ListTable writes `rulebook plugins list`: one line per plugin with its
// name, version, actions, status and path. A plugin that could not start
// shows "error", and the reasons follow the table.
func ListTable(w io.Writer, infos []Info) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tACTIONS\tSTATUS\tPATH")
	for _, in := range infos {
		names := make([]string, len(in.Actions))
		for i, a := range in.Actions {
			names[i] = a.Name
		}
		actions, st, version := strings.Join(names, ","), "ok", in.Version
		if actions == "" {
			actions = "-"
		}
		if version == "" {
			version = "-"
		}
		if in.Err != nil {
			st = "error"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", in.Name, version, actions, st, in.Path)
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

// ListSearched writes which directories `rulebook plugins list` searched
// for rulebook-plugin-* executables, and says of each whether it exists;
// fromFlag says they came from --plugins-dir rather than the defaults.
func ListSearched(w io.Writer, dirs []string, fromFlag bool) error {
	how := "default: plugins/ in the working directory and beside the rulebook binary; --plugins-dir to change"
	if fromFlag {
		how = "--plugins-dir"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nsearched (%s):\n", how)
	for _, d := range dirs {
		note := ""
		if st, err := os.Stat(d); err != nil {
			note = " (does not exist)"
		} else if !st.IsDir() {
			note = " (not a directory)"
		}
		fmt.Fprintf(&b, "  %s%s\n", d, note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Describe writes `rulebook plugins describe NAME`: the plugin's
// identity, then each action with its description and argument schema.
func Describe(w io.Writer, in Info) error {
	var b strings.Builder
	fmt.Fprintf(&b, "name:        %s\n", in.Name)
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
	for _, a := range in.Actions {
		fmt.Fprintf(&b, "\naction %s\n", a.Name)
		if a.Description != "" {
			fmt.Fprintf(&b, "  %s\n", a.Description)
		}
		if strings.TrimSpace(a.Schema) == "" {
			b.WriteString("  arguments: any object\n")
			continue
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, []byte(a.Schema), "  ", "  "); err != nil {
			pretty.Reset()
			pretty.WriteString(a.Schema)
		}
		fmt.Fprintf(&b, "  arguments schema:\n  %s\n", pretty.String())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
