//! End-to-end tests of the native API over real HTTP, against a server on an ephemeral port.
#![allow(clippy::unwrap_used)]

mod audit;
mod auth;
mod batch_limits;
mod callbacks;
mod caller_limits;
mod chat_burst;
mod connection_limits;
mod dashboard;
mod delays;
mod engine_calls;
mod events;
mod fenced;
mod full_disk;
mod fuzz_corpus;
mod harness;
mod hot_route;
mod locks;
mod memory_alarm;
mod metrics;
mod outbound_guard;
mod push;
mod queues;
mod rate_limits;
mod receiver;
mod requests;
mod schedules;
mod semantics;
mod sinks;
mod sqs;
mod sqs_auth;
mod storage;
mod stream_live;
mod stream_metrics;
mod streams;
mod streams_validation;
mod tickets;
mod tls;
mod topic_streams;
mod topic_urls;
mod topics;
mod validation;
mod wire;
mod wire_auth;

/// Waits until `/ready` answers 200 (a durable engine recovers first).
pub async fn storage_wait_ready(server: &harness::TestServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.get("/ready").await.0 != reqwest::StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "not ready in time");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
