// Package arpcnats serves an aRPC state machine over NATS: the same source
// machine and the same mirror API as pkg/rpc (Mirror has rpc.Worker's
// reads, waits and mutations), another transport. NATS fans changes out,
// JetStream keeps the state, leases and durable waits, and several server
// processes can serve one machine, one leading and the others standing by.
//
// # Shape
//
//	 process A (leader)          NATS / JetStream             processes with mirrors
//	┌──────────────────┐      ┌────────────────────┐      ┌──────────────────────┐
//	│ source machine   │      │ arpc.<id>.mut  ◄───┼──────┤ Mirror.Mutate (req)  │
//	│  tracer: 1 copy  │◄─────┤ arpc.<id>.req  ◄───┼──────┤ Mirror.Request (req) │
//	│  per transition  │      │ arpc.<id>.get  ◄───┼──────┤ NewMirror, Resync    │
//	│ publisher ───────┼─────►│ arpc.<id>.upd  ────┼─────►│ hub: 1 sub per conn  │
//	│ persister ───────┼─────►│ KV <id>.state      │      │  → am.Model of each  │
//	│ elector ─────────┼─────►│ KV <id>.lease      │      │    mirror            │
//	│ waits ───────────┼─────►│ KV <id>.wait.<w>   │◄─────┤ PollWait             │
//	└──────────────────┘      └────────────────────┘      └──────────────────────┘
//	 process B (standby): polls <id>.lease; restores <id>.state when it lapses
//
// A transition on the source costs the server one copy of the tick vector
// and a signal, whatever the number of mirrors: the publisher publishes
// the state once per queue pass (coalescing) on arpc.<id>.upd, and NATS
// delivers it once per subscribed connection; all the Mirrors of a machine
// on one connection share that subscription.
//
// # Subjects and keys
//
// Machine ids are NATS tokens: letters, digits, '-' and '_'.
//
//	arpc.<id>.mut       request: a mutation (JSON), reply: outcome + state
//	arpc.<id>.mutns     publish: a mutation nobody waits for (AddNS)
//	arpc.<id>.req       request: rpc.Request run on the leader, reply: answer
//	arpc.<id>.get       request: the current state (an update)
//	arpc.<id>.upd       publish: the state, once per queue pass + heartbeat
//	arpc.<id>.wait.reg  request: register a durable wait
//
// Only the leader subscribes to the requests (queue group "arpc"), so with
// no leader a request fails at once with NATS's no-responders, which
// Mirror returns as ErrNoServer. In the KV bucket (WithBucket, default
// "arpc"): <id>.state (tick vector, Multi exit counters, epoch, version,
// the source's Err text, JSON-serialisable args of active states, recent
// mutation outcomes), <id>.lease, <id>.wait.<wait id>.
//
// An update carries the whole tick vector, not a diff. Ticks only grow
// within an epoch, so the difference between an update and the mirror's
// vector is the diff, whatever the mirror missed: a mirror that misses
// updates (a reconnect) loses nothing but time, and the next update or
// heartbeat (WithHeartbeat) brings it up to date. There is no gap to
// detect, so none can pass silently. A new leader starts a new epoch.
//
// # Durability levels
//
// Each mutation carries a request id. The leader keeps the outcomes of
// recent ids (pruned by the lowest id each client still waits for, and
// bounded by WithDedupSize) and writes them with the state, so a retry
// (WithRetry) gets the first outcome, also from a new leader: a mutation
// runs at most once.
//
//   - Default: the reply means "applied by the leader". The state is
//     written to JetStream right after, coalesced at most once per
//     WithPersistInterval (5ms). A leader that dies loses what it
//     acknowledged in that window; mirrors then take the restored state
//     as it is (the new epoch's ticks may be lower). Graceful Shutdown
//     loses nothing.
//   - WithAckPersisted(true): "acknowledged means persisted". The reply,
//     and the update that shows the change to mirrors, are sent only
//     after JetStream acknowledged the state write that holds the
//     mutation and its outcome (with replicas, a quorum has it). No
//     acknowledged mutation is lost, in any failover.
//
// # Failover
//
// The leader holds a lease (<id>.lease), renewed every quarter of
// WithLease with a compare-and-set on its revision. A standby that sees
// the revision unchanged for a whole lease takes it with a compare-and-set
// (of several, one wins), restores <id>.state into its source machine
// (Import: the ticks, no handlers run), and writes it back with the next
// epoch, again a compare-and-set on the revision it read. Every state
// write is such a compare-and-set, which fences a deposed leader: its next
// write fails, it stops serving, and the replies it held fail with
// ErrNotLeader so that callers retry on the new leader. Mirrors follow on
// their own: they read the next leader's updates.
//
// # Graceful termination
//
// Server.Shutdown drains the request subscriptions (intake stops;
// IntakeStopped says when NATS has closed them), lets the mutations and
// requests in flight finish within its ctx, persists, answers them,
// releases the lease (a standby takes over at its next poll, without
// waiting for the lease to lapse), and stops its goroutines.
//
// # Durable waits
//
// Mirror.RegisterWait stores a DurableWait (a select over state
// conditions) in JetStream; the leader resolves it with am.Select on the
// source, stores the result and publishes it to the wait's Reply subject.
// A new leader resumes the stored waits, so a wait survives restarts of
// the waiter and of the servers; PollWait reads a result without a leader.
//
// # Bounds
//
// A request is refused past 64 KiB, a request id past 128 bytes; an
// update is decoded only if it holds exactly the schema's number of
// states; the dedup table holds at most WithDedupSize outcomes, each with
// at most 256 bytes of error text, and the stored state is kept within
// NATS's maximum payload (past it the args of active states are left
// out, then the oldest outcomes forgotten, and Server.Err wraps
// ErrTooLarge), so one client's large requests can't make state writes
// fail; a leader resolves at most 10,000 durable waits and waits on at
// most 4,096 requests at a time (more get am.ErrQueueFull, and a wait
// refused so is not stored). A slow mirror connection is NATS's slow consumer: the
// client library drops the updates past its subscription's pending limits
// and counts them. Since every update carries the whole state, a dropped
// one costs only time: the next update or heartbeat brings the mirrors up
// to date.
//
// # Trust
//
// Whoever may publish on arpc.<id>.upd is believed by every mirror of the
// machine: an update with a higher epoch than the leader's would hide the
// leader's updates from them. Whoever may publish on the request subjects
// may mutate the machine, and answers to retries are found by request id
// alone. Grant these subjects with NATS permissions: publish on
// arpc.<id>.upd to the servers only, on the request subjects to the
// clients allowed to mutate.
//
// StartEmbedded runs a NATS server with JetStream in this process: the
// default for examples and tests, which needs no set-up.
package arpcnats
