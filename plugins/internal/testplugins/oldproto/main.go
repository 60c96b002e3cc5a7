// Command oldproto is a test plugin built for an older plugin protocol
// version than the engine's: the engine must refuse it with a message that
// names both versions.
package main

import (
	"context"
	"errors"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/rulebook-dev/rulebook/plugins/proto"
)

type old struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (old) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error { return nil }

func (old) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("server only")
}

func main() {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: proto.Handshake(proto.ProtocolVersion - 1),
		Plugins:         goplugin.PluginSet{proto.PluginKey: old{}},
		GRPCServer:      goplugin.DefaultGRPCServer,
	})
}
