package main

import (
	"os"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/filesrc"
	"github.com/rulebook-dev/rulebook/sources/generic"
	"github.com/rulebook-dev/rulebook/sources/rangesrc"
)

// registryOptions say what a registry needs beyond the built-ins.
type registryOptions struct {
	rulebookPath string
	pluginDirs   []string
	log          zerolog.Logger
}

// newRegistry is the one place where source and action types are wired.
// The returned func releases what the registry started (plugin processes).
func newRegistry(opts registryOptions) (*engine.Registry, func(), error) {
	reg := engine.NewRegistry()
	reg.RegisterSource(rangesrc.Spec())
	reg.RegisterSource(generic.Spec())
	reg.RegisterSource(filesrc.Spec(os.Stdin))
	return reg, func() {}, nil
}
