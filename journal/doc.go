// Package journal is Rulebook's embedded journal: the durable, ordered event
// log between sources and the engine (engine.Journal), and the dispatcher's
// durable queue and audit trail (engine.ActionStore, from Store.Actions), in
// one Pebble database under <data-dir>/journal.
//
// # Durability and group commit
//
// Emit returns only when its entries are in Pebble's write-ahead log and
// fsync'd. Every Emit and Done call is handed to one committer goroutine,
// which takes all calls queued while the previous commit was syncing,
// decides each call atomically (backlog bound; per entry dedupe, stale,
// append) and writes the whole group as one synced batch: one fsync per
// group, no added delay. A failed commit fails every call of its group, and
// nothing of them is stored. A group of Done calls only is written without
// a sync: the next synced write makes it durable, and a Done lost in a
// crash only means that its records are read again, marked Redelivered.
//
// # Reading
//
// Read serves the newest records from a bounded in-memory ring (4096
// records, 16 MiB of encoded events), filled once a group is durable with
// the events as a decoder would return them, built while encoding: the
// engine, which reads right behind the sources, does not decode what was
// just written. Older records come from the database. Records read before
// by this process, or accepted before it opened the store, are marked
// Redelivered: their firings may be stored already.
//
// # Bulk sources
//
// Pace (engine.Pacer) holds a source that can wait (a file, a generator, a
// Kafka partition) while the backlog plus its next call would pass half the
// ring, so the engine keeps reading from memory; it is released when the
// engine marks records done. The dedupe keys of a call with many of them
// (a file's lines, a partition's offsets) are looked up together: sorted,
// with one iterator bounded by the first and the last, which finds a range
// of new keys empty at once instead of probing every table per key.
//
// Dedupe keys and the newest timestamp per order key are scoped per source
// (ruleset and source name), stored in the database (nothing per event is
// held in memory) and expire after the dedupe window; an expiry index lets
// Compact purge them without scanning. Compact also range-deletes done
// records older than the retention. Start runs it in the background.
//
// # Why Pebble
//
// Chosen by measurement (bench/journal): 32 goroutines, each durably
// appending a ~1 KiB event plus a check-and-insert of a random dedupe key as
// one atomic decision. Medians of 3 interleaved rounds of 5 s on the 2-core
// development machine while other builds ran on it (load average 7-11; a
// 512 B O_DSYNC write took 0.19 ms before the run, up to 0.9 ms in busier
// minutes), so the absolute figures are low; the ranking held in every run:
//
//	engine           events/s  p50     p99      cpu/event  disk/event
//	bolt-batch       9180      2.29ms  15.93ms  44.0µs     7476 B
//	bolt-group       4684      4.39ms  34.53ms  60.6µs     8584 B
//	pebble-group     14379     1.30ms  11.49ms  37.0µs     1458 B
//	pebble-pipeline  10896     1.41ms  23.80ms  41.4µs     1481 B
//	journal          9063      1.86ms  21.71ms  47.9µs     1548 B
//
// bolt-batch is bbolt's DB.Batch (MaxBatchSize 32, MaxBatchDelay 1 ms);
// bolt-group and pebble-group put bbolt transactions and Pebble batches
// behind the committer this package uses; pebble-pipeline relies on Pebble's
// own WAL group commit; journal is this package end to end. Pebble wins
// because a Pebble commit is one sequential WAL append and one fsync, where a
// bbolt commit rewrites every B+tree page it touches (random dedupe keys
// touch many: ~4x the bytes per event) and fsyncs twice; and because Pebble
// gives back the space of compacted records, which bbolt's file never does.
// Only the very first run (ordered keys, an almost idle machine, Pebble
// untuned) had bbolt's DB.Batch keeping up: 22.8k events/s, p99 2.6 ms,
// against Pebble's 22.7k, p99 7.1 ms; repeated later with ordered keys,
// Pebble led again (12.2k against 6.8k events/s). Random keys are what
// delivery ids and alert fingerprints are. See README.md for the full
// reasoning.
//
// Reproduce:
//
//	go run ./bench/journal -engines bolt-batch,bolt-group,pebble-group,pebble-pipeline,journal -c 32 -d 5s -rounds 3
//	go test -run '^$' -bench EmitParallel -benchtime 5s ./journal
package journal
