package main

import (
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/sources/alertmanager"
	"github.com/rulebook-dev/rulebook/sources/dynatrace"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// registerReceivers wires the monitoring receivers, which share the HTTP
// hub with the webhook source.
func registerReceivers(reg *engine.Registry, hub *httpingest.Hub) {
	reg.RegisterSource(withSourcePaths(withSchema(alertmanager.Spec(hub), alertmanager.Schema()), httpTLSPaths...))
	reg.RegisterSource(withSourcePaths(withSchema(dynatrace.Spec(hub), dynatrace.Schema()), httpTLSPaths...))
}
