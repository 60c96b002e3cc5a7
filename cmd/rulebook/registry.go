package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/awx"
	"github.com/rulebook-dev/rulebook/actions/command"
	"github.com/rulebook-dev/rulebook/actions/httpcall"
	kafkaaction "github.com/rulebook-dev/rulebook/actions/kafka"
	"github.com/rulebook-dev/rulebook/actions/playbook"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/plugins"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/filesrc"
	"github.com/rulebook-dev/rulebook/sources/filewatch"
	"github.com/rulebook-dev/rulebook/sources/generic"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
	"github.com/rulebook-dev/rulebook/sources/journald"
	kafkasource "github.com/rulebook-dev/rulebook/sources/kafka"
	"github.com/rulebook-dev/rulebook/sources/mqtt"
	"github.com/rulebook-dev/rulebook/sources/rangesrc"
	"github.com/rulebook-dev/rulebook/sources/sse"
	"github.com/rulebook-dev/rulebook/sources/tick"
	"github.com/rulebook-dev/rulebook/sources/urlcheck"
	"github.com/rulebook-dev/rulebook/sources/webhook"
	"github.com/rulebook-dev/rulebook/sources/websocket"
)

// registryOptions say what a registry needs beyond the built-ins.
type registryOptions struct {
	rulebookPath string
	// rulebook, when set, is the rulebook at rulebookPath already read,
	// so its declared plugins are found without parsing it again.
	rulebook   *rulebooks.File
	pluginDirs []string
	// pluginState is the plugins' state directory (the data dir's plugins/).
	pluginState string
	// hub serves the HTTP sources; nil builds one that is never started
	// (validate, test, schema only check arguments).
	hub *httpingest.Hub
	// log is the process's logger, without a component: the plugin hosts
	// and the hub add theirs.
	log zerolog.Logger
	// sourceDirs are --source-dir: where EDA Python source plugins are.
	sourceDirs []string
	// controller is where run_job_template launches; controllerErr, when
	// set, is why it cannot (a token reference that does not resolve).
	controller    awx.Controller
	controllerErr error
	// inventory is run --inventory: run_playbook/run_module use it when
	// they name none.
	inventory string
}

// wiring is what newRegistry built and its owner must release.
type wiring struct {
	reg  *engine.Registry
	host *plugins.Host
	// sourceHost runs the source plugins (nil when there are none).
	sourceHost *plugins.SourceHost
}

// newRegistry is the one place where source and action types are wired.
// The returned func releases what the registry started (plugin processes).
func newRegistry(opts registryOptions) (*engine.Registry, func(), error) {
	w, err := buildRegistry(opts)
	if err != nil {
		return nil, func() {}, err
	}
	return w.reg, func() {
		if w.host != nil {
			w.host.Close()
		}
	}, nil
}

func buildRegistry(opts registryOptions) (*wiring, error) {
	hub := opts.hub
	if hub == nil {
		hub = httpingest.NewHub(httpingest.HubConfig{Log: opts.log})
	}
	reg := engine.NewRegistry()
	reg.RegisterSource(rangesrc.Spec())
	reg.RegisterSource(generic.Spec())
	reg.RegisterSource(tick.Spec())
	reg.RegisterSource(urlcheck.Spec())
	reg.RegisterSource(filewatch.Spec())
	reg.RegisterSource(filesrc.Spec(os.Stdin))
	reg.RegisterSource(withSourcePaths(withSchema(webhook.Spec(hub), webhook.Schema()), httpTLSPaths...))
	reg.RegisterSource(kafkasource.Spec())
	reg.RegisterSource(sse.Spec())
	reg.RegisterSource(websocket.Spec())
	reg.RegisterSource(mqtt.Spec())
	reg.RegisterSource(journald.Spec())
	registerReceivers(reg, hub)

	reg.RegisterAction(withActionPaths(withActionSchema(playbook.WithInventory(playbook.PlaybookSpec(), opts.inventory), playbook.PlaybookSchema()), "name", "inventory"))
	reg.RegisterAction(withActionPaths(withActionSchema(playbook.WithInventory(playbook.ModuleSpec(), opts.inventory), playbook.ModuleSchema()), "inventory"))
	reg.RegisterAction(withActionPaths(withActionSchema(command.Spec(), command.Schema()), "dir"))
	reg.RegisterAction(withActionPaths(withActionSchema(httpcall.Spec(), httpcall.Schema()), "tls.ca", "tls.cert", "tls.key"))
	reg.RegisterAction(kafkaaction.Spec())
	registerEDA(reg, opts)

	w := &wiring{reg: reg}
	dirs := opts.pluginDirs
	var declared, declaredSources []plugins.Declared
	if opts.rulebookPath != "" {
		file := opts.rulebook
		if file == nil {
			var err error
			if file, err = rulebooks.ReadFile(opts.rulebookPath); err != nil {
				return nil, err
			}
		}
		for _, d := range file.DeclaredPlugins() {
			pd := plugins.Declared{Name: d.Name, Path: d.Path, SHA256: d.SHA256}
			if plugins.IsSourcePath(d.Path) {
				declaredSources = append(declaredSources, pd)
			} else {
				declared = append(declared, pd)
			}
		}
	}
	if len(dirs) == 0 {
		exe, _ := os.Executable()
		var rbs []string
		if opts.rulebookPath != "" {
			rbs = []string{opts.rulebookPath}
		}
		dirs = plugins.DefaultDirs(rbs, exe)
	}
	if plugins.AnySourcePlugins(dirs) || len(declaredSources) > 0 {
		sh, err := startSourcePlugins(dirs, declaredSources, opts)
		if err != nil {
			return nil, err
		}
		if err := sh.Register(reg); err != nil {
			return nil, err
		}
		w.sourceHost = sh
	}
	if !anyPlugins(dirs) && len(declared) == 0 {
		return w, nil
	}
	host, err := plugins.NewHost(plugins.Options{Dirs: dirs, Declared: declared, StateDir: opts.pluginState, Log: opts.log})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	infos, err := host.Start(ctx)
	for _, in := range infos {
		if in.Err != nil {
			opts.log.Error().Str("component", "plugins").Str("plugin", in.Name).Str("path", in.Path).Err(in.Err).Msg("plugin not started")
		}
	}
	if err != nil {
		// A declared plugin that cannot start (a checksum mismatch, an old
		// protocol) is an error: its actions would be unknown.
		for _, in := range infos {
			if in.Declared && in.Err != nil {
				host.Close()
				return nil, in.Err // names the plugin, its path and what is wrong
			}
		}
	}
	if err := host.Register(reg); err != nil {
		host.Close()
		return nil, err
	}
	w.host = host
	return w, nil
}

// anyPlugins reports whether a plugin directory holds a plugin, so the host
// (and its processes) only start when there is something to start.
func anyPlugins(dirs []string) bool {
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, plugins.FilePrefix+"*"))
		if len(m) > 0 {
			return true
		}
	}
	return false
}

func withSchema(s engine.SourceSpec, schema map[string]any) engine.SourceSpec {
	if s.Schema == nil {
		s.Schema = schema
	}
	return s
}

// httpTLSPaths are the file arguments every HTTP source shares.
var httpTLSPaths = []string{"tls.cert", "tls.key", "tls.client_ca"}

func withSourcePaths(s engine.SourceSpec, keys ...string) engine.SourceSpec {
	s.PathArgs = append(s.PathArgs, keys...)
	return s
}

func withActionPaths(a engine.ActionSpec, keys ...string) engine.ActionSpec {
	a.PathArgs = append(a.PathArgs, keys...)
	return a
}

func withActionSchema(a engine.ActionSpec, schema map[string]any) engine.ActionSpec {
	if a.Schema == nil {
		a.Schema = schema
	}
	return a
}

// startSourcePlugins describes the source plugins. One that cannot be
// described is logged; a declared one is an error (its sources would be
// unknown).
func startSourcePlugins(dirs []string, declared []plugins.Declared, opts registryOptions) (*plugins.SourceHost, error) {
	sh := plugins.NewSourceHost(plugins.SourceOptions{Dirs: dirs, Declared: declared, StateDir: opts.pluginState, Log: opts.log})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	infos, _ := sh.Start(ctx)
	for _, in := range infos {
		if in.Err == nil {
			continue
		}
		if in.Declared {
			return nil, in.Err
		}
		opts.log.Error().Str("component", "source-plugins").Str("plugin", in.Name).Str("path", in.Path).Err(in.Err).Msg("source plugin not started")
	}
	return sh, nil
}
