//! # baton-bench
//!
//! The end-to-end load generator behind `baton bench`: it drives a *running* Baton over HTTP
//! (the native API or the Amazon SQS JSON 1.0 protocol) with one of three workloads and
//! reports throughput and latency.
//!
//! - `produce`: producers send batches; nothing is received.
//! - `consume`: the queue is first filled with `messages` messages (not timed), then consumers
//!   receive and ack them.
//! - `e2e`: producers and consumers run at once: send → receive → ack. Consumers keep draining
//!   after the producers stop (at most [`DRAIN_TIMEOUT`]), so every sent message is counted.
//!
//! Latency is end to end: each body starts with the time it was sent (see [`body`]) and the
//! consumer subtracts it from the time it received it, in an HDR histogram of microseconds.
//! With `rate` the load is open loop, and a second histogram measures from each message's
//! scheduled send time (coordinated-omission corrected).
//!
//! With `system` other than Baton the same workloads drive a peer on this machine instead
//! (see [`System`]): Redis Streams, RabbitMQ or NATS JetStream, each through the send /
//! receive / ack of the `broker` module, with the same bodies and the same report.
//!
//! It is not a micro-benchmark (those are criterion benches in each crate) and it does not
//! start a broker. Every knob is bounded (see the constants); a run ends by message count or
//! by time, whichever comes first.

mod api;
pub mod body;
mod broker;
mod config;
mod peer_nats;
mod peer_rabbitmq;
mod peer_redis;
mod report;
mod workload;

use std::time::Duration;

use baton_sdk::proto::CreateQueue;

use crate::api::Target;
use crate::broker::Broker;
use crate::workload::run_on;

pub use crate::config::{Api, Config, SqsCredentials, System, Workload};
pub use crate::report::{Percentiles, Report};

/// Most messages in one native send or receive.
pub const BATCH_MAX_NATIVE: u32 = 1000;
/// Most messages in one send or receive to a peer.
pub const BATCH_MAX_PEER: u32 = 1000;
/// Largest bodies of one batch to a peer.
pub const BATCH_BYTES_MAX_PEER: u64 = 15 * 1024 * 1024;
/// Most messages in one SQS send or receive.
pub const BATCH_MAX_SQS: u32 = 10;
/// Most producers, and most consumers.
pub const WORKERS_MAX: u32 = 1000;
/// Most concurrent send calls over all producers (`producers × inflight`).
pub const SENDERS_MAX: u32 = 10_000;
/// Most acks a Baton consumer keeps in flight.
pub const ACK_INFLIGHT_MAX: u32 = 64;
/// Largest message body; the broker's own limit.
pub const MESSAGE_BYTES_MAX: u32 = 1024 * 1024;
/// Largest bodies of one native batch, below the broker's default 16 MiB request limit.
pub const BATCH_BYTES_MAX_NATIVE: u64 = 15 * 1024 * 1024;
/// Largest bodies of one SQS batch: SQS's own limit.
pub const BATCH_BYTES_MAX_SQS: u64 = 1024 * 1024;
/// Longest long poll of a consumer.
pub const WAIT_MS_MAX: u64 = 20_000;
/// Longest run.
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 60 * 60);
/// How long `e2e` consumers keep draining after the producers stopped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a run could not start or set up.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid option: {0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Sdk(#[from] baton_sdk::Error),
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("sqs {action} answered {status}: {body}")]
    Sqs {
        action: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Peer(String),
    #[error("sqs {action} answered with malformed json")]
    SqsAnswer {
        action: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Runs the workload against the broker at `config.url` and returns its figures.
///
/// # Errors
/// An invalid config, or a failure to create, fill or find the queue. Failures during the
/// timed run are counted in [`Report::errors`], not returned.
pub async fn run(config: Config) -> Result<Report, BenchError> {
    config.validate()?;
    if config.system != System::Baton {
        return run_peer(config).await;
    }
    let http = api::http_client(
        config.http2,
        config.key.as_deref(),
        config.ca_pem.as_deref(),
    )?;
    let fresh = config.queue.is_none();
    let queue = match &config.queue {
        Some(queue) => queue.clone(),
        None => fresh_queue_name(),
    };
    let target = Target::new(
        config.api,
        http,
        config.http2,
        config.key.clone(),
        &config.url,
        &queue,
    )
    .await?
    .with_wire_addr(config.wire_addr.clone())
    .with_ca_pem(config.ca_pem.clone())
    .with_sqs_credentials(config.sqs_credentials.clone());
    if fresh || target.sdk().get_queue(&queue).await.is_err() {
        target
            .sdk()
            .create_queue(&queue, &CreateQueue::default())
            .await?;
    }
    let result = run_on(&config, &Broker::Baton(target.clone())).await;
    if fresh {
        // A failed delete leaves a queue behind but does not spoil the figures.
        let _ = target.sdk().delete_queue(&queue).await;
    }
    let (prefilled, run) = result?;
    Ok(run.into_report(config, queue, prefilled))
}

/// A fresh random queue name.
fn fresh_queue_name() -> String {
    format!(
        "bench-{:012x}",
        body::now_ns() ^ u64::from(std::process::id())
    )
}

/// [`run`] against a peer: creates a fresh queue there, runs, and deletes the queue.
async fn run_peer(config: Config) -> Result<Report, BenchError> {
    let queue = fresh_queue_name();
    let broker = Broker::open_peer(&config, &queue).await?;
    let result = run_on(&config, &broker).await;
    broker.teardown().await;
    let (prefilled, run) = result?;
    Ok(run.into_report(config, queue, prefilled))
}
