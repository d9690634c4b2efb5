//! Completion callbacks: when a message carrying `notify` is acked (by a pull consumer or a
//! push target) or dead-lettered, POST `CallbackPayload` to its URL with its headers.
//!
//! The way a callback travels, and why it survives restarts:
//! 1. The engine's completion hook turns each `Completion` into a `CallbackJob` message of
//!    the internal queue [`CALLBACK_QUEUE`] and returns once that send is durable. An ack
//!    awaits the hook before it is answered, so an acknowledged ack implies a durable job: a
//!    crash right after it still delivers the callback after restart. Nothing is buffered in
//!    memory, so nothing can overflow: when the job cannot be written (storage failing, the
//!    callback queue full), the hand-over retries every `ERROR_PAUSE` and the ack waits
//!    (backpressure, `baton_callbacks_waiting`). Only a shutdown ends such a wait; the
//!    completions given up then are logged and counted in `baton_callbacks_dropped_total`.
//!    Dead-letter moves happen inside other operations; their hand-over runs on its own task.
//!    A crash after the ack (or dead-letter arrival) record is durable but before its job
//!    is: recovery replays that record, the engine hands its completion over
//!    (`Engine::take_recovered_completions`), and [`Callbacks::run`] re-creates the job
//!    unless it exists. Job ids are derived from (queue, message id, kind, completion time),
//!    so "exists" is a status lookup in the internal queues (or, when the job's record is
//!    gone, a callback outcome on the message's history after that time). A re-created job
//!    has no `reply` (the ack record does not carry it). Records a checkpoint already
//!    covers are not replayed: a checkpoint taken in the instant between an ack's record
//!    and its job's, followed by a crash, still loses that callback.
//! 2. Workers receive jobs and POST them. Success records `callback_succeeded` on the
//!    message's status and acks the job. Failure records `callback_failed` with the reason
//!    (status `CALLBACK_FAILED`) and nacks the job with `callback_retry_delay_ms`.
//! 3. The callback queue dead-letters a job after `callback_max_retries + 1` attempts into
//!    [`CALLBACK_FAILED_QUEUE`], where it waits for a manual retry.
//! 4. A manual retry (`POST /v1/queues/{q}/messages/{id}/retry-callback`) attempts the
//!    callback now whenever the status is `CALLBACK_FAILED`: a job still on its automatic
//!    schedule is found by peeking (it stays scheduled, and the worker that later receives it
//!    acks it without an attempt when the callback was delivered since its completion); a
//!    parked job is taken out of the failed queue and acked once delivered. Workers and
//!    manual retries claim the message first ([`Callbacks::claim`]), so one message never
//!    has two attempts at once.
//!
//! Both internal queues are ordinary durable queues, created when the first callback is due
//! (so they show in `/v1/queues` from then on); their attributes are set from the server
//! settings at every start.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton_core::{
    DeadLetterPolicy, HistoryEventKind, MessageId, MessageStatus, QueueConfig, QueueName,
    SendEntry, StatusRecord,
};
use baton_engine::{
    Completion, CompletionFuture, CompletionHook, CompletionKind, Engine, EngineError,
    ReceiveOptions,
};
use baton_proto as proto;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::outbound::{self, OutboundRules};
use crate::service::ServiceError;

pub use crate::service::queues::{reserved_name, INTERNAL_QUEUE_PREFIX};

/// Jobs waiting for their (next) attempt.
pub const CALLBACK_QUEUE: &str = "_baton-callbacks";
/// Jobs whose retries are used up; only a manual retry takes them out.
pub const CALLBACK_FAILED_QUEUE: &str = "_baton-callbacks-failed";
/// Most parked jobs a manual retry looks through.
const FAILED_SCAN_MAX: usize = 10_000;
/// Added to `callback_timeout_ms` for the lease of a job being attempted.
const LEASE_MARGIN_MS: u64 = 5_000;
const RECEIVE_WAIT_MS: u64 = 1_000;
const ERROR_PAUSE: Duration = Duration::from_millis(500);
/// Most queues `baton_callback_failures_total` has a series for.
const FAILURE_QUEUES_MAX: usize = 1_000;
/// Most jobs enqueued in one send.
const ENQUEUE_BATCH_MAX: usize = 100;

#[derive(Debug, Clone, Copy)]
pub struct CallbackSettings {
    pub max_retries: u32,
    pub retry_delay_ms: u64,
    pub timeout_ms: u64,
    pub concurrency: u32,
}

pub struct Callbacks {
    engine: Arc<dyn Engine>,
    client: reqwest::Client,
    rules: OutboundRules,
    settings: CallbackSettings,
    /// Completions being handed over (their jobs not durable yet).
    waiting: AtomicU64,
    /// Completions given up at shutdown while their jobs could not be written.
    dropped: AtomicU64,
    /// Jobs re-created after recovery because a crash cut them off.
    recreated: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    /// Failed attempts per message queue, for `baton_callback_failures_total{queue}`; at
    /// most `FAILURE_QUEUES_MAX` queues, later ones counted under `queue=""`.
    failures_by_queue: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Manual retries scan the parked jobs one at a time.
    manual: tokio::sync::Mutex<()>,
    /// Messages (queue, id) whose callback is being attempted; see [`Callbacks::claim`].
    attempting: parking_lot::Mutex<std::collections::HashSet<(String, String)>>,
    /// Woken whenever a claim ends.
    claim_ended: tokio::sync::Notify,
    /// Set once the internal queues exist with this run's settings.
    queues_ready: std::sync::atomic::AtomicBool,
    /// Creating the internal queues is done by one hand-over at a time.
    creating: tokio::sync::Mutex<()>,
    stop: CancellationToken,
}

fn name(text: &str) -> QueueName {
    QueueName::new(text).expect("internal queue names are valid")
}

/// Failed attempts since the last success, the last failure's reason and time.
fn failure_summary(record: &StatusRecord) -> (u32, Option<String>, u64) {
    let mut attempts = 0;
    let mut last = None;
    for event in record.history.iter().rev() {
        match event.kind {
            HistoryEventKind::CallbackFailed => {
                attempts += 1;
                if last.is_none() {
                    last = Some((event.detail.clone(), event.at.as_millis()));
                }
            }
            HistoryEventKind::CallbackSucceeded => break,
            _ => {}
        }
    }
    let (reason, at) = last.unwrap_or((None, 0));
    (attempts, reason, at)
}

impl Callbacks {
    pub fn new(
        engine: Arc<dyn Engine>,
        rules: OutboundRules,
        settings: CallbackSettings,
        stop: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Callbacks {
            engine,
            client: outbound::client(&rules),
            rules,
            settings,
            waiting: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            recreated: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures_by_queue: parking_lot::Mutex::default(),
            manual: tokio::sync::Mutex::new(()),
            attempting: parking_lot::Mutex::default(),
            claim_ended: tokio::sync::Notify::new(),
            queues_ready: std::sync::atomic::AtomicBool::new(false),
            creating: tokio::sync::Mutex::new(()),
            stop,
        })
    }

    /// The engine's completion hook: its future returns once the jobs are durable.
    pub fn hook(self: &Arc<Self>) -> CompletionHook {
        let this = self.clone();
        Arc::new(move |completions: Vec<Completion>| {
            let this = this.clone();
            Box::pin(async move { this.enqueue(completions).await }) as CompletionFuture
        })
    }

    /// Creates (or updates) the internal queues left by an earlier run, then runs the
    /// workers until shutdown.
    pub async fn run(self: Arc<Self>) {
        while !self.engine.is_ready() {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        // Queues left by an earlier run get this run's settings now; otherwise they are
        // created with the first callback.
        if self.engine.get_queue(&name(CALLBACK_QUEUE)).await.is_ok() && !self.create_queues().await
        {
            return;
        }
        if !self.recreate_lost_jobs().await {
            return;
        }
        while !self.queues_ready.load(Ordering::Acquire) {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        self.work_loop().await;
    }

    /// Re-creates the jobs of the completions the last recovery replayed whose jobs a crash
    /// cut off; false on shutdown.
    async fn recreate_lost_jobs(&self) -> bool {
        let recovered = self.engine.take_recovered_completions();
        if recovered.is_empty() {
            return true;
        }
        let mut missing = Vec::new();
        for completion in recovered {
            if !self.job_exists(&completion).await {
                missing.push(completion);
            }
        }
        if missing.is_empty() {
            return true;
        }
        let n = missing.len() as u64;
        tracing::warn!(n, "re-creating callback jobs that a crash cut off");
        if !self.enqueue_until_stopped(&missing).await {
            return false;
        }
        self.recreated.fetch_add(n, Ordering::Relaxed);
        true
    }

    /// Whether the job of `completion` was written: it has a status in an internal queue, or
    /// the message's history shows a callback outcome since the completion.
    async fn job_exists(&self, completion: &Completion) -> bool {
        let id = job_id(completion);
        for queue in [CALLBACK_QUEUE, CALLBACK_FAILED_QUEUE] {
            if self.engine.message_status(&name(queue), id).await.is_ok() {
                return true;
            }
        }
        match self
            .engine
            .message_status(&completion.queue, completion.id)
            .await
        {
            Ok(record) => record.history.iter().any(|event| {
                matches!(
                    event.kind,
                    HistoryEventKind::CallbackSucceeded | HistoryEventKind::CallbackFailed
                ) && event.at >= completion.completed_at
            }),
            Err(_) => false,
        }
    }

    /// Makes sure the internal queues exist with this run's settings; false on shutdown.
    async fn create_queues(&self) -> bool {
        if self.queues_ready.load(Ordering::Acquire) {
            return true;
        }
        let _one_at_a_time = self.creating.lock().await;
        self.queues_ready.load(Ordering::Acquire) || self.ensure_queues_until_stopped().await
    }

    /// Writes the jobs of `completions` to [`CALLBACK_QUEUE`], retrying until they are durable
    /// or the server stops.
    async fn enqueue(&self, completions: Vec<Completion>) {
        let n = completions.len() as u64;
        self.waiting.fetch_add(n, Ordering::Relaxed);
        let done = self.enqueue_until_stopped(&completions).await;
        self.waiting.fetch_sub(n, Ordering::Relaxed);
        if !done {
            self.dropped.fetch_add(n, Ordering::Relaxed);
            tracing::error!(
                n,
                "callbacks given up: their jobs could not be written before shutdown"
            );
        }
    }

    async fn enqueue_until_stopped(&self, completions: &[Completion]) -> bool {
        if !self.create_queues().await {
            return false;
        }
        let queue = name(CALLBACK_QUEUE);
        for chunk in completions.chunks(ENQUEUE_BATCH_MAX) {
            let entries: Vec<SendEntry> = chunk.iter().map(job_entry).collect();
            // Retried until it is durable or the server stops: a completion is not dropped
            // because the disk hiccuped.
            loop {
                match self.engine.send_internal(&queue, entries.clone()).await {
                    Ok(_) => break,
                    Err(EngineError::QueueNotFound { .. }) => {
                        // Deleted by an operator since: created again at once.
                        tracing::warn!("the callback queue was deleted; creating it again");
                        if let Err(error) = self.ensure_queues().await {
                            tracing::warn!(%error, "cannot create the callback queues yet");
                            tokio::select! {
                                _ = self.stop.cancelled() => return false,
                                _ = tokio::time::sleep(ERROR_PAUSE) => {}
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, n = entries.len(), "cannot enqueue callbacks yet");
                        tokio::select! {
                            _ = self.stop.cancelled() => return false,
                            _ = tokio::time::sleep(ERROR_PAUSE) => {}
                        }
                    }
                }
            }
        }
        true
    }

    /// Creates or updates the internal queues, retrying until it works; false on shutdown.
    async fn ensure_queues_until_stopped(&self) -> bool {
        loop {
            match self.ensure_queues().await {
                Ok(()) => {
                    self.queues_ready.store(true, Ordering::Release);
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot create the callback queues yet");
                    tokio::select! {
                        _ = self.stop.cancelled() => return false,
                        _ = tokio::time::sleep(ERROR_PAUSE) => {}
                    }
                }
            }
        }
    }

    fn queue_config(&self) -> QueueConfig {
        QueueConfig {
            visibility_timeout_ms: self.settings.timeout_ms + LEASE_MARGIN_MS,
            dead_letter: Some(DeadLetterPolicy {
                queue: name(CALLBACK_FAILED_QUEUE),
                max_receive_count: self.settings.max_retries + 1,
            }),
            retention_ms: baton_core::limits::RETENTION_MS_MAX,
            ..QueueConfig::default()
        }
    }

    async fn ensure_queues(&self) -> Result<(), EngineError> {
        let failed_config = QueueConfig {
            retention_ms: baton_core::limits::RETENTION_MS_MAX,
            ..QueueConfig::default()
        };
        let failed = name(CALLBACK_FAILED_QUEUE);
        match self
            .engine
            .create_queue(failed.clone(), failed_config.clone())
            .await
        {
            Err(EngineError::QueueExists { .. }) => {
                self.engine.update_queue(&failed, failed_config).await?;
            }
            other => {
                other?;
            }
        }
        let queue = name(CALLBACK_QUEUE);
        match self
            .engine
            .create_queue(queue.clone(), self.queue_config())
            .await
        {
            Err(EngineError::QueueExists { .. }) => {
                self.engine
                    .update_queue(&queue, self.queue_config())
                    .await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    async fn work_loop(self: &Arc<Self>) {
        let queue = name(CALLBACK_QUEUE);
        loop {
            // A recovery at run time (after a storage failure) may have replayed completions.
            if !self.recreate_lost_jobs().await {
                return;
            }
            let options = ReceiveOptions {
                max: self.settings.concurrency,
                wait_ms: Some(RECEIVE_WAIT_MS),
                visibility_timeout_ms: None,
            };
            let received = tokio::select! {
                _ = self.stop.cancelled() => return,
                received = self.engine.receive(&queue, options) => received,
            };
            let jobs = match received {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(%error, "callback receive failed");
                    tokio::select! {
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(ERROR_PAUSE) => {}
                    }
                    continue;
                }
            };
            let mut attempts = JoinSet::new();
            for delivery in jobs {
                let this = self.clone();
                let queue = queue.clone();
                attempts.spawn(async move {
                    let Ok(job) = serde_json::from_str::<proto::CallbackJob>(&delivery.body) else {
                        tracing::error!(id = %delivery.id, "unreadable callback job dropped");
                        let _ = this.engine.ack(&queue, vec![delivery.receipt]).await;
                        return;
                    };
                    let _claim = this.claim(&job.payload.queue, &job.payload.id).await;
                    // A retry of the job may find the callback delivered by hand meanwhile.
                    let ok = (delivery.receive_count > 1 && this.delivered_since(&job).await)
                        || this.attempt_and_record(&job).await.is_ok();
                    let done = if ok {
                        this.engine.ack(&queue, vec![delivery.receipt]).await.map(|_| ())
                    } else {
                        this.engine
                            .nack(&queue, vec![delivery.receipt], Some(this.settings.retry_delay_ms))
                            .await
                            .map(|_| ())
                    };
                    if let Err(error) = done {
                        tracing::warn!(%error, "callback job not settled; it is attempted again when its lease ends");
                    }
                });
            }
            while attempts.join_next().await.is_some() {}
        }
    }

    /// Waits until no one else attempts the callback of message `id` of `queue`, then claims
    /// it until the guard drops.
    async fn claim(&self, queue: &str, id: &str) -> Claim<'_> {
        let key = (queue.to_string(), id.to_string());
        loop {
            let ended = self.claim_ended.notified();
            tokio::pin!(ended);
            // Registered before the check, so an end between the check and the wait counts.
            ended.as_mut().enable();
            if self.attempting.lock().insert(key.clone()) {
                return Claim {
                    callbacks: self,
                    key,
                };
            }
            ended.await;
        }
    }

    /// Whether the message's history shows its callback delivered since the job's completion
    /// (by a manual retry while the job waited for its next attempt).
    async fn delivered_since(&self, job: &proto::CallbackJob) -> bool {
        let (Ok(queue), Some(id)) = (
            QueueName::new(&job.payload.queue),
            MessageId::parse(&job.payload.id),
        ) else {
            return false;
        };
        match self.engine.message_status(&queue, id).await {
            Ok(record) => record.history.iter().any(|event| {
                event.kind == HistoryEventKind::CallbackSucceeded
                    && event.at.as_millis() >= job.payload.completed_at
            }),
            Err(_) => false,
        }
    }

    /// POSTs the job and records the outcome on the message's status.
    async fn attempt_and_record(&self, job: &proto::CallbackJob) -> Result<(), String> {
        let outcome = self.attempt(job).await;
        match &outcome {
            Ok(()) => {
                self.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut by_queue = self.failures_by_queue.lock();
                let key = if by_queue.len() < FAILURE_QUEUES_MAX
                    || by_queue.contains_key(&job.payload.queue)
                {
                    job.payload.queue.clone()
                } else {
                    String::new()
                };
                *by_queue.entry(key).or_default() += 1;
            }
        }
        let (Ok(queue), Some(id)) = (
            QueueName::new(&job.payload.queue),
            MessageId::parse(&job.payload.id),
        ) else {
            return outcome;
        };
        let recorded = self
            .engine
            .record_callback(&queue, id, outcome.is_ok(), outcome.clone().err())
            .await;
        match recorded {
            Ok(_)
            | Err(EngineError::MessageNotFound { .. } | EngineError::QueueNotFound { .. }) => {}
            Err(error) => tracing::warn!(%error, %id, "callback outcome not recorded"),
        }
        outcome
    }

    async fn attempt(&self, job: &proto::CallbackJob) -> Result<(), String> {
        let url = self.rules.check_url(&job.url).map_err(|e| match e {
            outbound::TargetError::Invalid(reason) | outbound::TargetError::NotAllowed(reason) => {
                reason
            }
        })?;
        let mut headers = HeaderMap::new();
        for (name, value) in &job.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let result = self
            .client
            .post(url)
            .headers(headers)
            .timeout(Duration::from_millis(self.settings.timeout_ms))
            .json(&job.payload)
            .send()
            .await
            .map(|response| response.status());
        match &result {
            Ok(status) if status.is_success() => Ok(()),
            _ => Err(outbound::failure_reason(&result, self.settings.timeout_ms)),
        }
    }

    /// `GET /v1/callbacks/failed`.
    pub async fn failed(&self, max: usize) -> Result<proto::FailedCallbackList, ServiceError> {
        let records = self.engine.callback_failed(max).await?;
        Ok(proto::FailedCallbackList {
            callbacks: records
                .into_iter()
                .map(|(queue, record)| {
                    let (attempts, reason, failed_at) = failure_summary(&record);
                    proto::FailedCallback {
                        queue: queue.to_string(),
                        id: record.id.to_string(),
                        status: record.status.as_str().to_string(),
                        reason,
                        failed_at,
                        attempts,
                    }
                })
                .collect(),
        })
    }

    /// Jobs waiting in the automatic retry schedule and parked after it, for queue-info.
    pub async fn queue_sizes(&self) -> (u64, u64) {
        let depth = |view: Result<baton_engine::QueueView, EngineError>| {
            view.map_or(0, |v| v.stats.depth())
        };
        (
            depth(self.engine.get_queue(&name(CALLBACK_QUEUE)).await),
            depth(self.engine.get_queue(&name(CALLBACK_FAILED_QUEUE)).await),
        )
    }

    /// `POST /v1/queues/{q}/messages/{id}/retry-callback`: attempts the callback of message
    /// `id` of `queue` now, whether its job waits for an automatic retry or is parked (see
    /// the module doc). Success restores the status; failure records the reason, and the job
    /// stays where it was (scheduled, or parked again).
    pub async fn retry(
        &self,
        queue: &QueueName,
        id: MessageId,
    ) -> Result<proto::CallbackRetryResult, ServiceError> {
        self.check_callback_failed(queue, id).await?;
        let _claim = self.claim(queue.as_str(), &id.to_string()).await;
        // An attempt that ran while this one waited may have delivered it.
        self.check_callback_failed(queue, id).await?;
        let outcome = if let Some(job) = self.scheduled_job(queue, id).await? {
            self.attempt_and_record(&job).await
        } else {
            let _one_at_a_time = self.manual.lock().await;
            let Some((receipt, job)) = self.take_parked(queue, id).await? else {
                return Err(ServiceError::CallbackJobMissing { id: id.to_string() });
            };
            let failed = name(CALLBACK_FAILED_QUEUE);
            let outcome = self.attempt_and_record(&job).await;
            match &outcome {
                Ok(()) => self.engine.ack(&failed, vec![receipt]).await.map(|_| ())?,
                Err(_) => self.engine.change_visibility(&failed, receipt, 0).await?,
            }
            outcome
        };
        let message = self.engine.message_status(queue, id).await?;
        Ok(proto::CallbackRetryResult {
            ok: outcome.is_ok(),
            error: outcome.err(),
            message: crate::service::queues::status_to_wire(queue, message),
        })
    }

    async fn check_callback_failed(
        &self,
        queue: &QueueName,
        id: MessageId,
    ) -> Result<(), ServiceError> {
        let status = self.engine.message_status(queue, id).await?;
        if status.status == MessageStatus::CallbackFailed {
            return Ok(());
        }
        Err(ServiceError::CallbackNotFailed {
            id: id.to_string(),
            status: status.status.as_str().to_string(),
        })
    }

    /// The job of message `id` of `queue` while it is on the automatic schedule (waiting for
    /// its next attempt, or received by a worker that waits for the caller's claim).
    async fn scheduled_job(
        &self,
        queue: &QueueName,
        id: MessageId,
    ) -> Result<Option<proto::CallbackJob>, ServiceError> {
        let scheduled = name(CALLBACK_QUEUE);
        let id_text = id.to_string();
        let mut after = 0;
        let mut seen = 0;
        while seen < FAILED_SCAN_MAX {
            let page = match self
                .engine
                .peek(&scheduled, after, baton_core::limits::PEEK_MAX)
                .await
            {
                Ok(page) => page,
                Err(EngineError::QueueNotFound { .. }) => return Ok(None),
                Err(error) => return Err(error.into()),
            };
            let Some(last) = page.last() else {
                return Ok(None);
            };
            after = last.seq;
            seen += page.len();
            let found = page
                .iter()
                .filter(|m| m.body.contains(id_text.as_str()))
                .filter_map(|m| serde_json::from_str::<proto::CallbackJob>(&m.body).ok())
                .find(|job| job.payload.queue == queue.as_str() && job.payload.id == id_text);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Takes the parked job of message `id` of `queue` out of the failed queue (leased to the
    /// caller), looking through at most `FAILED_SCAN_MAX` jobs.
    async fn take_parked(
        &self,
        queue: &QueueName,
        id: MessageId,
    ) -> Result<Option<(baton_core::ReceiptHandle, proto::CallbackJob)>, ServiceError> {
        let failed = name(CALLBACK_FAILED_QUEUE);
        let mut seen = Vec::new();
        let mut found = None;
        while found.is_none() && seen.len() < FAILED_SCAN_MAX {
            let received = self
                .engine
                .receive(
                    &failed,
                    ReceiveOptions {
                        max: baton_core::limits::RECEIVE_MAX,
                        wait_ms: Some(0),
                        visibility_timeout_ms: Some(self.settings.timeout_ms + LEASE_MARGIN_MS),
                    },
                )
                .await;
            let batch = match received {
                Ok(batch) => batch,
                Err(EngineError::QueueNotFound { .. }) => break,
                Err(error) => return Err(error.into()),
            };
            if batch.is_empty() {
                break;
            }
            for delivery in batch {
                let job = serde_json::from_str::<proto::CallbackJob>(&delivery.body).ok();
                let matches = job.as_ref().is_some_and(|job| {
                    job.payload.queue == queue.as_str() && job.payload.id == id.to_string()
                });
                match (matches, job, &found) {
                    (true, Some(job), None) => found = Some((delivery.receipt, job)),
                    _ => seen.push(delivery.receipt),
                }
            }
        }
        // Everything looked at but not retried goes back at once.
        for receipt in seen {
            let _ = self.engine.change_visibility(&failed, receipt, 0).await;
        }
        Ok(found)
    }

    /// Appends the callback figures in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP baton_callbacks_total Completion callback attempts by outcome.\n# TYPE baton_callbacks_total counter"
        );
        let _ = writeln!(
            out,
            "baton_callbacks_total{{outcome=\"succeeded\"}} {}",
            self.succeeded.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "baton_callbacks_total{{outcome=\"failed\"}} {}",
            self.failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP baton_callbacks_dropped_total Completions given up at shutdown because their callback jobs could not be written.\n# TYPE baton_callbacks_dropped_total counter\nbaton_callbacks_dropped_total {}",
            self.dropped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP baton_callback_failures_total Failed completion callback attempts, by the queue of the message.\n# TYPE baton_callback_failures_total counter"
        );
        for (queue, n) in self.failures_by_queue.lock().iter() {
            let _ = writeln!(
                out,
                "baton_callback_failures_total{{queue=\"{queue}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP baton_callbacks_recreated_total Callback jobs re-created after recovery because a crash cut them off.\n# TYPE baton_callbacks_recreated_total counter\nbaton_callbacks_recreated_total {}",
            self.recreated.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP baton_callbacks_waiting Completions whose callback jobs are being written (acks wait for them).\n# TYPE baton_callbacks_waiting gauge\nbaton_callbacks_waiting {}",
            self.waiting.load(Ordering::Relaxed)
        );
    }
}

/// A claim on one message's callback attempts; ending it wakes the waiting claims.
struct Claim<'a> {
    callbacks: &'a Callbacks,
    key: (String, String),
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.callbacks.attempting.lock().remove(&self.key);
        self.callbacks.claim_ended.notify_waiters();
    }
}

/// The callback job message for `completion`.
fn job_entry(completion: &Completion) -> SendEntry {
    let status = match completion.kind {
        CompletionKind::Completed => "COMPLETED",
        CompletionKind::DeadLettered => "FAILED",
    };
    let job = proto::CallbackJob {
        url: completion.notify.url.clone(),
        headers: completion.notify.headers.clone(),
        payload: proto::CallbackPayload {
            id: completion.id.to_string(),
            queue: completion.queue.to_string(),
            status: status.to_string(),
            reply: completion
                .reply
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            sent_at: completion.sent_at.as_millis(),
            completed_at: completion.completed_at.as_millis(),
            receive_count: completion.receive_count,
        },
    };
    let body = serde_json::to_string(&job).unwrap_or_default();
    SendEntry::new(job_id(completion), body)
}

/// The id of `completion`'s job: a digest of what identifies the completion, so that after a
/// crash the job can be looked up (and is re-created only when missing). The completion time
/// is part of it because a redriven message can complete again under the same id.
fn job_id(completion: &Completion) -> MessageId {
    use md5::{Digest, Md5};
    let kind = match completion.kind {
        CompletionKind::Completed => "completed",
        CompletionKind::DeadLettered => "dead_lettered",
    };
    let digest = Md5::new()
        .chain_update(completion.queue.as_str())
        .chain_update([0])
        .chain_update(completion.id.as_u128().to_be_bytes())
        .chain_update(kind)
        .chain_update(completion.completed_at.as_millis().to_be_bytes())
        .finalize();
    MessageId::from_u128(u128::from_be_bytes(digest.into()))
}
