package sdk

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/plugins/proto"
)

type fake struct {
	seen    chan *Request
	release chan struct{}
	resp    Response
}

func (f *fake) Describe() Info {
	return Info{Name: "fake", Version: "9", Description: "d", Actions: []Action{{Name: "fake.do", Description: "does", Schema: `{"type":"object"}`}}}
}

func (f *fake) Invoke(ctx context.Context, req *Request) Response {
	f.seen <- req
	if f.release != nil {
		<-f.release
	}
	return f.resp
}

func TestServerDescribe(t *testing.T) {
	s := newServer(&fake{}, "/state")
	d, err := s.Describe(context.Background(), &proto.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetName() != "fake" || d.GetVersion() != "9" || d.GetProtocolVersion() != proto.ProtocolVersion ||
		len(d.GetActions()) != 1 || d.GetActions()[0].GetArgsSchema() != `{"type":"object"}` {
		t.Errorf("describe = %v", d)
	}
}

func TestServerInvokeConvertsBothWays(t *testing.T) {
	tests := []struct {
		name string
		resp Response
		want proto.Status
	}{
		{"succeeded", Response{Status: Succeeded, Output: "ok", HTTPStatus: 201, Details: map[string]any{"n": 1}, Facts: []map[string]any{{"a": 1}}}, proto.Status_STATUS_SUCCEEDED},
		{"retryable", Response{Status: Retryable, Error: "later", RetryAfter: 2500 * time.Millisecond}, proto.Status_STATUS_RETRYABLE},
		{"failed", Response{Status: Failed, Error: "no"}, proto.Status_STATUS_FAILED},
		{"no status is a failure", Response{Output: "forgot"}, proto.Status_STATUS_FAILED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{seen: make(chan *Request, 1), resp: tc.resp}
			s := newServer(f, "/state")
			out, err := s.Invoke(context.Background(), &proto.InvokeRequest{
				CallId: 7, InvocationId: "i", Action: "fake.do", Rule: "r", Ruleset: "rs",
				ArgsJson:   []byte(`{"x":1,"y":["a"]}`),
				EventJson:  []byte(`{"alert":{"status":"firing"}}`),
				EventsJson: []byte(`{"m_0":{"k":"v"}}`),
				Hosts:      []string{"h1"},
			})
			if err != nil {
				t.Fatal(err)
			}
			req := <-f.seen
			if req.ID != "i" || req.Action != "fake.do" || req.Args["x"] != 1.0 || req.Event["alert"] == nil ||
				req.Events["m_0"]["k"] != "v" || req.StateDir != "/state" || req.Log == nil || req.Hosts[0] != "h1" {
				t.Errorf("request = %+v", req)
			}
			if out.GetStatus() != tc.want || out.GetRetryAfterMs() != tc.resp.RetryAfter.Milliseconds() {
				t.Errorf("response = %v", out)
			}
			if tc.resp.Status == 0 && out.GetError() == "" {
				t.Error("a response without status has no error")
			}
			if len(tc.resp.Details) > 0 {
				var d map[string]any
				if err := json.Unmarshal(out.GetDetailsJson(), &d); err != nil || d["n"] != 1.0 {
					t.Errorf("details = %s (%v)", out.GetDetailsJson(), err)
				}
			}
		})
	}
}

func TestServerRejectsBadArguments(t *testing.T) {
	s := newServer(&fake{seen: make(chan *Request, 1)}, "")
	out, err := s.Invoke(context.Background(), &proto.InvokeRequest{ArgsJson: []byte(`[1,2]`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.GetStatus() != proto.Status_STATUS_FAILED {
		t.Errorf("status = %v", out.GetStatus())
	}
}

func TestHealthReportsAbandonedCalls(t *testing.T) {
	f := &fake{seen: make(chan *Request, 2), release: make(chan struct{})}
	s := newServer(f, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = s.Invoke(ctx, &proto.InvokeRequest{CallId: 11})
	}()
	<-f.seen
	h, _ := s.Health(context.Background(), &proto.HealthRequest{})
	if h.GetInFlight() != 1 || len(h.GetAbandonedCalls()) != 0 {
		t.Fatalf("running call: %v", h)
	}
	cancel()
	h, _ = s.Health(context.Background(), &proto.HealthRequest{})
	if len(h.GetAbandonedCalls()) != 1 || h.GetAbandonedCalls()[0] != 11 {
		t.Fatalf("abandoned call not reported: %v", h)
	}
	close(f.release)
	<-done
	h, _ = s.Health(context.Background(), &proto.HealthRequest{})
	if h.GetInFlight() != 0 {
		t.Fatalf("finished call still in flight: %v", h)
	}
}
