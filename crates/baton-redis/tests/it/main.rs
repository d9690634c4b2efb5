//! The Redis engine against a real Redis Cluster of six processes (`support/cluster.rs`),
//! shared by every test of this binary: the engine conformance suite's queue, lock and
//! schedule cases, and the behaviour that only this engine has (moves through the outbox,
//! Redis's own clock, lock wake-ups across nodes, the queue's fence floor, the lock index,
//! schedule firings raced by two nodes or cut between the send and the step, the schedule
//! index).

#![allow(clippy::unwrap_used)]

#[path = "../support/cluster.rs"]
mod cluster;
mod conformance;
mod engine;
mod locks;
mod schedules;
mod topics;
