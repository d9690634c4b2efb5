//! The one integration test binary of the `baton` CLI: every test starts the real binary
//! (`baton serve` through [`common::spawn_baton`]) and drives it as a user or a script would.
//! One module per area; run one with `cargo test -p baton-cli --test cli <module>::`, e.g.
//! `crash::` (`BATON_CRASH_SEED` replays a crash run) or `bench::`.

#![allow(clippy::unwrap_used)]

mod aws_sdk;
mod bench;
mod cli;
mod cli_keys;
mod cli_locks;
mod cli_schedules;
mod cli_sinks;
mod cli_streams;
mod cli_topics;
mod cluster_mode;
mod common;
mod crash;
mod encryption;
mod full_disk;
mod idle_connections;
mod memory_alarm;
/// The Redis Cluster the engine's own tests start (six processes on free ports), for
/// `cluster_mode`.
#[path = "../../../baton-redis/tests/support/cluster.rs"]
mod redis_cluster;
mod storage;
mod tls_clients;
