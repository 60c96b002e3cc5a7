package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/plugins"
)

func cmdPlugins(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plugins", "plugins list | describe NAME [--plugins-dir DIR]", stderr)
	dirs := addPluginFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || (pos[0] == "list" && len(pos) != 1) || (pos[0] == "describe" && len(pos) != 2) || (pos[0] != "list" && pos[0] != "describe") {
		fs.Usage()
		return errUsage
	}
	d := *dirs
	if len(d) == 0 {
		// As run does for a rulebook in the working directory: plugins/
		// here, then plugins/ beside the binary.
		exe, _ := os.Executable()
		d = plugins.DefaultDirs([]string{"rulebook.yml"}, exe)
	}
	host, err := plugins.NewHost(plugins.Options{Dirs: d, Log: discardLog()})
	if err != nil {
		return err
	}
	defer host.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	infos, _ := host.Start(ctx)
	sources := plugins.NewSourceHost(plugins.SourceOptions{Dirs: d, Log: discardLog()})
	sourceInfos, _ := sources.Start(ctx)
	if pos[0] == "list" {
		if len(infos) == 0 && len(sourceInfos) == 0 {
			fmt.Fprintln(stdout, "no plugins found")
		} else {
			if len(infos) > 0 {
				if err := plugins.ListTable(stdout, infos); err != nil {
					return err
				}
			}
			if len(sourceInfos) > 0 {
				if len(infos) > 0 {
					fmt.Fprintln(stdout)
				}
				if err := plugins.SourceListTable(stdout, sourceInfos); err != nil {
					return err
				}
			}
		}
		return plugins.ListSearched(stdout, d, len(*dirs) > 0)
	}
	in, ok := host.Info(pos[1])
	if !ok {
		if si, ok := sources.Info(pos[1]); ok {
			return plugins.DescribeSource(stdout, si)
		}
		return fmt.Errorf("no plugin named %q in %s", pos[1], strings.Join(d, ", "))
	}
	return plugins.Describe(stdout, in)
}
