// Package bus runs Rulebook on Kafka when one machine is not enough: sources
// produce every accepted event to one bus topic, and engine processes share
// the topic's partitions in one consumer group, each keeping the rule state
// of the partitions it owns.
//
//	rulebook run --bus kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?group=NAME] RULEBOOK --data-dir DIR
//
// # Security
//
// Config.Security (built by kafkaconn.Load, from `rulebook run`'s
// --bus-tls-* and --bus-sasl-* flags) applies to every connection the bus
// makes: the producer's, the consumer group's, the partition readers', the
// offset lookups' and Partitions'. Brokers that refuse the credentials, or
// a broker certificate this process does not trust, are not retried:
// Partitions returns the error, the consumer's Run returns it when it has
// not joined the group yet, and Emit returns it instead of a
// *engine.BacklogError.
//
// # Producing
//
// A Producer is the sources' engine.Emitter. Each entry becomes one message,
// keyed by the partition key function, written with acks=all; Emit returns
// only after Kafka acknowledged it, so a webhook answers 2xx only for events
// that are on the bus. A broker that is down or slow makes Emit return a
// *engine.BacklogError (HTTP 503 with Retry-After): the sender retries,
// nothing acknowledged is lost. The message is internal JSON: the source
// ref, the event, the entry's dedupe key and window, order key and
// timestamp, and the accepted time (the producer's clock, also the Kafka
// record timestamp).
//
// # Consuming
//
// A Consumer joins the group with kafka-go's ConsumerGroup API and, for each
// assigned partition, asks the caller for a PartitionHandler (one
// engine.Engine). It first replays the partition's recent history, from the
// first record accepted within Lookback (found with ListOffsets by
// timestamp; when the broker cannot answer that, the last ReplayLimit
// records, and the log says so) up to the group's committed offset, through
// Replay: rule state (throttle windows, partial matches, facts) is rebuilt
// without acting. Then it processes records from the committed offset
// through Process and commits, every CommitInterval and when the partition
// is revoked or Run ends, the offset below which every record was
// processed. A Process error stops the partition without committing past
// the record; the partition is opened again with a fresh handler (replaying
// what was processed) after RetryBackoff, doubled while it keeps failing
// (up to 30s). A partition that stays with the
// same process across a rebalance keeps its handler and is not replayed.
//
// A group without committed offsets (its first start) processes the topic
// from its beginning: every event on the bus was acknowledged to a sender.
// Starting a new group on a topic with old records processes them all: use
// a new topic, or let retention remove them first.
//
// Each record reaches the handler as an engine.Record with Seq = offset+1,
// Stream = "TOPIC/PARTITION", the message's source ref and event, and
// Accepted = the message's accepted time. Firing and invocation ids derive
// from Stream and Seq, so the same record yields the same ids in whichever
// process handles it.
//
// # Duplicates and stale events
//
// The embedded journal drops duplicates and stale events at ingest; on the
// bus the consumer does, per partition: a live record whose dedupe key was
// accepted within its window (measured in accepted times), or whose
// timestamp is older than the newest accepted for its order key, is skipped
// (logged at debug, counted in Stats, its offset committed). The keys are
// rebuilt from the history read on assignment, so a new owner remembers
// what was accepted within Lookback, or within DedupeLookback when that is
// longer (that older history feeds only the keys, not the handler): set one
// of them at least as long as the dedupe windows you rely on across a
// handover. A repeat of an event accepted before that is processed again. This works only because equal
// dedupe and order keys land in one partition: the partition key must
// include what those keys depend on. The default key (the source name and
// the event's first host) does when a repeated delivery carries the same
// event (a webhook retried with the same delivery id, an alert notified
// again) and when an order key names something of one host.
//
// # Which rule semantics hold
//
// Rule state lives per partition. Everything that only relates events with
// the same partition key holds exactly as on one machine: a throttle whose
// group_by is (or is determined by) the key, multi-event rules whose events
// share the key, facts set and read by events of one key. Rules that relate
// events of different keys (a throttle across hosts, an `all` of events from
// different sources, a fact set by one host's event and read by another's)
// see only the events of their partition: give those events a shared key.
//
// The number of partitions bounds how many processes share the rule work:
// extra processes still take events from their sources and produce them,
// but own no partition until another process leaves. Adding partitions to
// the topic moves keys to other partitions (the key's hash is taken modulo
// their number), so the state of those keys starts over; Partitions reports
// the count, for a check at startup.
//
// # Delivery semantics
//
// At least once. An acknowledged event is on the bus and is processed by
// whoever owns its partition. A process that dies after a firing was stored
// in its action queue but before its offset was committed leaves that
// record to the next owner, which processes it again: with the same firing
// and invocation ids (they derive from the stream and sequence), so the
// audit trail can tell, and actions should be idempotent on the invocation
// id (the http action sends it as Idempotency-Key, the kafka action as the
// rulebook-invocation-id header). Each process keeps its own action queue
// and audit trail in its own data directory; an action queued by a process
// that never comes back is not run by another one.
package bus
