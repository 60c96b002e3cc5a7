package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rulebook-dev/rulebook/plugins/proto"
)

// A source plugin is a separate executable, rulebook-source-NAME, that
// produces events. Its main is one call:
//
//	func main() { sdk.ServeSource(info, run) }
//
// The engine finds it like an action plugin (a plugins directory, or a
// rulebook's `plugins:` with path and sha256), checks the source's
// arguments against info.Schema when it loads the rulebook (`- NAME: {...}`
// in a ruleset's sources), and calls run with them. run emits events with
// emit, which returns only once the engine has made the event durable; the
// position given with an event (an offset, a cursor, a timestamp: any
// string) is stored with it, and the next run (after a crash of the plugin
// or a restart of the engine) gets the last durable one as resumeFrom. A
// plugin that resumes right after resumeFrom delivers every event once.

// SourceInfo describes a source plugin.
type SourceInfo struct {
	// Name is the source type rulebooks use (the NAME of
	// rulebook-source-NAME).
	Name        string
	Version     string
	Description string
	// Schema is the JSON Schema of the source's arguments (draft 2020-12
	// unless it names another $schema). Empty accepts any object.
	Schema string
}

// EmitFunc hands one event to the engine and returns once it is durable,
// or with an error when the run is ending (then stop: run's context is
// done too). event is the event's own keys; the engine adds meta.uuid,
// meta.source and meta.received_at. position, when not empty, is where to
// resume after this event. It is safe for concurrent use, but events are
// stored in the order emit is called.
type EmitFunc func(event map[string]any, position string) error

// RunFunc runs a source: it emits events until ctx ends (then it returns
// nil) or the source is exhausted (nil too: the engine does not restart
// it). An error makes the engine restart the plugin with backoff, from the
// last durable position.
type RunFunc func(ctx context.Context, args map[string]any, resumeFrom string, emit EmitFunc) error

// ServeSource serves a source plugin to the engine and returns when the
// engine stops it. Call it from main.
func ServeSource(info SourceInfo, run RunFunc) {
	go exitWithParent(os.Getppid(), time.Second)
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: proto.Handshake(proto.ProtocolVersion),
		Plugins:         goplugin.PluginSet{proto.SourcePluginKey: &sourcePlugin{info: info, run: run}},
		GRPCServer:      goplugin.DefaultGRPCServer,
		Logger:          logger,
	})
}

type sourcePlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	info SourceInfo
	run  RunFunc
}

func (g *sourcePlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterSourcePluginServer(s, &sourceServer{info: g.info, run: g.run})
	return nil
}

func (g *sourcePlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("the plugin side has no client")
}

// sourceServer adapts a RunFunc to the generated gRPC service.
type sourceServer struct {
	proto.UnimplementedSourcePluginServer
	info SourceInfo
	run  RunFunc
}

func (s *sourceServer) DescribeSource(context.Context, *proto.DescribeSourceRequest) (*proto.DescribeSourceResponse, error) {
	return &proto.DescribeSourceResponse{
		Name: s.info.Name, Version: s.info.Version, Description: s.info.Description,
		ArgsSchema: s.info.Schema, ProtocolVersion: proto.ProtocolVersion,
	}, nil
}

var errRunEnded = errors.New("the source run has ended")

func (s *sourceServer) Run(stream proto.SourcePlugin_RunServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first message must be a start")
	}
	args := map[string]any{}
	if b := start.GetArgsJson(); len(b) > 0 {
		if err := json.Unmarshal(b, &args); err != nil {
			return status.Errorf(codes.InvalidArgument, "decode arguments: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	r := &sourceRun{stream: stream, ctx: ctx, acked: make(chan struct{})}
	go r.readAcks(cancel)
	if hb := time.Duration(start.GetHeartbeatMs()) * time.Millisecond; hb > 0 {
		go r.heartbeat(hb)
	}
	err = s.run(ctx, args, start.GetResumeFrom(), r.emit)
	if err != nil && ctx.Err() == nil {
		return status.Error(codes.Aborted, err.Error())
	}
	if ctx.Err() != nil && stream.Context().Err() != nil {
		return stream.Context().Err()
	}
	return nil
}

type sourceRun struct {
	stream proto.SourcePlugin_RunServer
	ctx    context.Context

	sendMu sync.Mutex // one Send at a time; also orders seq with sending
	seq    uint64
	sent   time.Time

	mu      sync.Mutex
	lastAck uint64
	acked   chan struct{} // closed and replaced on every ack
}

func (r *sourceRun) emit(event map[string]any, position string) error {
	if err := r.ctx.Err(); err != nil {
		return errRunEnded
	}
	b, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("event cannot be encoded as JSON: %w", err)
	}
	r.sendMu.Lock()
	r.seq++
	seq := r.seq
	err = r.stream.Send(&proto.SourceToHost{Msg: &proto.SourceToHost_Event{Event: &proto.SourceEvent{Seq: seq, EventJson: b, Position: position}}})
	r.sent = time.Now()
	r.sendMu.Unlock()
	if err != nil {
		return errRunEnded
	}
	for {
		r.mu.Lock()
		done, ch := r.lastAck >= seq, r.acked
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-r.ctx.Done():
			return errRunEnded
		}
	}
}

func (r *sourceRun) readAcks(cancel context.CancelFunc) {
	defer cancel()
	for {
		m, err := r.stream.Recv()
		if err != nil {
			return
		}
		if a := m.GetAck(); a != nil {
			r.mu.Lock()
			if a.GetSeq() > r.lastAck {
				r.lastAck = a.GetSeq()
			}
			close(r.acked)
			r.acked = make(chan struct{})
			r.mu.Unlock()
		}
	}
}

// heartbeat tells the engine the plugin is alive while it has no events to
// send (or waits for an ack).
func (r *sourceRun) heartbeat(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.sendMu.Lock()
		var err error
		if time.Since(r.sent) >= every/2 {
			err = r.stream.Send(&proto.SourceToHost{Msg: &proto.SourceToHost_Heartbeat{Heartbeat: &proto.SourceHeartbeat{}}})
			r.sent = time.Now()
		}
		r.sendMu.Unlock()
		if err != nil {
			return
		}
	}
}

// exitWithParent ends the plugin when the engine that started it is gone
// (killed with -9, it could not stop the plugin): the plugin is adopted by
// another process, and its parent pid changes. Otherwise an orphan would
// keep running beside the plugin the restarted engine starts.
func exitWithParent(parent int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != parent {
			logger.Info("the engine is gone: exiting")
			os.Exit(0)
		}
	}
}
