//! HTTP push delivery: the broker consumes a queue itself and POSTs each message to the
//! subscription's URL.
//!
//! Owns the push subscriptions (kept durably by the engine as the queue's `PushSpec`, set and
//! removed with `QueueEngine::set_push`, so a restart resumes them), one worker task per
//! subscribed queue, and the per-host circuit breakers ([`breaker`]).
//!
//! Invariants:
//! - A worker holds at most `concurrency` deliveries in flight (a semaphore permit per
//!   delivery, taken before the receive) and starts at most `rate_per_s` per second.
//! - A FIFO queue is received one message at a time: the engine hides a group while one of its
//!   messages is in flight, so a group gets one delivery at a time, in order.
//! - While a host's breaker is open the worker does not receive at all, so waiting messages
//!   keep their receive counts; a half-open breaker lets exactly one message through as probe.
//! - 2xx acks; any other answer, a timeout or a transport error nacks without a delay, so the
//!   queue's retry backoff and dead-letter policy apply.
//! - The lease of a pushed message is `timeout_ms` plus a margin, so it cannot end while its
//!   POST is still in flight.

pub mod breaker;
mod resync;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::{AttributeData, Delivery, QueueName};
use baton_engine::{Engine, EngineError, PushSpec, ReceiveOptions};
use baton_proto as proto;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::outbound::{self, OutboundRules, TargetError};
use crate::service::ServiceError;
use breaker::{Admission, BreakerConfig, Breakers};

/// The `QueueMeta` attribute where earlier versions kept a queue's subscription (JSON of
/// `PushSubscription`); moved to the engine's `PushSpec` when found at start-up.
const LEGACY_PUSH_ATTRIBUTE: &str = "baton.push";
pub const CONCURRENCY_DEFAULT: u32 = 10;
pub const CONCURRENCY_MAX: u32 = 1_000;
pub const TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const TIMEOUT_MS_MAX: u64 = 300_000;
pub const RATE_PER_S_MAX: u32 = 100_000;
/// Added to `timeout_ms` for the lease of a pushed message.
const LEASE_MARGIN_MS: u64 = 5_000;
/// How long one receive of a worker waits for a message.
const RECEIVE_WAIT_MS: u64 = 1_000;
/// Most messages one receive of a standard queue takes.
const RECEIVE_BATCH_MAX: usize = 10;
/// Pause after an engine error before a worker tries again.
const ERROR_PAUSE: Duration = Duration::from_millis(500);
/// How long a stopping worker lets its deliveries in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    in_flight_max: AtomicU64,
}

struct Worker {
    subscription: proto::PushSubscription,
    /// When this node started it: a re-sync (`resync.rs`) leaves alone a worker started
    /// after it read the queues, since what it read may predate the worker's subscription.
    started_at: tokio::time::Instant,
    host: String,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// What every push worker shares.
struct Shared {
    engine: Arc<dyn Engine>,
    client: reqwest::Client,
    breakers: Breakers,
    breaker_config: BreakerConfig,
    started: tokio::time::Instant,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// A subscription checked and ready to deliver with.
#[derive(Clone)]
struct Target {
    url: Url,
    host: String,
    headers: HeaderMap,
    concurrency: u32,
    timeout_ms: u64,
    rate_per_s: Option<u32>,
}

/// What [`PushManager::put_if_absent`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutIfAbsent {
    /// The queue had none; this one is stored and its worker started.
    Stored,
    /// The queue has this same subscription already.
    Same,
    /// The queue has another subscription; nothing changed.
    Other,
}

fn to_spec(subscription: &proto::PushSubscription) -> PushSpec {
    PushSpec {
        url: subscription.url.clone(),
        headers: subscription.headers.clone(),
        concurrency: subscription.concurrency,
        timeout_ms: subscription.timeout_ms,
        rate_per_s: subscription.rate_per_s,
    }
}

fn from_spec(spec: PushSpec) -> proto::PushSubscription {
    proto::PushSubscription {
        url: spec.url,
        headers: spec.headers,
        concurrency: spec.concurrency,
        timeout_ms: spec.timeout_ms,
        rate_per_s: spec.rate_per_s,
    }
}

/// Push subscriptions and their workers.
pub struct PushManager {
    shared: Arc<Shared>,
    rules: OutboundRules,
    workers: parking_lot::Mutex<HashMap<QueueName, Worker>>,
    /// Subscriptions other nodes set that this node refused to start (`resync.rs`).
    resync_refused: parking_lot::Mutex<HashMap<QueueName, proto::PushSubscription>>,
    stop: CancellationToken,
}

fn target_error(field: &str, error: TargetError) -> ServiceError {
    match error {
        TargetError::Invalid(reason) => ServiceError::invalid(field, reason),
        TargetError::NotAllowed(reason) => ServiceError::TargetNotAllowed {
            field: field.to_string(),
            reason,
        },
    }
}

/// `host:port` of `url`: the key of its circuit breaker.
fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl PushManager {
    pub fn new(
        engine: Arc<dyn Engine>,
        rules: OutboundRules,
        breaker_config: BreakerConfig,
        stop: CancellationToken,
    ) -> Self {
        PushManager {
            shared: Arc::new(Shared {
                engine,
                client: outbound::client(&rules),
                breakers: Breakers::default(),
                breaker_config,
                started: tokio::time::Instant::now(),
            }),
            rules,
            workers: parking_lot::Mutex::new(HashMap::new()),
            resync_refused: parking_lot::Mutex::new(HashMap::new()),
            stop,
        }
    }

    /// Validates `subscription` and fills in its defaults.
    pub fn validate(
        &self,
        mut subscription: proto::PushSubscription,
    ) -> Result<proto::PushSubscription, ServiceError> {
        self.target(&subscription)?;
        subscription.concurrency = Some(subscription.concurrency.unwrap_or(CONCURRENCY_DEFAULT));
        subscription.timeout_ms = Some(subscription.timeout_ms.unwrap_or(TIMEOUT_MS_DEFAULT));
        Ok(subscription)
    }

    fn target(&self, subscription: &proto::PushSubscription) -> Result<Target, ServiceError> {
        let url = self
            .rules
            .check_url(&subscription.url)
            .map_err(|e| target_error("url", e))?;
        outbound::check_headers(subscription.headers.iter()).map_err(|(name, reason)| {
            let field = name.map_or("headers".to_string(), |n| format!("headers.{n}"));
            ServiceError::invalid(field, reason)
        })?;
        let mut headers = HeaderMap::new();
        for (name, value) in &subscription.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let concurrency = subscription.concurrency.unwrap_or(CONCURRENCY_DEFAULT);
        if !(1..=CONCURRENCY_MAX).contains(&concurrency) {
            return Err(ServiceError::invalid(
                "concurrency",
                format!("{concurrency} is outside 1..={CONCURRENCY_MAX}"),
            ));
        }
        let timeout_ms = subscription.timeout_ms.unwrap_or(TIMEOUT_MS_DEFAULT);
        if !(1..=TIMEOUT_MS_MAX).contains(&timeout_ms) {
            return Err(ServiceError::invalid(
                "timeout_ms",
                format!("{timeout_ms} is outside 1..={TIMEOUT_MS_MAX}"),
            ));
        }
        if let Some(rate) = subscription.rate_per_s {
            if !(1..=RATE_PER_S_MAX).contains(&rate) {
                return Err(ServiceError::invalid(
                    "rate_per_s",
                    format!("{rate} is outside 1..={RATE_PER_S_MAX}"),
                ));
            }
        }
        Ok(Target {
            host: host_key(&url),
            url,
            headers,
            concurrency,
            timeout_ms,
            rate_per_s: subscription.rate_per_s,
        })
    }

    /// Under the private-address guard, refuses a target whose name resolves only to refused
    /// addresses (deliveries would refuse it anyway: better said when it is configured).
    async fn check_resolved(
        &self,
        subscription: &proto::PushSubscription,
    ) -> Result<(), ServiceError> {
        self.rules
            .check_url_resolved(&subscription.url, &outbound::system_lookup())
            .await
            .map(|_| ())
            .map_err(|e| target_error("url", e))
    }

    /// Stores `subscription` on `queue` durably and (re)starts its worker.
    pub async fn put(
        &self,
        queue: &QueueName,
        subscription: proto::PushSubscription,
    ) -> Result<proto::PushInfo, ServiceError> {
        let subscription = self.validate(subscription)?;
        self.check_resolved(&subscription).await?;
        self.shared
            .engine
            .set_push(queue, Some(to_spec(&subscription)), None)
            .await?;
        self.start(queue.clone(), subscription)?;
        self.info(queue)
    }

    /// Stores `subscription` on `queue` only where the queue has none, in one atomic step:
    /// whether it was stored, was there already, or another one is.
    pub async fn put_if_absent(
        &self,
        queue: &QueueName,
        subscription: proto::PushSubscription,
    ) -> Result<PutIfAbsent, ServiceError> {
        let subscription = self.validate(subscription)?;
        self.check_resolved(&subscription).await?;
        let spec = to_spec(&subscription);
        let engine = &self.shared.engine;
        match engine.set_push(queue, Some(spec.clone()), Some(None)).await {
            Ok(_) => {
                self.start(queue.clone(), subscription)?;
                Ok(PutIfAbsent::Stored)
            }
            Err(EngineError::MetaConflict { .. }) => {
                let current = engine.get_queue(queue).await?.meta.push;
                Ok(if current == Some(spec) {
                    PutIfAbsent::Same
                } else {
                    PutIfAbsent::Other
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The subscription of `queue` and its delivery figures.
    pub async fn get(&self, queue: &QueueName) -> Result<proto::PushInfo, ServiceError> {
        let view = self.shared.engine.get_queue(queue).await?;
        if view.meta.push.is_none() {
            return Err(ServiceError::PushNotConfigured {
                queue: queue.to_string(),
            });
        }
        self.info(queue)
    }

    /// Removes the subscription of `queue` durably and stops its worker.
    pub async fn delete(&self, queue: &QueueName) -> Result<(), ServiceError> {
        let engine = &self.shared.engine;
        let view = engine.get_queue(queue).await?;
        let Some(current) = view.meta.push else {
            return Err(ServiceError::PushNotConfigured {
                queue: queue.to_string(),
            });
        };
        // Only the subscription read here, so a put meanwhile is not removed unseen.
        engine.set_push(queue, None, Some(Some(current))).await?;
        if let Some(worker) = self.workers.lock().remove(queue) {
            worker.cancel.cancel();
        }
        Ok(())
    }

    fn info(&self, queue: &QueueName) -> Result<proto::PushInfo, ServiceError> {
        let workers = self.workers.lock();
        let worker = workers
            .get(queue)
            .ok_or_else(|| ServiceError::PushNotConfigured {
                queue: queue.to_string(),
            })?;
        let s = &worker.subscription;
        let (breaker, breaker_opened_total) = self.shared.breakers.state(&worker.host);
        let c = &worker.counters;
        Ok(proto::PushInfo {
            queue: queue.to_string(),
            url: s.url.clone(),
            headers: s.headers.clone(),
            concurrency: s.concurrency.unwrap_or(CONCURRENCY_DEFAULT),
            timeout_ms: s.timeout_ms.unwrap_or(TIMEOUT_MS_DEFAULT),
            rate_per_s: s.rate_per_s,
            stats: proto::PushStats {
                delivered_total: c.delivered.load(Ordering::Relaxed),
                failed_total: c.failed.load(Ordering::Relaxed),
                in_flight: c.in_flight.load(Ordering::Relaxed),
                in_flight_max_observed: c.in_flight_max.load(Ordering::Relaxed),
                breaker: breaker.to_string(),
                breaker_opened_total,
            },
        })
    }

    fn start(
        &self,
        queue: QueueName,
        subscription: proto::PushSubscription,
    ) -> Result<(), ServiceError> {
        let target = self.target(&subscription)?;
        let counters = Arc::new(Counters::default());
        let cancel = self.stop.child_token();
        let task = tokio::spawn(run_worker(
            self.shared.clone(),
            queue.clone(),
            target.clone(),
            counters.clone(),
            cancel.clone(),
        ));
        let worker = Worker {
            subscription,
            started_at: tokio::time::Instant::now(),
            host: target.host,
            counters,
            cancel,
            task,
        };
        if let Some(old) = self.workers.lock().insert(queue, worker) {
            old.cancel.cancel();
        }
        Ok(())
    }

    /// Starts the workers of every stored subscription once the engine has recovered; runs
    /// until then or until shutdown.
    pub async fn resume(&self) {
        let engine = self.shared.engine.clone();
        while !engine.is_ready() {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let queues = match engine.list_queues().await {
            Ok(queues) => queues,
            Err(error) => {
                tracing::error!(%error, "cannot list queues to resume push subscriptions");
                return;
            }
        };
        for view in queues {
            let stored = match view.meta.push {
                Some(spec) => Ok(from_spec(spec)),
                None => match view.meta.attributes.get(LEGACY_PUSH_ATTRIBUTE) {
                    Some(json) => self.migrate(&view.name, json).await,
                    None => continue,
                },
            };
            match stored.and_then(|s| self.validate(s)) {
                Ok(subscription) => {
                    if let Err(error) = self.start(view.name.clone(), subscription) {
                        tracing::error!(queue = %view.name, %error, "push subscription not resumed");
                    }
                }
                Err(error) => {
                    tracing::error!(queue = %view.name, %error, "stored push subscription is invalid (was the outbound list changed?); not resumed");
                }
            }
        }
    }

    /// Moves a subscription an earlier version kept in the queue's attributes into the
    /// engine's push subscription (set first, then the attribute removed: a crash between
    /// leaves both, and the next start finds the push subscription).
    async fn migrate(
        &self,
        queue: &QueueName,
        json: &str,
    ) -> Result<proto::PushSubscription, ServiceError> {
        let subscription = serde_json::from_str::<proto::PushSubscription>(json)
            .map_err(|e| ServiceError::invalid("push", e.to_string()))?;
        let engine = &self.shared.engine;
        match engine
            .set_push(queue, Some(to_spec(&subscription)), Some(None))
            .await
        {
            Ok(_) | Err(EngineError::MetaConflict { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let patch = baton_engine::MetaPatch {
            remove_attributes: vec![LEGACY_PUSH_ATTRIBUTE.to_string()],
            ..Default::default()
        };
        engine.update_queue_meta(queue, patch).await?;
        tracing::info!(%queue, "push subscription moved from the queue's attributes");
        Ok(subscription)
    }

    /// Stops every worker and waits (bounded) for their deliveries in flight.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let tasks: Vec<_> = self.workers.lock().drain().map(|(_, w)| w.task).collect();
        for task in tasks {
            let _ = tokio::time::timeout(STOP_GRACE, task).await;
        }
    }

    /// Appends the push figures in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP baton_push_deliveries_total Push deliveries by queue and outcome.\n# TYPE baton_push_deliveries_total counter"
        );
        let mut rows: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for (queue, worker) in self.workers.lock().iter() {
            let c = &worker.counters;
            rows.insert(
                queue.to_string(),
                (
                    c.delivered.load(Ordering::Relaxed),
                    c.failed.load(Ordering::Relaxed),
                    c.in_flight.load(Ordering::Relaxed),
                ),
            );
        }
        for (queue, (delivered, failed, _)) in &rows {
            let _ = writeln!(
                out,
                "baton_push_deliveries_total{{queue=\"{queue}\",outcome=\"delivered\"}} {delivered}"
            );
            let _ = writeln!(
                out,
                "baton_push_deliveries_total{{queue=\"{queue}\",outcome=\"failed\"}} {failed}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP baton_push_in_flight Push deliveries in flight by queue.\n# TYPE baton_push_in_flight gauge"
        );
        for (queue, (_, _, in_flight)) in &rows {
            let _ = writeln!(out, "baton_push_in_flight{{queue=\"{queue}\"}} {in_flight}");
        }
        let _ = writeln!(
            out,
            "# HELP baton_push_breaker_state Circuit breaker per target host: 0 closed, 1 open, 2 half-open.\n# TYPE baton_push_breaker_state gauge"
        );
        let snapshot = self.shared.breakers.snapshot();
        for (host, state, _) in &snapshot {
            let host = host.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(out, "baton_push_breaker_state{{host=\"{host}\"}} {state}");
        }
        let _ = writeln!(
            out,
            "# HELP baton_push_breaker_opened_total Times each target host's breaker opened.\n# TYPE baton_push_breaker_opened_total counter"
        );
        for (host, _, opened) in &snapshot {
            let host = host.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(
                out,
                "baton_push_breaker_opened_total{{host=\"{host}\"}} {opened}"
            );
        }
    }
}

/// Waits until `target`'s circuit breaker lets a delivery through: `Some(false)` for a normal
/// one, `Some(true)` for the probe of an open breaker, `None` when cancelled meanwhile.
async fn admitted(shared: &Shared, target: &Target, cancel: &CancellationToken) -> Option<bool> {
    loop {
        match shared.breakers.admit(&target.host, shared.now_ms()) {
            Admission::Go => return Some(false),
            Admission::Probe => return Some(true),
            Admission::Wait { until } => {
                let pause = Duration::from_millis(until.saturating_sub(shared.now_ms()).max(1));
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// One subscription's delivery loop; runs until `cancel` or until its queue is deleted.
async fn run_worker(
    shared: Arc<Shared>,
    queue: QueueName,
    target: Target,
    counters: Arc<Counters>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(target.concurrency as usize));
    let mut pacer = target.rate_per_s.map(|rate| {
        let mut pacer = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        pacer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pacer
    });
    let mut deliveries = JoinSet::new();
    'run: loop {
        while deliveries.try_join_next().is_some() {}
        let first = tokio::select! {
            _ = cancel.cancelled() => break 'run,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break 'run,
            },
        };
        let Some(probe) = admitted(&shared, &target, &cancel).await else {
            break 'run;
        };
        if let Some(pacer) = &mut pacer {
            tokio::select! {
                _ = cancel.cancelled() => {
                    if probe { shared.breakers.abandon_probe(&target.host); }
                    break 'run;
                }
                _ = pacer.tick() => {}
            }
        }
        let mut taken = vec![first];
        // One message at a time for FIFO order, a breaker's probe and a paced rate.
        if !queue.as_str().ends_with(".fifo") && !probe && pacer.is_none() {
            while taken.len() < RECEIVE_BATCH_MAX {
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => taken.push(permit),
                    Err(_) => break,
                }
            }
        }
        let options = ReceiveOptions {
            max: taken.len() as u32,
            wait_ms: Some(RECEIVE_WAIT_MS),
            visibility_timeout_ms: Some(target.timeout_ms + LEASE_MARGIN_MS),
        };
        let received = tokio::select! {
            _ = cancel.cancelled() => {
                if probe { shared.breakers.abandon_probe(&target.host); }
                break 'run;
            }
            received = shared.engine.receive(&queue, options) => received,
        };
        match received {
            Ok(batch) => {
                if batch.is_empty() && probe {
                    shared.breakers.abandon_probe(&target.host);
                }
                for (delivery, permit) in batch.into_iter().zip(taken) {
                    let shared = shared.clone();
                    let queue = queue.clone();
                    let target = target.clone();
                    let counters = counters.clone();
                    deliveries.spawn(async move {
                        deliver(&shared, &queue, &target, &counters, delivery, probe).await;
                        drop(permit);
                    });
                }
            }
            Err(EngineError::QueueNotFound { .. }) => {
                tracing::info!(queue = %queue, "queue deleted; push worker stops");
                break 'run;
            }
            Err(error) => {
                if probe {
                    shared.breakers.abandon_probe(&target.host);
                }
                tracing::warn!(queue = %queue, %error, "push receive failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => break 'run,
                    _ = tokio::time::sleep(ERROR_PAUSE) => {}
                }
            }
        }
    }
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while deliveries.join_next().await.is_some() {}
    })
    .await;
}

/// POSTs one message and acks or nacks it by the answer.
async fn deliver(
    shared: &Shared,
    queue: &QueueName,
    target: &Target,
    counters: &Counters,
    delivery: Delivery,
    probe: bool,
) {
    let now_in_flight = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counters
        .in_flight_max
        .fetch_max(now_in_flight, Ordering::SeqCst);
    let mut headers = target.headers.clone();
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    let mut put = |name: String, value: String| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    };
    put("baton-queue".to_string(), queue.to_string());
    put("baton-message-id".to_string(), delivery.id.to_string());
    put(
        "baton-receive-count".to_string(),
        delivery.receive_count.to_string(),
    );
    put(
        "baton-sent-at".to_string(),
        delivery.sent_at.as_millis().to_string(),
    );
    if let Some(group) = &delivery.group_id {
        put("baton-group-id".to_string(), group.to_string());
    }
    for (name, value) in delivery.attributes.iter() {
        let text = match value.data() {
            AttributeData::Text(text) => text.clone(),
            AttributeData::Binary(bytes) => BASE64.encode(bytes),
        };
        put(format!("baton-attr-{}", name.to_ascii_lowercase()), text);
    }
    let result = shared
        .client
        .post(target.url.clone())
        .headers(headers)
        .timeout(Duration::from_millis(target.timeout_ms))
        .body(delivery.body.to_string())
        .send()
        .await
        .map(|response| response.status());
    let success = matches!(&result, Ok(status) if status.is_success());
    shared.breakers.record(
        &target.host,
        &shared.breaker_config,
        shared.now_ms(),
        success,
        probe,
    );
    if success {
        counters.delivered.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = shared.engine.ack(queue, vec![delivery.receipt]).await {
            tracing::warn!(queue = %queue, id = %delivery.id, %error, "push ack failed; the message will be delivered again");
        }
    } else {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(queue = %queue, id = %delivery.id, reason = %outbound::failure_reason(&result, target.timeout_ms), "push delivery failed");
        if let Err(error) = shared
            .engine
            .nack(queue, vec![delivery.receipt], None)
            .await
        {
            tracing::warn!(queue = %queue, id = %delivery.id, %error, "push nack failed; the lease ends by itself");
        }
    }
    counters.in_flight.fetch_sub(1, Ordering::SeqCst);
}
