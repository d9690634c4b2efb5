//! The event API on Baton (a Spring Boot + Hazelcast event-delegation service's REST API):
//! the facade's logic behind `/api/events` and the built-in worker pool that processes events.
//!
//! Mapping:
//! - An event is a message in the queue `events` (standard), or in `events.fifo` when it has a
//!   `messageGroupId` (FIFO order within the group). Both are created on first use with
//!   dead-letter queues `events-dlq` / `events-dlq.fifo`; queues that already exist are used
//!   as they are. The body is the payload; the event type and the per-event settings travel
//!   as message attributes.
//! - `deduplicationId` is the message's dedup id: a repeat within the dedup window creates
//!   nothing and answers the original event's id.
//! - `maxRetries` / `retryDelayMs` are the event's processing retries, applied by the
//!   worker: a failed attempt is nacked with `retryDelayMs`; after `maxRetries` retries the
//!   event is dead-lettered (status FAILED). The queue's `max_receive_count` is
//!   `MAX_RETRIES_MAX + 1`; an event with fewer retries is moved there by releasing it
//!   without processing until the queue dead-letters it (visible as extra received/nacked
//!   history entries, receive counts included).
//! - `visibilityTimeoutMs` is the lease of each processing attempt (set right after receive).
//! - `notificationUrl` / `callbackHeaders` are the message's `notify`: the completion
//!   callback machinery (`crate::callbacks`) reports COMPLETED or FAILED, and a failed
//!   callback is retried with the server's `callback_max_retries` / `callback_retry_delay_ms`.
//! - Processing is simulated: each type sleeps its configured duration; an event whose
//!   payload contains `fail` (any case) fails every attempt, so retries and dead letters can
//!   be seen.
//! - Event type, payload, group and dedup ids are also kept in a bounded in-memory map
//!   (`EVENT_CACHE_MAX`) so the status answer can show them; after a restart or eviction they
//!   are omitted.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::limits::SEND_BATCH_MAX;
use baton_core::{
    AttributeValue, DeadLetterPolicy, Delivery, HistoryEventKind, MessageAttributes, MessageId,
    MessageStatus, Notify, QueueConfig, QueueName, SendEntry, StatusRecord,
};
use baton_engine::{Engine, EngineError, ReceiveOptions};
use baton_proto as proto;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::service::ServiceError;

pub const EVENTS_QUEUE: &str = "events";
pub const EVENTS_FIFO_QUEUE: &str = "events.fifo";
pub const EVENTS_DLQ: &str = "events-dlq";
pub const EVENTS_FIFO_DLQ: &str = "events-dlq.fifo";
pub const MAX_RETRIES_DEFAULT: u32 = 3;
/// Most processing retries an event may ask for.
pub const MAX_RETRIES_MAX: u32 = 10;
pub const RETRY_DELAY_MS_DEFAULT: u64 = 5_000;
pub const VISIBILITY_TIMEOUT_MS_DEFAULT: u64 = 30_000;
pub const PERFORMANCE_TEST_COUNT_DEFAULT: u32 = 1_000;
/// Events whose type and payload are remembered for the status answer.
pub const EVENT_CACHE_MAX: usize = 100_000;
/// Most events one worker takes per receive.
const WORKER_BATCH_MAX: u32 = 10;
const WORKER_WAIT_MS: u64 = 100;
const ERROR_PAUSE: Duration = Duration::from_millis(200);

const ATTR_TYPE: &str = "eventType";
const ATTR_MAX_RETRIES: &str = "maxRetries";
const ATTR_RETRY_DELAY: &str = "retryDelayMs";
const ATTR_VISIBILITY: &str = "visibilityTimeoutMs";

/// The event types of the event API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Notification,
    DataProcessing,
    HeavyTask,
}

impl EventType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NOTIFICATION" => Some(EventType::Notification),
            "DATA_PROCESSING" => Some(EventType::DataProcessing),
            "HEAVY_TASK" => Some(EventType::HeavyTask),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Notification => "NOTIFICATION",
            EventType::DataProcessing => "DATA_PROCESSING",
            EventType::HeavyTask => "HEAVY_TASK",
        }
    }
}

/// Simulated processing durations and the pool size.
#[derive(Debug, Clone, Copy)]
pub struct EventSettings {
    pub workers: u32,
    pub notification_ms: u64,
    pub data_processing_ms: u64,
    pub heavy_task_ms: u64,
    pub performance_test_max: u32,
    pub performance_test_wait_ms: u64,
}

impl EventSettings {
    fn duration(&self, kind: Option<EventType>) -> Duration {
        Duration::from_millis(match kind {
            Some(EventType::Notification) | None => self.notification_ms,
            Some(EventType::DataProcessing) => self.data_processing_ms,
            Some(EventType::HeavyTask) => self.heavy_task_ms,
        })
    }
}

/// One event to create, validated.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    pub payload: String,
    pub notify: Option<Notify>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub max_retries: u32,
    pub retry_delay_ms: u64,
    pub visibility_timeout_ms: u64,
}

impl NewEvent {
    pub fn simple(event_type: EventType, payload: String) -> Self {
        NewEvent {
            event_type,
            payload,
            notify: None,
            group_id: None,
            dedup_id: None,
            max_retries: MAX_RETRIES_DEFAULT,
            retry_delay_ms: RETRY_DELAY_MS_DEFAULT,
            visibility_timeout_ms: VISIBILITY_TIMEOUT_MS_DEFAULT,
        }
    }
}

/// What a status answer shows of an event besides its message's status record.
#[derive(Clone)]
struct Remembered {
    event_type: String,
    payload: String,
    group_id: Option<String>,
    dedup_id: Option<String>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<MessageId, Remembered>,
    order: VecDeque<MessageId>,
}

pub struct Events {
    engine: Arc<dyn Engine>,
    settings: EventSettings,
    cache: parking_lot::Mutex<Cache>,
    processed: AtomicU64,
    failed_attempts: AtomicU64,
    stop: CancellationToken,
}

fn name(text: &str) -> QueueName {
    QueueName::new(text).expect("facade queue names are valid")
}

fn event_status(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::DeadLettered => "FAILED",
        other => other.as_str(),
    }
}

fn attribute_u64(delivery: &Delivery, key: &str) -> Option<u64> {
    match delivery.attributes.get(key)?.data() {
        baton_core::AttributeData::Text(text) => text.parse().ok(),
        baton_core::AttributeData::Binary(_) => None,
    }
}

impl Events {
    pub fn new(engine: Arc<dyn Engine>, settings: EventSettings, stop: CancellationToken) -> Self {
        Events {
            engine,
            settings,
            cache: parking_lot::Mutex::default(),
            processed: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            stop,
        }
    }

    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// Creates the event queue pair (`fifo`: the FIFO pair) unless it exists.
    async fn ensure_queue(&self, fifo: bool) -> Result<QueueName, ServiceError> {
        let (queue, dlq) = if fifo {
            (name(EVENTS_FIFO_QUEUE), name(EVENTS_FIFO_DLQ))
        } else {
            (name(EVENTS_QUEUE), name(EVENTS_DLQ))
        };
        match self.engine.get_queue(&queue).await {
            Ok(_) => return Ok(queue),
            Err(EngineError::QueueNotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let base = QueueConfig {
            fifo,
            ..QueueConfig::default()
        };
        match self.engine.create_queue(dlq.clone(), base.clone()).await {
            Ok(_) | Err(EngineError::QueueExists { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let config = QueueConfig {
            visibility_timeout_ms: VISIBILITY_TIMEOUT_MS_DEFAULT,
            dead_letter: Some(DeadLetterPolicy {
                queue: dlq,
                max_receive_count: MAX_RETRIES_MAX + 1,
            }),
            ..base
        };
        match self.engine.create_queue(queue.clone(), config).await {
            Ok(_) | Err(EngineError::QueueExists { .. }) => Ok(queue),
            Err(error) => Err(error.into()),
        }
    }

    fn entry(event: &NewEvent) -> Result<SendEntry, ServiceError> {
        let mut attributes = BTreeMap::new();
        attributes.insert(
            ATTR_TYPE.to_string(),
            AttributeValue::string(event.event_type.as_str()),
        );
        attributes.insert(
            ATTR_MAX_RETRIES.to_string(),
            AttributeValue::string(event.max_retries.to_string()),
        );
        attributes.insert(
            ATTR_RETRY_DELAY.to_string(),
            AttributeValue::string(event.retry_delay_ms.to_string()),
        );
        attributes.insert(
            ATTR_VISIBILITY.to_string(),
            AttributeValue::string(event.visibility_timeout_ms.to_string()),
        );
        let id = baton_engine::new_message_id();
        let fifo = event.group_id.is_some();
        Ok(SendEntry {
            id,
            body: event.payload.clone().into(),
            attributes: MessageAttributes::new(attributes)?,
            delay_ms: None,
            group_id: event.group_id.clone(),
            // A FIFO queue needs a dedup id; without one each event is its own.
            dedup_id: event
                .dedup_id
                .clone()
                .or_else(|| fifo.then(|| id.to_string())),
            notify: event.notify.clone(),
        })
    }

    fn remember(&self, id: MessageId, event: &NewEvent) {
        let mut cache = self.cache.lock();
        if cache.entries.contains_key(&id) {
            return;
        }
        let remembered = Remembered {
            event_type: event.event_type.as_str().to_string(),
            payload: event.payload.clone(),
            group_id: event.group_id.clone(),
            dedup_id: event.dedup_id.clone(),
        };
        cache.entries.insert(id, remembered);
        cache.order.push_back(id);
        while cache.order.len() > EVENT_CACHE_MAX {
            if let Some(old) = cache.order.pop_front() {
                cache.entries.remove(&old);
            }
        }
    }

    /// Creates one event; answers it as `GET /api/events/{id}` would.
    pub async fn create(&self, event: NewEvent) -> Result<proto::Event, ServiceError> {
        let queue = self.ensure_queue(event.group_id.is_some()).await?;
        let entry = Self::entry(&event)?;
        let outcome = self.engine.send(&queue, vec![entry]).await?;
        let Some(outcome) = outcome.first() else {
            return Err(ServiceError::Internal(
                "the send answered no outcome".to_string(),
            ));
        };
        self.remember(outcome.id, &event);
        let mut answer = self.status(&outcome.id.to_string()).await?;
        answer.duplicate = outcome.duplicate;
        answer.message_group_id = event.group_id;
        answer.deduplication_id = event.dedup_id;
        Ok(answer)
    }

    /// The event's status, looked up in both event queues.
    pub async fn status(&self, event_id: &str) -> Result<proto::Event, ServiceError> {
        let not_found = || ServiceError::EventNotFound {
            id: event_id.to_string(),
        };
        let id = MessageId::parse(event_id).ok_or_else(not_found)?;
        for queue in [EVENTS_QUEUE, EVENTS_FIFO_QUEUE] {
            let queue = name(queue);
            match self.engine.message_status(&queue, id).await {
                Ok(record) => return Ok(self.to_event(&queue, record)),
                Err(EngineError::MessageNotFound { .. } | EngineError::QueueNotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(not_found())
    }

    fn to_event(&self, queue: &QueueName, record: StatusRecord) -> proto::Event {
        let known = self.cache.lock().entries.get(&record.id).cloned();
        let created_at = record.history.first().map_or(0, |e| e.at.as_millis());
        let processed_at = record
            .history
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.kind,
                    baton_core::HistoryEventKind::Acked
                        | baton_core::HistoryEventKind::DeadLettered
                )
            })
            .map(|e| e.at.as_millis());
        let receive_count = record.history.last().map_or(0, |e| e.receive_count);
        let wire = crate::service::queues::status_to_wire(queue, record.clone());
        proto::Event {
            event_id: record.id.to_string(),
            event_type: known.as_ref().map(|k| k.event_type.clone()),
            payload: known.as_ref().map(|k| k.payload.clone()),
            status: event_status(record.status).to_string(),
            queue: queue.to_string(),
            created_at,
            processed_at,
            receive_count,
            message_group_id: known.as_ref().and_then(|k| k.group_id.clone()),
            deduplication_id: known.and_then(|k| k.dedup_id),
            duplicate: false,
            history: wire.history,
        }
    }

    /// The figures of `GET /api/events/queue-info`.
    pub async fn queue_info(
        &self,
        callbacks: &crate::callbacks::Callbacks,
    ) -> Result<proto::EventQueueInfo, ServiceError> {
        let mut info = proto::EventQueueInfo {
            queue_size: 0,
            processed_count: 0,
            failed_count: 0,
            callback_failed_count: 0,
            callback_retry_queue_size: 0,
            callback_parked_count: 0,
            in_flight_count: 0,
            delayed_count: 0,
            dead_letter_queue_size: 0,
            workers: self.settings.workers,
        };
        for queue in [EVENTS_QUEUE, EVENTS_FIFO_QUEUE] {
            if let Ok(view) = self.engine.get_queue(&name(queue)).await {
                info.queue_size += view.stats.depth();
                info.processed_count += view.stats.acked_total;
                info.failed_count += view.stats.dead_lettered_total;
                info.in_flight_count += view.stats.in_flight;
                info.delayed_count += view.stats.delayed;
            }
        }
        for dlq in [EVENTS_DLQ, EVENTS_FIFO_DLQ] {
            if let Ok(view) = self.engine.get_queue(&name(dlq)).await {
                info.dead_letter_queue_size += view.stats.depth();
            }
        }
        info.callback_failed_count = self
            .engine
            .callback_failed(usize::MAX)
            .await?
            .iter()
            .filter(|(queue, _)| matches!(queue.as_str(), EVENTS_QUEUE | EVENTS_FIFO_QUEUE))
            .count() as u64;
        let (retrying, parked) = callbacks.queue_sizes().await;
        info.callback_retry_queue_size = retrying;
        info.callback_parked_count = parked;
        Ok(info)
    }

    /// `POST /api/events/retry-callback/{eventId}`.
    pub async fn retry_callback(
        &self,
        callbacks: &crate::callbacks::Callbacks,
        event_id: &str,
    ) -> Result<proto::EventCallbackRetry, ServiceError> {
        let event = self.status(event_id).await?;
        let id = MessageId::parse(event_id).ok_or_else(|| ServiceError::EventNotFound {
            id: event_id.to_string(),
        })?;
        let result = match callbacks.retry(&name(&event.queue), id).await {
            // Said in the event API's own status names (FAILED for a dead-lettered event).
            Err(ServiceError::CallbackNotFailed { id, .. }) => {
                let status = self.status(event_id).await?.status;
                return Err(ServiceError::CallbackNotFailed { id, status });
            }
            other => other?,
        };
        let after = self.status(event_id).await?;
        Ok(proto::EventCallbackRetry {
            event_id: event_id.to_string(),
            success: result.ok,
            error: result.error,
            status: after.status,
        })
    }

    /// Creates `count` events of `event_type`, waits (at most
    /// `events_performance_test_wait_ms`) until they are processed, and reports.
    pub async fn performance_test(
        &self,
        count: u32,
        event_type: EventType,
    ) -> Result<proto::PerformanceTestResult, ServiceError> {
        let queue = self.ensure_queue(false).await?;
        let started = Instant::now();
        let mut pending: HashSet<MessageId> = HashSet::with_capacity(count as usize);
        let mut left = count as usize;
        while left > 0 {
            let n = left.min(SEND_BATCH_MAX);
            let entries = (0..n)
                .map(|i| {
                    Self::entry(&NewEvent::simple(
                        event_type,
                        format!("performance-test-{}", count as usize - left + i),
                    ))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for outcome in self.engine.send(&queue, entries).await? {
                pending.insert(outcome.id);
            }
            left -= n;
        }
        let deadline = started + Duration::from_millis(self.settings.performance_test_wait_ms);
        let (mut processed, mut failed) = (0u32, 0u32);
        // (created, processed) times of each processed event, from its history.
        let mut samples: Vec<(u64, u64)> = Vec::with_capacity(count as usize);
        let mut pause = Duration::from_millis(5);
        loop {
            let ids: Vec<MessageId> = pending.iter().copied().collect();
            for id in ids {
                let record = match self.engine.message_status(&queue, id).await {
                    Ok(record) => Some(record),
                    Err(EngineError::MessageNotFound { .. }) => None,
                    Err(error) => return Err(error.into()),
                };
                let status = record.as_ref().map_or(MessageStatus::Expired, |r| r.status);
                let done = match status {
                    MessageStatus::Completed | MessageStatus::CallbackFailed => {
                        processed += 1;
                        if let Some(sample) = record.as_ref().and_then(processing_span) {
                            samples.push(sample);
                        }
                        true
                    }
                    MessageStatus::DeadLettered
                    | MessageStatus::Expired
                    | MessageStatus::Purged => {
                        failed += 1;
                        true
                    }
                    MessageStatus::Failed => {
                        failed += 1;
                        true
                    }
                    MessageStatus::Pending | MessageStatus::Delayed | MessageStatus::Processing => {
                        false
                    }
                };
                if done {
                    pending.remove(&id);
                }
            }
            if pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        let timeline = throughput_timeline(&samples);
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Ok(proto::PerformanceTestResult {
            count,
            event_type: event_type.as_str().to_string(),
            elapsed_ms,
            events_per_second: f64::from(processed) / seconds,
            processed,
            failed,
            timed_out: !pending.is_empty(),
            latency_ms: latency_percentiles(&samples),
            bucket_ms: timeline.0,
            timeline: timeline.1,
        })
    }

    /// The built-in processor: `workers` tasks consuming both event queues until shutdown.
    pub async fn run_workers(self: Arc<Self>) {
        if self.settings.workers == 0 {
            return;
        }
        while !self.engine.is_ready() {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let mut workers = JoinSet::new();
        for _ in 0..self.settings.workers {
            workers.spawn(self.clone().work());
        }
        while workers.join_next().await.is_some() {}
    }

    async fn work(self: Arc<Self>) {
        let (standard, fifo) = (name(EVENTS_QUEUE), name(EVENTS_FIFO_QUEUE));
        let mut idle = false;
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let mut got_any = false;
            for (queue, max, wait) in [
                (
                    &standard,
                    WORKER_BATCH_MAX,
                    if idle { WORKER_WAIT_MS } else { 0 },
                ),
                (&fifo, 1, 0),
            ] {
                let options = ReceiveOptions {
                    max,
                    wait_ms: Some(wait),
                    visibility_timeout_ms: None,
                };
                let received = tokio::select! {
                    _ = self.stop.cancelled() => return,
                    received = self.engine.receive(queue, options) => received,
                };
                match received {
                    Ok(batch) => {
                        got_any |= !batch.is_empty();
                        for delivery in batch {
                            self.process(queue, delivery).await;
                        }
                    }
                    Err(EngineError::QueueNotFound { .. }) => {}
                    Err(error) => {
                        tracing::warn!(%error, "event worker receive failed");
                        tokio::select! {
                            _ = self.stop.cancelled() => return,
                            _ = tokio::time::sleep(ERROR_PAUSE) => {}
                        }
                    }
                }
            }
            idle = !got_any;
            if idle && self.engine.get_queue(&standard).await.is_err() {
                // Nothing to wait on yet: the queue is created with the first event.
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(WORKER_WAIT_MS)) => {}
                }
            }
        }
    }

    async fn process(&self, queue: &QueueName, delivery: Delivery) {
        let max_retries = attribute_u64(&delivery, ATTR_MAX_RETRIES)
            .map_or(MAX_RETRIES_DEFAULT, |n| {
                n.min(u64::from(MAX_RETRIES_MAX)) as u32
            });
        let retry_delay_ms =
            attribute_u64(&delivery, ATTR_RETRY_DELAY).unwrap_or(RETRY_DELAY_MS_DEFAULT);
        let attempts_allowed = max_retries + 1;
        let receipt = delivery.receipt;
        if delivery.receive_count > attempts_allowed {
            // Retries used up: release at once until the queue dead-letters it.
            let _ = self.engine.nack(queue, vec![receipt], Some(0)).await;
            return;
        }
        if let Some(visibility) = attribute_u64(&delivery, ATTR_VISIBILITY) {
            if visibility != VISIBILITY_TIMEOUT_MS_DEFAULT {
                let _ = self
                    .engine
                    .change_visibility(queue, receipt, visibility)
                    .await;
            }
        }
        let kind = match delivery.attributes.get(ATTR_TYPE).map(|v| v.data()) {
            Some(baton_core::AttributeData::Text(text)) => EventType::parse(text),
            _ => None,
        };
        tokio::select! {
            _ = self.stop.cancelled() => return,
            _ = tokio::time::sleep(self.settings.duration(kind)) => {}
        }
        let fails = delivery.body.to_ascii_lowercase().contains("fail");
        let result = if !fails {
            self.processed.fetch_add(1, Ordering::Relaxed);
            self.engine.ack(queue, vec![receipt]).await.map(|_| ())
        } else {
            self.failed_attempts.fetch_add(1, Ordering::Relaxed);
            let delay = if delivery.receive_count >= attempts_allowed {
                0
            } else {
                retry_delay_ms
            };
            self.engine
                .nack(queue, vec![receipt], Some(delay))
                .await
                .map(|_| ())
        };
        if let Err(error) = result {
            tracing::warn!(%error, id = %delivery.id, "event not settled; it comes back when its lease ends");
        }
    }
}

/// Upper bound of a performance test timeline's length: the bucket width is the smallest
/// of `TIMELINE_BUCKETS_MS` that keeps the timeline at most this long.
pub const TIMELINE_BUCKETS_MAX: u64 = 60;
const TIMELINE_BUCKETS_MS: [u64; 12] = [
    10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000,
];

/// An event's creation (first `sent`) and processing (last `acked`) times.
fn processing_span(record: &StatusRecord) -> Option<(u64, u64)> {
    let sent = record
        .history
        .iter()
        .find(|e| e.kind == HistoryEventKind::Sent)?;
    let acked = record
        .history
        .iter()
        .rev()
        .find(|e| e.kind == HistoryEventKind::Acked)?;
    Some((sent.at.as_millis(), acked.at.as_millis()))
}

/// Nearest-rank percentiles of processed − created; `None` without samples.
fn latency_percentiles(samples: &[(u64, u64)]) -> Option<proto::LatencyPercentiles> {
    let mut latencies: Vec<u64> = samples
        .iter()
        .map(|&(sent, done)| done.saturating_sub(sent))
        .collect();
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_unstable();
    let rank = |p: u64| {
        let n = latencies.len() as u64;
        // Nearest rank: the smallest value with at least p% of the samples at or below it.
        let index = (p * n).div_ceil(100).max(1) - 1;
        latencies[index as usize]
    };
    let sum: u128 = latencies.iter().map(|&l| u128::from(l)).sum();
    Some(proto::LatencyPercentiles {
        p50: rank(50),
        p90: rank(90),
        p99: rank(99),
        max: *latencies.last().expect("not empty"),
        mean: sum as f64 / latencies.len() as f64,
    })
}

/// Processed events per bucket from the first creation to the last processing, every bucket
/// (empty ones too) present so a chart shows stalls; `(bucket_ms, buckets)`.
fn throughput_timeline(samples: &[(u64, u64)]) -> (u64, Vec<proto::ThroughputBucket>) {
    let Some(start) = samples.iter().map(|s| s.0).min() else {
        return (TIMELINE_BUCKETS_MS[0], Vec::new());
    };
    let end = samples.iter().map(|s| s.1).max().unwrap_or(start);
    let span = end.saturating_sub(start) + 1;
    let bucket_ms = TIMELINE_BUCKETS_MS
        .iter()
        .copied()
        .find(|b| span.div_ceil(*b) <= TIMELINE_BUCKETS_MAX)
        .unwrap_or_else(|| span.div_ceil(TIMELINE_BUCKETS_MAX));
    let mut counts = vec![0u32; span.div_ceil(bucket_ms) as usize];
    for &(_, done) in samples {
        counts[(done.saturating_sub(start) / bucket_ms) as usize] += 1;
    }
    let per_second = 1000.0 / bucket_ms as f64;
    let buckets = counts
        .into_iter()
        .enumerate()
        .map(|(i, processed)| proto::ThroughputBucket {
            start_ms: i as u64 * bucket_ms,
            processed,
            events_per_second: f64::from(processed) * per_second,
        })
        .collect();
    (bucket_ms, buckets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        assert_eq!(latency_percentiles(&[]), None);
        // Latencies 1..=100 ms.
        let samples: Vec<(u64, u64)> = (1..=100).map(|l| (1_000, 1_000 + l)).collect();
        let p = latency_percentiles(&samples).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
        assert!((p.mean - 50.5).abs() < 1e-9);
        let one = latency_percentiles(&[(10, 17)]).unwrap();
        assert_eq!((one.p50, one.p90, one.p99, one.max), (7, 7, 7, 7));
        // A clock step backwards never underflows.
        assert_eq!(latency_percentiles(&[(10, 5)]).unwrap().max, 0);
    }

    #[test]
    fn timeline_counts_every_bucket_from_first_creation_to_last_processing() {
        assert_eq!(throughput_timeline(&[]).1, Vec::new());
        // Created at 1000; processed at 1005, 1015, 1015, and 1045 (nothing in 1020..1040).
        let samples = [
            (1_000, 1_005),
            (1_001, 1_015),
            (1_002, 1_015),
            (1_003, 1_045),
        ];
        let (bucket_ms, buckets) = throughput_timeline(&samples);
        assert_eq!(bucket_ms, 10);
        let counts: Vec<u32> = buckets.iter().map(|b| b.processed).collect();
        assert_eq!(counts, vec![1, 2, 0, 0, 1]);
        assert_eq!(buckets[1].start_ms, 10);
        assert!((buckets[1].events_per_second - 200.0).abs() < 1e-9);
        // A long run widens the buckets so the timeline stays short.
        let (bucket_ms, buckets) = throughput_timeline(&[(0, 0), (0, 59_999)]);
        assert_eq!(bucket_ms, 1_000);
        assert_eq!(buckets.len(), 60);
        let (bucket_ms, buckets) = throughput_timeline(&[(0, 0), (0, 10_000_000)]);
        assert!(buckets.len() as u64 <= TIMELINE_BUCKETS_MAX, "{bucket_ms}");
        assert_eq!(buckets.iter().map(|b| b.processed).sum::<u32>(), 2);
    }
}
