package plugins

import (
	"fmt"
	"io"
	"strings"
)

// SourceListTable writes the source plugins part of `rulebook plugins
// list`: one line per plugin with its name, version, status and path,
// then the reasons of those that could not start.
func SourceListTable(w io.Writer, infos []SourceInfo) error {
	rows := make([]listRow, len(infos))
	for i, in := range infos {
		rows[i] = listRow{name: in.Name, version: in.Version, path: in.Path, err: in.Err}
	}
	return writeList(w, "SOURCE\tVERSION\tSTATUS\tPATH", rows)
}

// DescribeSource writes `rulebook plugins describe NAME` for a source
// plugin: its identity and the JSON Schema of its arguments.
func DescribeSource(w io.Writer, in SourceInfo) error {
	var b strings.Builder
	writeIdentity(&b, identity{name: in.Name, kind: "source", path: in.Path, sha256: in.SHA256, version: in.Version,
		protocol: in.ProtocolVersion, description: in.Description, err: in.Err})
	fmt.Fprintf(&b, "\nsource %s\n", in.Name)
	writeArgsSchema(&b, in.Schema)
	_, err := io.WriteString(w, b.String())
	return err
}
