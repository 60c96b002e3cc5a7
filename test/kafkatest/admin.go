package kafkatest

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func kmsgCreateTopics(topic string, partitions int32) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = partitions
	t.ReplicationFactor = -1
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 5000
	return req
}

func kerrOf(code int16) error { return kerr.ErrorForCode(code) }

func listEnd(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	parts, err := partitionsOf(ctx, cl, topic)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// A ListOffsets must reach each partition's leader; the client splits
	// the request by leader when sharded.
	out := map[int32]int64{}
	for _, sr := range cl.RequestSharded(ctx, req) {
		if sr.Err != nil {
			return nil, fmt.Errorf("kafkatest: list offsets of %q: %w", topic, sr.Err)
		}
		resp := sr.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("kafkatest: list offsets of %q/%d: %w", topic, p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: metadata of %q: %w", topic, err)
	}
	var parts []int32
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("kafkatest: metadata of %q: %w", topic, err)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.Partition)
		}
	}
	return parts, nil
}

func fetchCommitted(ctx context.Context, cl *kgo.Client, group, topic string) (map[int32]int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	parts, err := partitionsOf(ctx, cl, topic)
	if err != nil {
		return nil, err
	}
	rt.Partitions = parts
	req.Topics = append(req.Topics, rt)
	// v8+ carries groups in Groups; older versions in Group and Topics.
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic = topic
	gt.Partitions = parts
	rg.Topics = append(rg.Topics, gt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: committed offsets of group %q: %w", group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("kafkatest: committed offsets of group %q: %w", group, err)
	}
	out := map[int32]int64{}
	for _, g := range resp.Groups {
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return nil, fmt.Errorf("kafkatest: committed offsets of group %q: %w", group, err)
		}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if p.Offset >= 0 {
					out[p.Partition] = p.Offset
				}
			}
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("kafkatest: committed offset of %q/%d: %w", topic, p.Partition, err)
			}
			if p.Offset >= 0 {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

func saslMechanism(u *SASLUser) sasl.Mechanism {
	switch u.Mechanism {
	case "PLAIN":
		return plain.Auth{User: u.Username, Pass: u.Password}.AsMechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: u.Username, Pass: u.Password}.AsSha512Mechanism()
	default:
		return scram.Auth{User: u.Username, Pass: u.Password}.AsSha256Mechanism()
	}
}

// GroupState describes a consumer group as its coordinator sees it.
type GroupState struct {
	// State is the group's state: "Stable", "PreparingRebalance",
	// "CompletingRebalance", "Empty" or "Dead".
	State string
	// Members is the number of members.
	Members int
}

// Group returns the state of a consumer group.
func (c *Cluster) Group(ctx context.Context, group string) (GroupState, error) {
	cl, err := c.client()
	if err != nil {
		return GroupState{}, err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return GroupState{}, fmt.Errorf("kafkatest: describe group %q: %w", group, err)
	}
	for _, g := range resp.Groups {
		if g.Group != group {
			continue
		}
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return GroupState{}, fmt.Errorf("kafkatest: describe group %q: %w", group, err)
		}
		return GroupState{State: g.State, Members: len(g.Members)}, nil
	}
	return GroupState{State: "Dead"}, nil
}

// FailOffsetCommits makes the brokers refuse every offset commit of group
// (REQUEST_TIMED_OUT for each partition) until the returned function is
// called: what a consumer that crashes before committing leaves behind. It
// panics for a cluster run by StartProcess.
func (c *Cluster) FailOffsetCommits(group string) (restore func()) {
	var off atomic.Bool
	// kc is taken now: the control function runs on kfake's loop and must
	// not wait for c.mu, which StopBroker holds while it waits for the loop.
	kc := c.Kfake()
	if kc == nil {
		panic(errProcess)
	}
	kc.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if off.Load() {
			kc.DropControl()
			return nil, nil, false
		}
		oc := req.(*kmsg.OffsetCommitRequest)
		if oc.Group != group {
			kc.KeepControl()
			return nil, nil, false
		}
		kc.KeepControl()
		resp := oc.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Version = oc.Version
		for _, t := range oc.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.RequestTimedOut.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return func() { off.Store(true) }
}
