package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/rulebook-dev/rulebook/plugins/proto"
)

// Serve serves p to the engine and returns when the engine stops the
// plugin. Call it from main. Run by hand (not by the engine), the binary
// prints that it is a plugin and exits with status 1.
func Serve(p Plugin) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: proto.Handshake(proto.ProtocolVersion),
		Plugins:         goplugin.PluginSet{proto.PluginKey: &grpcPlugin{impl: p}},
		GRPCServer:      goplugin.DefaultGRPCServer,
		Logger:          logger,
	})
}

// grpcPlugin is the plugin side of go-plugin's GRPCPlugin.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (g *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterActionPluginServer(s, newServer(g.impl, StateDir()))
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("the plugin side has no client")
}

// server adapts a Plugin to the generated gRPC service.
type server struct {
	proto.UnimplementedActionPluginServer
	impl     Plugin
	stateDir string

	mu       sync.Mutex
	inFlight map[uint64]context.Context
}

func newServer(impl Plugin, stateDir string) *server {
	return &server{impl: impl, stateDir: stateDir, inFlight: map[uint64]context.Context{}}
}

func (s *server) Describe(context.Context, *proto.DescribeRequest) (*proto.DescribeResponse, error) {
	info := s.impl.Describe()
	resp := &proto.DescribeResponse{
		Name:            info.Name,
		Version:         info.Version,
		Description:     info.Description,
		ProtocolVersion: proto.ProtocolVersion,
	}
	for _, a := range info.Actions {
		resp.Actions = append(resp.Actions, &proto.ActionInfo{
			Name:        a.Name,
			Description: a.Description,
			ArgsSchema:  a.Schema,
		})
	}
	return resp, nil
}

func (s *server) Invoke(ctx context.Context, in *proto.InvokeRequest) (*proto.InvokeResponse, error) {
	req := &Request{
		ID:          in.GetInvocationId(),
		FiringID:    in.GetFiringId(),
		Action:      in.GetAction(),
		Ruleset:     in.GetRuleset(),
		Rule:        in.GetRule(),
		Hosts:       in.GetHosts(),
		HostPattern: in.GetHostPattern(),
		StateDir:    s.stateDir,
	}
	req.Log = logger.With("action", req.Action, "invocation_id", req.ID, "rule", req.Rule)
	if err := decodeObject(in.GetArgsJson(), &req.Args); err != nil {
		return respond(Failure("decode arguments: %v", err))
	}
	if err := decodeObject(in.GetEventJson(), &req.Event); err != nil {
		return respond(Failure("decode event: %v", err))
	}
	if err := decodeObject(in.GetEventsJson(), &req.Events); err != nil {
		return respond(Failure("decode events: %v", err))
	}
	if req.Args == nil {
		req.Args = map[string]any{}
	}

	s.mu.Lock()
	s.inFlight[in.GetCallId()] = ctx
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inFlight, in.GetCallId())
		s.mu.Unlock()
	}()
	return respond(s.impl.Invoke(ctx, req))
}

func (s *server) Health(context.Context, *proto.HealthRequest) (*proto.HealthResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &proto.HealthResponse{InFlight: int32(len(s.inFlight))}
	for id, ctx := range s.inFlight {
		if ctx.Err() != nil {
			resp.AbandonedCalls = append(resp.AbandonedCalls, id)
		}
	}
	return resp, nil
}

func decodeObject(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

func respond(r Response) (*proto.InvokeResponse, error) {
	out := &proto.InvokeResponse{
		Output:       r.Output,
		Error:        r.Error,
		RetryAfterMs: r.RetryAfter.Milliseconds(),
		HttpStatus:   int32(r.HTTPStatus),
	}
	switch r.Status {
	case Succeeded:
		out.Status = proto.Status_STATUS_SUCCEEDED
	case Retryable:
		out.Status = proto.Status_STATUS_RETRYABLE
	case Failed:
		out.Status = proto.Status_STATUS_FAILED
	default:
		out.Status = proto.Status_STATUS_FAILED
		if out.Error == "" {
			out.Error = fmt.Sprintf("plugin returned no status (%d)", int(r.Status))
		}
	}
	var err error
	if out.DetailsJson, err = encodeNonEmpty(r.Details, len(r.Details)); err != nil {
		return failEncode("details", err), nil
	}
	if out.FactsJson, err = encodeNonEmpty(r.Facts, len(r.Facts)); err != nil {
		return failEncode("facts", err), nil
	}
	if out.EventsJson, err = encodeNonEmpty(r.Events, len(r.Events)); err != nil {
		return failEncode("events", err), nil
	}
	return out, nil
}

func encodeNonEmpty(v any, n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	return json.Marshal(v)
}

func failEncode(what string, err error) *proto.InvokeResponse {
	return &proto.InvokeResponse{
		Status: proto.Status_STATUS_FAILED,
		Error:  fmt.Sprintf("plugin result %s cannot be encoded as JSON: %v", what, err),
	}
}
