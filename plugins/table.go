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
	rows := make([]listRow, len(infos))
	for i, in := range infos {
		names := make([]string, len(in.Actions))
		for i, a := range in.Actions {
			names[i] = a.Name
		}
		rows[i] = listRow{name: in.Name, version: in.Version, extra: []string{dash(strings.Join(names, ","))}, path: in.Path, err: in.Err}
	}
	return writeList(w, "NAME\tVERSION\tACTIONS\tSTATUS\tPATH", rows)
}

// listRow is one plugin's line in `rulebook plugins list`.
type listRow struct {
	name, version, path string
	extra               []string // the columns between version and status
	err                 error
}

// writeList writes the table of rows under header (tab-separated): name,
// version ("-" when unknown), the extra columns, status ("ok" or "error")
// and path; then the reason of each row that has an error.
func writeList(w io.Writer, header string, rows []listRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		st := "ok"
		if r.err != nil {
			st = "error"
		}
		cells := append(append([]string{r.name, dash(r.version)}, r.extra...), st, r.path)
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.err != nil {
			if _, err := fmt.Fprintf(w, "\n%s: %s\n", r.name, oneLine(r.err.Error())); err != nil {
				return err
			}
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
	writeIdentity(&b, identity{name: in.Name, path: in.Path, sha256: in.SHA256, version: in.Version,
		protocol: in.ProtocolVersion, description: in.Description, err: in.Err})
	for _, a := range in.Actions {
		fmt.Fprintf(&b, "\naction %s\n", a.Name)
		if a.Description != "" {
			fmt.Fprintf(&b, "  %s\n", a.Description)
		}
		writeArgsSchema(&b, a.Schema)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// identity is what `rulebook plugins describe` says first of any plugin;
// kind is left out when empty.
type identity struct {
	name, kind, path, sha256, version string
	protocol                          int
	description                       string
	err                               error
}

func writeIdentity(b *strings.Builder, id identity) {
	fmt.Fprintf(b, "name:        %s\n", id.name)
	if id.kind != "" {
		fmt.Fprintf(b, "kind:        %s\n", id.kind)
	}
	fmt.Fprintf(b, "path:        %s\n", id.path)
	if id.sha256 != "" {
		fmt.Fprintf(b, "sha256:      %s\n", id.sha256)
	}
	if id.version != "" {
		fmt.Fprintf(b, "version:     %s\n", id.version)
	}
	if id.protocol != 0 {
		fmt.Fprintf(b, "protocol:    %d\n", id.protocol)
	}
	if id.description != "" {
		fmt.Fprintf(b, "description: %s\n", id.description)
	}
	if id.err != nil {
		fmt.Fprintf(b, "error:       %s\n", oneLine(id.err.Error()))
	}
}

// writeArgsSchema writes an arguments schema (blank: any object),
// indented, as sent when it is not valid JSON.
func writeArgsSchema(b *strings.Builder, schema string) {
	if strings.TrimSpace(schema) == "" {
		b.WriteString("  arguments: any object\n")
		return
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(schema), "  ", "  "); err != nil {
		pretty.Reset()
		pretty.WriteString(schema)
	}
	fmt.Fprintf(b, "  arguments schema:\n  %s\n", pretty.String())
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
