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
mod peer_nats;
mod peer_rabbitmq;
mod peer_redis;

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_sdk::proto::CreateQueue;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::Target;
use crate::broker::{Broker, Consumer, Producer};

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
/// Pause of a worker after a failed call, so a broken broker is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_millis(20);
/// Largest latency the histograms hold; larger values are recorded as this.
const LATENCY_US_MAX: u64 = 10 * 60 * 1_000_000;
/// Messages per send while filling the queue for `consume`.
const PREFILL_BATCH: u32 = 1000;
/// Concurrent sends while filling the queue for `consume`.
const PREFILL_SENDERS: u32 = 4;
/// How often the progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Produce,
    Consume,
    E2e,
}

/// Which of the broker's APIs the workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Native,
    Sqs,
    /// The framed TCP protocol (docs/wire-protocol.md), on connections upgraded from HTTP at
    /// `Config::url` (or to `Config::wire_addr`, a dedicated wire port).
    Wire,
}

/// Which broker the workload drives: Baton (at `Config::url`, over `Config::api`), or a peer
/// at `Config::target_url` (or its default on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Baton,
    /// Redis Streams: XADD (pipelined), XREADGROUP with a consumer group, XACK.
    Redis,
    /// RabbitMQ: a durable classic (or quorum) queue, persistent messages, publisher
    /// confirms, manual acks with a prefetch of one batch.
    RabbitMq,
    /// NATS JetStream: a file-stored work-queue stream, async publish with acks, a pull
    /// consumer with explicit acks.
    Nats,
}

impl System {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            System::Baton => "baton",
            System::Redis => "redis",
            System::RabbitMq => "rabbitmq",
            System::Nats => "nats",
        }
    }

    /// Where the peer is reached when no `--target-url` is given.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            System::Baton => None,
            System::Redis => Some("redis://127.0.0.1:6379"),
            System::RabbitMq => Some("amqp://guest:guest@127.0.0.1:5672/%2f"),
            System::Nats => Some("nats://127.0.0.1:4222"),
        }
    }

    fn url_schemes(self) -> &'static [&'static str] {
        match self {
            System::Baton => &["http://", "https://"],
            System::Redis => &["redis://"],
            System::RabbitMq => &["amqp://"],
            System::Nats => &["nats://"],
        }
    }
}

/// One run, as given on the command line. Checked by [`Config::validate`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The broker, e.g. `http://127.0.0.1:9324`.
    pub url: String,
    /// Baton or a peer.
    pub system: System,
    /// A peer's URL; `None` is [`System::default_url`]. Not for Baton (that is `url`).
    pub target_url: Option<String>,
    /// RabbitMQ: a quorum queue instead of a durable classic one.
    pub rabbitmq_quorum: bool,
    pub workload: Workload,
    pub api: Api,
    pub producers: u32,
    pub consumers: u32,
    pub message_bytes: u32,
    /// Messages per send call.
    pub batch: u32,
    /// Most messages per receive (and so per ack).
    pub receive_batch: u32,
    /// Baton only: HTTP/2 without TLS (prior knowledge), so every producer's and consumer's
    /// calls share one multiplexed connection instead of one connection per call in flight.
    pub http2: bool,
    /// Concurrent send calls per producer.
    pub inflight: u32,
    /// Baton only: acks a consumer keeps in flight while it receives on.
    pub ack_inflight: u32,
    /// Messages a second over all producers; 0 sends as fast as the broker answers.
    pub rate_per_s: u64,
    pub duration: Duration,
    /// Messages to send (`consume`: to prefill and receive).
    pub messages: u64,
    /// An existing queue to use (created if missing, never deleted); `None` makes a fresh
    /// `bench-<random>` queue and deletes it afterwards.
    pub queue: Option<String>,
    /// Long-poll wait of each receive.
    pub wait_ms: u64,
    /// Draw a live progress line on stderr (only when stdout is a terminal).
    pub progress: bool,
    /// `Api::Wire` only: a dedicated wire port (the server's `wire_listen`) to connect to
    /// instead of upgrading connections to `url`.
    pub wire_addr: Option<String>,
}

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

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The figures of a finished run.
#[derive(Debug, Clone)]
pub struct Report {
    pub config: Config,
    pub queue: String,
    /// Messages put in the queue before a `consume` run (not timed).
    pub prefilled: u64,
    pub sent: u64,
    pub received: u64,
    pub acked: u64,
    /// Failed calls, plus failed items of batch calls that succeeded.
    pub errors: u64,
    /// From the start to the last successful send or ack, whichever came later.
    pub elapsed: Duration,
    /// From the start to the last successful send: the time `sent` took.
    pub send_elapsed: Duration,
    /// From the start to the last successful ack: the time `received` and `acked` took.
    pub receive_elapsed: Duration,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    /// Send → receive, from the time in each body; only for `e2e`.
    pub latency: Option<Percentiles>,
    /// Scheduled send → receive; only for `e2e` with a rate.
    pub latency_from_schedule: Option<Percentiles>,
    /// Round trip of one send call.
    pub send_call: Option<Percentiles>,
}

impl Config {
    /// The URL of the broker the run drives: `url` for Baton, else the peer's.
    pub fn broker_url(&self) -> &str {
        match (self.system, &self.target_url, self.system.default_url()) {
            (System::Baton, _, _) => &self.url,
            (_, Some(url), _) => url,
            (_, None, Some(default)) => default,
            (_, None, None) => &self.url,
        }
    }

    /// Checks every knob against its bound.
    ///
    /// # Errors
    /// `BenchError::InvalidConfig` naming the first option out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |message: String| Err(BenchError::InvalidConfig(message));
        let (batch_max, batch_bytes_max) = match (self.system, self.api) {
            (System::Baton, Api::Native | Api::Wire) => (BATCH_MAX_NATIVE, BATCH_BYTES_MAX_NATIVE),
            (System::Baton, Api::Sqs) => (BATCH_MAX_SQS, BATCH_BYTES_MAX_SQS),
            _ => (BATCH_MAX_PEER, BATCH_BYTES_MAX_PEER),
        };
        let url = self.broker_url();
        let schemes = self.system.url_schemes();
        if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
            let option = if self.system == System::Baton {
                "--url"
            } else {
                "--target-url"
            };
            return invalid(format!(
                "{option} must start with {} for --target {}, got {url:?}",
                schemes.join(" or "),
                self.system.name(),
            ));
        }
        if self.system == System::Baton && self.target_url.is_some() {
            return invalid("--target-url is for the peers; Baton's is --url".to_string());
        }
        if self.system != System::Baton && self.queue.is_some() {
            return invalid("--queue is only for --target baton".to_string());
        }
        if self.system != System::Baton && self.api != Api::Native {
            return invalid("--api is only for --target baton".to_string());
        }
        if self.rabbitmq_quorum && self.system != System::RabbitMq {
            return invalid("--rabbitmq-quorum is only for --target rabbitmq".to_string());
        }
        let needs_producers = self.workload != Workload::Consume;
        let needs_consumers = self.workload != Workload::Produce;
        if needs_producers && !(1 <= self.producers && self.producers <= WORKERS_MAX) {
            return invalid(format!("--producers must be 1..={WORKERS_MAX}"));
        }
        if needs_consumers && !(1 <= self.consumers && self.consumers <= WORKERS_MAX) {
            return invalid(format!("--consumers must be 1..={WORKERS_MAX}"));
        }
        if !(1 <= self.inflight && self.inflight <= SENDERS_MAX) {
            return invalid(format!("--inflight must be 1..={SENDERS_MAX}"));
        }
        if needs_producers && SENDERS_MAX < self.producers.saturating_mul(self.inflight) {
            return invalid(format!(
                "--producers × --inflight must be at most {SENDERS_MAX}"
            ));
        }
        if !(1 <= self.batch && self.batch <= batch_max) {
            return invalid(format!("--batch must be 1..={batch_max} for this api"));
        }
        if !(1 <= self.receive_batch && self.receive_batch <= batch_max) {
            return invalid(format!(
                "--receive-batch must be 1..={batch_max} for this api"
            ));
        }
        if self.http2 && self.system != System::Baton {
            return invalid("--http2 is only for --target baton".to_string());
        }
        if !(1..=ACK_INFLIGHT_MAX).contains(&self.ack_inflight) {
            return invalid(format!("--ack-inflight must be 1..={ACK_INFLIGHT_MAX}"));
        }
        if self.ack_inflight != 1 && self.system != System::Baton {
            return invalid(
                "--ack-inflight is for Baton; each peer acks as its adapter does".to_string(),
            );
        }
        if self.wire_addr.is_some() && self.api != Api::Wire {
            return invalid("--wire-addr is for --api wire".to_string());
        }
        if self.http2 && self.api == Api::Wire {
            return invalid("--http2 is for the HTTP apis, not --api wire".to_string());
        }
        if !(body::HEADER_BYTES <= self.message_bytes && self.message_bytes <= MESSAGE_BYTES_MAX) {
            return invalid(format!(
                "--message-bytes must be {}..={MESSAGE_BYTES_MAX}",
                body::HEADER_BYTES
            ));
        }
        if batch_bytes_max < u64::from(self.batch) * u64::from(self.message_bytes) {
            return invalid(format!(
                "--batch × --message-bytes must be at most {batch_bytes_max} for this api"
            ));
        }
        if self.messages == 0 {
            return invalid("--messages must be at least 1".to_string());
        }
        if !(Duration::ZERO < self.duration && self.duration <= DURATION_MAX) {
            return invalid(format!(
                "--duration-s must be 1..={}",
                DURATION_MAX.as_secs()
            ));
        }
        if WAIT_MS_MAX < self.wait_ms {
            return invalid(format!("--wait-ms must be at most {WAIT_MS_MAX}"));
        }
        Ok(())
    }
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
    let http = api::http_client(config.http2)?;
    let fresh = config.queue.is_none();
    let queue = match &config.queue {
        Some(queue) => queue.clone(),
        None => fresh_queue_name(),
    };
    let target = Target::new(config.api, http, config.http2, &config.url, &queue)
        .await?
        .with_wire_addr(config.wire_addr.clone());
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

/// Counters shared by every worker of one run.
struct Shared {
    workload: Workload,
    start: Instant,
    /// Wall clock at `start`, in ns since the epoch, for the schedule in bodies.
    start_ns: u64,
    /// Producers send nothing after it; `consume` consumers stop at it.
    deadline: Instant,
    messages: u64,
    claimed: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    sent_bytes: AtomicU64,
    received_bytes: AtomicU64,
    /// Nanoseconds from `start` to the last successful send.
    last_sent_ns: AtomicU64,
    /// Nanoseconds from `start` to the last successful ack.
    last_acked_ns: AtomicU64,
    producers_done: AtomicBool,
    stop: watch::Sender<bool>,
}

/// What the workers measured.
struct Measured {
    shared: Arc<Shared>,
    latency: Histogram<u64>,
    latency_from_schedule: Histogram<u64>,
    send_call: Histogram<u64>,
}

impl Shared {
    /// Takes the next up to `n_max` messages of the budget: `(index of the first, count)`.
    fn claim(&self, n_max: u64) -> Option<(u64, u64)> {
        let messages = self.messages;
        self.claimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |claimed| {
                (claimed < messages).then(|| claimed + n_max.min(messages - claimed))
            })
            .ok()
            .map(|first| (first, n_max.min(messages - first)))
    }

    /// Moves `last` (one of the `last_*_ns`) to now.
    fn mark(&self, last: &AtomicU64) {
        let since_start = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        last.fetch_max(since_start, Ordering::SeqCst);
    }

    /// Tells consumers to stop once everything there is to receive was acked.
    fn stop_when_drained(&self) {
        let drained = match self.workload {
            Workload::Produce => true,
            Workload::Consume => self.messages <= self.acked.load(Ordering::SeqCst),
            Workload::E2e => {
                self.producers_done.load(Ordering::SeqCst)
                    && self.sent.load(Ordering::SeqCst) <= self.acked.load(Ordering::SeqCst)
            }
        };
        if drained {
            self.stop.send_replace(true);
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("the bounds are valid")
}

fn record_us(histogram: &mut Histogram<u64>, from_ns: u64, to_ns: u64) {
    let micros = to_ns.saturating_sub(from_ns) / 1000;
    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
}

/// Prefills for `consume`, then runs the timed part. Returns `(prefilled, measured)`.
async fn run_on(config: &Config, broker: &Broker) -> Result<(u64, Measured), BenchError> {
    let prefilled = if config.workload == Workload::Consume {
        prefill(config, broker).await?
    } else {
        0
    };
    // Every connection is opened before the clock starts.
    let mut consumer_sessions = Vec::new();
    if config.workload != Workload::Produce {
        for _ in 0..config.consumers {
            consumer_sessions.push(
                broker
                    .consumer(config.receive_batch, config.wait_ms)
                    .await?,
            );
        }
    }
    let mut producer_sessions = Vec::new();
    if config.workload != Workload::Consume {
        for _ in 0..config.producers {
            producer_sessions.push(broker.producer(false).await?);
        }
    }
    let (stop, _) = watch::channel(false);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        workload: config.workload,
        start,
        start_ns: body::now_ns(),
        deadline: start + config.duration,
        messages: if config.workload == Workload::Consume {
            prefilled
        } else {
            config.messages
        },
        claimed: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        sent_bytes: AtomicU64::new(0),
        received_bytes: AtomicU64::new(0),
        last_sent_ns: AtomicU64::new(0),
        last_acked_ns: AtomicU64::new(0),
        producers_done: AtomicBool::new(false),
        stop,
    });
    let progress = (config.progress && std::io::stdout().is_terminal())
        .then(|| tokio::spawn(draw_progress(Arc::clone(&shared))));

    let mut consumers = JoinSet::new();
    if config.workload != Workload::Produce {
        for session in consumer_sessions {
            consumers.spawn(consume(Arc::clone(&shared), session, config.clone()));
        }
    }
    let mut send_call = histogram();
    if config.workload != Workload::Consume {
        let mut producers = JoinSet::new();
        // The `inflight` senders of one producer share its connection.
        for session in &producer_sessions {
            for _ in 0..config.inflight {
                producers.spawn(produce(
                    Arc::clone(&shared),
                    session.clone(),
                    config.clone(),
                ));
            }
        }
        while let Some(joined) = producers.join_next().await {
            if let Ok(histogram) = joined {
                let _ = send_call.add(histogram);
            }
        }
    }
    shared.producers_done.store(true, Ordering::SeqCst);
    shared.stop_when_drained();
    let mut latency = histogram();
    let mut latency_from_schedule = histogram();
    while let Some(joined) = consumers.join_next().await {
        if let Ok((own, own_from_schedule)) = joined {
            let _ = latency.add(own);
            let _ = latency_from_schedule.add(own_from_schedule);
        }
    }
    shared.stop.send_replace(true);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    Ok((
        prefilled,
        Measured {
            shared,
            latency,
            latency_from_schedule,
            send_call,
        },
    ))
}

/// Fills the queue with `config.messages` messages (Baton: over the native API), untimed.
async fn prefill(config: &Config, broker: &Broker) -> Result<u64, BenchError> {
    let claimed = Arc::new(AtomicU64::new(0));
    let mut senders = JoinSet::new();
    for _ in 0..PREFILL_SENDERS {
        let claimed = Arc::clone(&claimed);
        let native = broker.producer(true).await?;
        let (messages, message_bytes) = (config.messages, config.message_bytes);
        let batch = u64::from(PREFILL_BATCH)
            .min(BATCH_BYTES_MAX_NATIVE / u64::from(message_bytes))
            .max(1);
        senders.spawn(async move {
            let mut sent = 0;
            loop {
                let first = claimed.fetch_add(batch, Ordering::SeqCst);
                if messages <= first {
                    return Ok::<u64, BenchError>(sent);
                }
                let n = batch.min(messages - first);
                let now = body::now_ns();
                let bodies = (0..n)
                    .map(|_| body::encode(now, now, message_bytes))
                    .collect();
                sent += native.send(bodies).await?;
            }
        });
    }
    let mut prefilled = 0;
    while let Some(joined) = senders.join_next().await {
        if let Ok(sent) = joined {
            prefilled += sent?;
        }
    }
    Ok(prefilled)
}

/// One concurrent sender: claims batches of the budget until it or the time runs out.
/// Returns the round trips of its send calls.
async fn produce(shared: Arc<Shared>, target: Producer, config: Config) -> Histogram<u64> {
    let mut send_call = histogram();
    let batch = u64::from(config.batch);
    loop {
        if shared.deadline <= Instant::now() {
            break;
        }
        let Some((first, n)) = shared.claim(batch) else {
            break;
        };
        // With a rate, message `i` is due at `scheduled_offset(i)`; the batch leaves when its
        // last message is due.
        let due = |idx: u64| body::scheduled_offset(idx, config.rate_per_s);
        if config.rate_per_s != 0 {
            let at = shared.start + due(first + n - 1);
            if shared.deadline <= at {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        let sent_ns = body::now_ns();
        let bodies = (first..first + n)
            .map(|idx| {
                let scheduled_ns = if config.rate_per_s == 0 {
                    sent_ns
                } else {
                    let offset = u64::try_from(due(idx).as_nanos()).unwrap_or(u64::MAX);
                    shared.start_ns.saturating_add(offset)
                };
                body::encode(sent_ns, scheduled_ns, config.message_bytes)
            })
            .collect();
        let call_start = Instant::now();
        match target.send(bodies).await {
            Ok(sent) => {
                let micros = u64::try_from(call_start.elapsed().as_micros()).unwrap_or(u64::MAX);
                send_call.saturating_record(micros.clamp(1, LATENCY_US_MAX));
                shared.sent.fetch_add(sent, Ordering::SeqCst);
                shared
                    .sent_bytes
                    .fetch_add(sent * u64::from(config.message_bytes), Ordering::SeqCst);
                shared.errors.fetch_add(n - sent, Ordering::SeqCst);
                shared.mark(&shared.last_sent_ns);
            }
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    send_call
}

/// One consumer: receives and acks until told to stop, or until its time is up. Returns its
/// latency histograms (from the send time, and from the scheduled time).
async fn consume(
    shared: Arc<Shared>,
    mut target: Consumer,
    config: Config,
) -> (Histogram<u64>, Histogram<u64>) {
    let mut latency = histogram();
    let mut latency_from_schedule = histogram();
    let mut stop = shared.stop.subscribe();
    let end = match config.workload {
        Workload::E2e => shared.deadline + DRAIN_TIMEOUT,
        Workload::Produce | Workload::Consume => shared.deadline,
    };
    let mut pending_acks = std::collections::VecDeque::new();
    loop {
        if *stop.borrow() || end <= Instant::now() {
            break;
        }
        let received = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep_until(end.into()) => break,
            received = target.receive(config.receive_batch, config.wait_ms) => received,
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        if messages.is_empty() {
            shared.stop_when_drained();
            continue;
        }
        let received_ns = body::now_ns();
        let n = messages.len() as u64;
        let mut receipts = Vec::with_capacity(messages.len());
        let mut bytes = 0;
        for message in messages {
            bytes += message.body.len() as u64;
            if let Some((sent_ns, scheduled_ns)) = body::decode(&message.body) {
                record_us(&mut latency, sent_ns, received_ns);
                record_us(&mut latency_from_schedule, scheduled_ns, received_ns);
            }
            receipts.push(message.receipt);
        }
        shared.received.fetch_add(n, Ordering::SeqCst);
        shared.received_bytes.fetch_add(bytes, Ordering::SeqCst);
        match target.detached_ack(receipts) {
            // Up to `ack_inflight` acks run while the next receive does; beyond that the
            // oldest must be done first.
            Ok(ack) => {
                if pending_acks.len() >= config.ack_inflight as usize {
                    if let Some(oldest) = pending_acks.pop_front() {
                        let _: Result<(), _> = oldest.await;
                    }
                }
                let shared = shared.clone();
                pending_acks.push_back(tokio::spawn(async move {
                    count_ack(&shared, n, ack.await).await;
                }));
            }
            Err(receipts) => count_ack(&shared, n, target.ack(receipts).await).await,
        }
    }
    for pending in pending_acks {
        let _ = pending.await;
    }
    (latency, latency_from_schedule)
}

/// Counts the outcome of acking `n` received messages.
async fn count_ack(shared: &Shared, n: u64, acked: Result<u64, BenchError>) {
    match acked {
        Ok(acked) => {
            shared.acked.fetch_add(acked, Ordering::SeqCst);
            shared.errors.fetch_add(n - acked, Ordering::SeqCst);
            shared.mark(&shared.last_acked_ns);
        }
        Err(_) => {
            shared.errors.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(ERROR_BACKOFF).await;
        }
    }
    shared.stop_when_drained();
}

/// Redraws a spinner with the current rates until the run stops.
async fn draw_progress(shared: Arc<Shared>) {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
        bar.set_style(style);
    }
    let mut stop = shared.stop.subscribe();
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    let (mut last_sent, mut last_acked, mut last_at) = (0, 0, Instant::now());
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = ticker.tick() => {}
        }
        let (sent, acked) = (
            shared.sent.load(Ordering::SeqCst),
            shared.acked.load(Ordering::SeqCst),
        );
        let seconds = last_at.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "sent {sent} ({:.0}/s)  acked {acked} ({:.0}/s)  errors {}",
            (sent - last_sent) as f64 / seconds,
            (acked - last_acked) as f64 / seconds,
            shared.errors.load(Ordering::SeqCst),
        ));
        bar.tick();
        (last_sent, last_acked, last_at) = (sent, acked, Instant::now());
    }
    bar.finish_and_clear();
}

impl Measured {
    fn into_report(self, config: Config, queue: String, prefilled: u64) -> Report {
        let shared = &self.shared;
        let send_elapsed = Duration::from_nanos(shared.last_sent_ns.load(Ordering::SeqCst));
        let receive_elapsed = Duration::from_nanos(shared.last_acked_ns.load(Ordering::SeqCst));
        let elapsed = send_elapsed.max(receive_elapsed);
        let rated = config.rate_per_s != 0;
        Report {
            queue,
            prefilled,
            sent: shared.sent.load(Ordering::SeqCst),
            received: shared.received.load(Ordering::SeqCst),
            acked: shared.acked.load(Ordering::SeqCst),
            errors: shared.errors.load(Ordering::SeqCst),
            elapsed,
            send_elapsed,
            receive_elapsed,
            sent_bytes: shared.sent_bytes.load(Ordering::SeqCst),
            received_bytes: shared.received_bytes.load(Ordering::SeqCst),
            // In `consume` the bodies were written by the untimed prefill, so their age says
            // how long the prefill took, not how fast the broker delivers.
            latency: percentiles(&self.latency).filter(|_| config.workload == Workload::E2e),
            latency_from_schedule: percentiles(&self.latency_from_schedule)
                .filter(|_| rated && config.workload == Workload::E2e),
            send_call: percentiles(&self.send_call),
            config,
        }
    }
}

/// `count` a second over `elapsed`; 0 when nothing happened.
fn per_s(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    count as f64 / elapsed.as_secs_f64()
}

fn percentiles(histogram: &Histogram<u64>) -> Option<Percentiles> {
    if histogram.is_empty() {
        return None;
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Some(Percentiles {
        count: histogram.len(),
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
    })
}

impl Percentiles {
    fn to_json(self) -> Value {
        json!({"count": self.count, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
               "p99_ms": self.p99_ms, "p999_ms": self.p999_ms, "max_ms": self.max_ms})
    }
}

impl Report {
    /// Sent messages a second, over `send_elapsed`.
    pub fn sent_per_s(&self) -> f64 {
        per_s(self.sent, self.send_elapsed)
    }

    /// Received messages a second, over `receive_elapsed`.
    pub fn received_per_s(&self) -> f64 {
        per_s(self.received, self.receive_elapsed)
    }

    /// Sent megabytes (10^6 bytes of bodies) a second, over `send_elapsed`.
    pub fn sent_mb_per_s(&self) -> f64 {
        per_s(self.sent_bytes, self.send_elapsed) / 1e6
    }

    /// Received megabytes (10^6 bytes of bodies) a second, over `receive_elapsed`.
    pub fn received_mb_per_s(&self) -> f64 {
        per_s(self.received_bytes, self.receive_elapsed) / 1e6
    }

    /// The report as one JSON object (what `--json` prints).
    pub fn to_json(&self) -> Value {
        let config = &self.config;
        json!({
            "workload": workload_name(config.workload),
            "target": config.system.name(),
            "api": api_label(config),
            "url": config.broker_url(),
            "queue": self.queue,
            "producers": config.producers,
            "consumers": config.consumers,
            "message_bytes": config.message_bytes,
            "batch": config.batch,
            "receive_batch": config.receive_batch,
            "http2": config.http2,
            "inflight": config.inflight,
            "ack_inflight": config.ack_inflight,
            "rate_per_s": config.rate_per_s,
            "prefilled": self.prefilled,
            "sent": self.sent,
            "received": self.received,
            "acked": self.acked,
            "errors": self.errors,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "send_elapsed_s": self.send_elapsed.as_secs_f64(),
            "receive_elapsed_s": self.receive_elapsed.as_secs_f64(),
            "sent_per_s": self.sent_per_s(),
            "received_per_s": self.received_per_s(),
            "sent_mb_per_s": self.sent_mb_per_s(),
            "received_mb_per_s": self.received_mb_per_s(),
            "latency": self.latency.map(Percentiles::to_json),
            "latency_from_schedule": self.latency_from_schedule.map(Percentiles::to_json),
            "send_call": self.send_call.map(Percentiles::to_json),
        })
    }
}

/// The human summary printed at the end of a run.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.config;
        let mut workers = Vec::new();
        if config.workload != Workload::Consume {
            workers.push(format!(
                "{} producers × {} in flight",
                config.producers, config.inflight
            ));
        }
        if config.workload != Workload::Produce {
            workers.push(format!("{} consumers", config.consumers));
        }
        if config.rate_per_s != 0 {
            workers.push(format!("rate {}/s", config.rate_per_s));
        }
        writeln!(
            f,
            "baton bench {} against {} over the {} api: queue {}, {}, {} B messages, batch {}",
            workload_name(config.workload),
            config.system.name(),
            api_label(config),
            self.queue,
            workers.join(", "),
            config.message_bytes,
            config.batch,
        )?;
        if self.prefilled != 0 {
            writeln!(f, "prefilled   {} (not timed)", self.prefilled)?;
        }
        writeln!(
            f,
            "messages    sent {}  received {}  acked {}  errors {}",
            self.sent, self.received, self.acked, self.errors
        )?;
        writeln!(
            f,
            "elapsed     {:.2} s (last send at {:.2} s, last ack at {:.2} s)",
            self.elapsed.as_secs_f64(),
            self.send_elapsed.as_secs_f64(),
            self.receive_elapsed.as_secs_f64(),
        )?;
        writeln!(
            f,
            "throughput  sent {:.0} msg/s ({:.1} MB/s)  received {:.0} msg/s ({:.1} MB/s)",
            self.sent_per_s(),
            self.sent_mb_per_s(),
            self.received_per_s(),
            self.received_mb_per_s(),
        )?;
        let lines = [
            ("latency", self.latency),
            ("from sched.", self.latency_from_schedule),
            ("send call", self.send_call),
        ];
        for (name, percentiles) in lines {
            if let Some(p) = percentiles {
                writeln!(
                    f,
                    "{name:<11} p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
                    p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
                )?;
            }
        }
        Ok(())
    }
}

fn workload_name(workload: Workload) -> &'static str {
    match workload {
        Workload::Produce => "produce",
        Workload::Consume => "consume",
        Workload::E2e => "e2e",
    }
}

/// The API or protocol the run used: Baton's `native` or `sqs`, or the peer's.
fn api_label(config: &Config) -> &'static str {
    match (config.system, config.api) {
        (System::Baton, Api::Native) => "native",
        (System::Baton, Api::Wire) => "wire",
        (System::Baton, Api::Sqs) => "sqs",
        (System::Redis, _) => "streams",
        (System::RabbitMq, _) if config.rabbitmq_quorum => "amqp-quorum",
        (System::RabbitMq, _) => "amqp-classic",
        (System::Nats, _) => "jetstream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(messages: u64) -> Shared {
        let start = Instant::now();
        Shared {
            workload: Workload::Produce,
            start,
            start_ns: 0,
            deadline: start,
            messages,
            claimed: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            last_sent_ns: AtomicU64::new(0),
            last_acked_ns: AtomicU64::new(0),
            producers_done: AtomicBool::new(false),
            stop: watch::channel(false).0,
        }
    }

    #[test]
    fn claims_split_the_budget_exactly() {
        let shared = shared(25);
        assert_eq!(shared.claim(10), Some((0, 10)));
        assert_eq!(shared.claim(10), Some((10, 10)));
        assert_eq!(shared.claim(10), Some((20, 5)));
        assert_eq!(shared.claim(10), None);
    }

    fn config() -> Config {
        Config {
            url: "http://127.0.0.1:9324".to_string(),
            system: System::Baton,
            target_url: None,
            rabbitmq_quorum: false,
            workload: Workload::E2e,
            api: Api::Native,
            producers: 1,
            consumers: 1,
            message_bytes: 1024,
            batch: 1,
            receive_batch: 1,
            http2: false,
            inflight: 1,
            ack_inflight: 1,
            rate_per_s: 0,
            duration: Duration::from_secs(10),
            messages: 1_000_000,
            queue: None,
            wait_ms: 1000,
            progress: false,
            wire_addr: None,
        }
    }

    #[test]
    fn config_bounds_are_checked() {
        assert!(config().validate().is_ok());
        let cases = [
            Config {
                batch: 11,
                api: Api::Sqs,
                ..config()
            },
            Config {
                batch: 1001,
                ..config()
            },
            Config {
                receive_batch: 0,
                ..config()
            },
            Config {
                receive_batch: 11,
                api: Api::Sqs,
                ..config()
            },
            Config {
                message_bytes: 31,
                ..config()
            },
            Config {
                producers: 0,
                ..config()
            },
            Config {
                consumers: 0,
                ..config()
            },
            Config {
                messages: 0,
                ..config()
            },
            Config {
                wait_ms: 20_001,
                ..config()
            },
            Config {
                batch: 1000,
                message_bytes: MESSAGE_BYTES_MAX,
                ..config()
            },
        ];
        for case in cases {
            assert!(
                matches!(case.validate(), Err(BenchError::InvalidConfig(_))),
                "{case:?}"
            );
        }
        assert!(Config {
            consumers: 0,
            workload: Workload::Produce,
            ..config()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn peers_have_their_own_urls_and_options() {
        let redis = Config {
            system: System::Redis,
            ..config()
        };
        assert_eq!(redis.broker_url(), "redis://127.0.0.1:6379");
        assert!(redis.validate().is_ok());
        let elsewhere = Config {
            target_url: Some("redis://127.0.0.1:6380".to_string()),
            ..redis.clone()
        };
        assert_eq!(elsewhere.broker_url(), "redis://127.0.0.1:6380");
        assert_eq!(config().broker_url(), "http://127.0.0.1:9324");
        assert!(Config {
            system: System::RabbitMq,
            rabbitmq_quorum: true,
            batch: 1000,
            ..config()
        }
        .validate()
        .is_ok());
        let refused = [
            Config {
                target_url: Some("amqp://127.0.0.1:5672".to_string()),
                ..redis.clone()
            },
            Config {
                api: Api::Sqs,
                ..redis.clone()
            },
            Config {
                queue: Some("q".to_string()),
                ..redis.clone()
            },
            Config {
                batch: 1001,
                ..redis.clone()
            },
            Config {
                rabbitmq_quorum: true,
                ..redis.clone()
            },
            Config {
                http2: true,
                ..redis.clone()
            },
            Config {
                target_url: Some("redis://127.0.0.1:6379".to_string()),
                ..config()
            },
        ];
        for case in refused {
            assert!(
                matches!(case.validate(), Err(BenchError::InvalidConfig(_))),
                "{case:?}"
            );
        }
    }
}
