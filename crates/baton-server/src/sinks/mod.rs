//! Sinks: the server copies a stream, a queue or a topic into a PostgreSQL table, exactly
//! once (`/v1/sinks/...`, docs/api.md).
//!
//! Owns the sink definitions, one task per sink ([`worker`]), and their figures.
//!
//! Durable configuration: each sink has an internal queue `_baton-sink-<name>` whose metadata
//! attribute [`SINK_ATTRIBUTE`] holds its definition and whether it is paused (one atomic
//! `Engine::update_queue_meta` per change, as push subscriptions do), so definitions survive
//! restarts and [`SinkManager::resume`] starts them again. A topic source is subscribed to
//! that same queue (subscription `baton-sink-<name>`, the topic's pattern), so the topic's
//! fan-out makes each copy durable in Baton before the sink reads it like a queue.
//!
//! Invariants:
//! - At most one task per sink name: starting one cancels the one before it, and a batch's
//!   positions only move from the values its task read, so a task still finishing cannot
//!   overwrite a newer one's progress.
//! - A change (put, pause, resume, delete) is serialized by one async mutex, so two changes of
//!   the same sink cannot interleave.

pub mod postgres;
pub mod rows;
pub mod source;
pub mod spec;
pub mod worker;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use baton_core::stream::group::SESSION_TIMEOUT_MS_DEFAULT;
use baton_core::stream::{GroupConfig, GroupMode, StartPosition};
use baton_core::topic::{Subscription, Target};
use baton_core::{QueueConfig, QueueName, StreamError};
use baton_engine::StreamEngineError;
use baton_engine::TopicEngineError;
use baton_engine::{Engine, EngineError, MetaPatch};
use baton_proto as proto;
use tokio_util::sync::CancellationToken;

use crate::service::ServiceError;
use spec::{SinkSpec, Source};
use worker::{Progress, State, Worker};

/// The internal queue's metadata attribute holding a `StoredSink` as JSON.
pub const SINK_ATTRIBUTE: &str = "baton.sink";
/// How long stopping waits for a sink's task.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A counter or gauge of every sink: name, type, help, and the figure it shows.
type MetricFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&proto::SinkStats) -> u64,
);

/// The server settings sinks use.
#[derive(Debug, Clone, Copy)]
pub struct SinkSettings {
    pub sinks_max: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
}

struct Sink {
    /// Normalized, with the password (shown masked).
    definition: proto::SinkDefinition,
    spec: Arc<SinkSpec>,
    paused: bool,
    progress: Arc<Progress>,
    task: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

/// Every sink of this server.
pub struct SinkManager {
    engine: Arc<dyn Engine>,
    settings: SinkSettings,
    sinks: parking_lot::Mutex<BTreeMap<String, Sink>>,
    changes: tokio::sync::Mutex<()>,
    stop: CancellationToken,
}

/// The topic subscription feeding a topic sink's internal queue.
fn subscription_name(sink: &str) -> baton_core::SubscriptionName {
    baton_core::SubscriptionName::new(&format!("baton-sink-{sink}"))
        .unwrap_or_else(|_| unreachable!("checked sink names make valid subscription names"))
}

fn differences(a: &proto::SinkDefinition, b: &proto::SinkDefinition) -> String {
    let mut out = Vec::new();
    if a.source != b.source {
        out.push("source");
    }
    if a.postgres != b.postgres {
        out.push("postgres");
    }
    if a.batch_max != b.batch_max {
        out.push("batch_max");
    }
    if a.flush_ms != b.flush_ms {
        out.push("flush_ms");
    }
    format!("{} differ", out.join(", "))
}

impl SinkManager {
    pub fn new(engine: Arc<dyn Engine>, settings: SinkSettings, stop: CancellationToken) -> Self {
        SinkManager {
            engine,
            settings,
            sinks: parking_lot::Mutex::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
            stop,
        }
    }

    /// Creates sink `name` (`true`), or finds it with the same definition (`false`); another
    /// definition under the name is `SinkExists`. Checks everything, including that the
    /// source exists, before anything changes.
    pub async fn put(
        &self,
        name: &str,
        definition: proto::SinkDefinition,
    ) -> Result<(bool, proto::SinkInfo), ServiceError> {
        let (spec, definition) = spec::check(name, definition)?;
        let _changes = self.changes.lock().await;
        if let Some(existing) = self.sinks.lock().get(name) {
            if existing.definition == definition {
                return Ok((false, self.info_of(name, existing)));
            }
            return Err(ServiceError::SinkExists {
                name: name.to_string(),
                difference: differences(&existing.definition, &definition),
            });
        }
        if self.sinks.lock().len() >= self.settings.sinks_max as usize {
            return Err(ServiceError::TooManySinks {
                limit: self.settings.sinks_max,
            });
        }
        self.check_source(&spec).await?;
        let queue = spec.internal_queue();
        let config = QueueConfig {
            // A topic sink's messages wait here while PostgreSQL is down: keep them longest.
            retention_ms: baton_core::limits::RETENTION_MS_MAX,
            ..QueueConfig::default()
        };
        self.engine.create_queue(queue.clone(), config).await?;
        let stored = proto::StoredSink {
            definition: definition.clone(),
            paused: false,
        };
        let result = async {
            self.store(&queue, &stored, None).await?;
            if let Source::Topic(topic, pattern) = &spec.source {
                let subscription = Subscription {
                    name: subscription_name(name),
                    target: Target::Queue(queue.clone()),
                    pattern: pattern.clone(),
                    filter: None,
                };
                self.engine.put_subscription(topic, subscription).await?;
            }
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(error) = result {
            let _ = self.engine.delete_queue(&queue).await;
            return Err(error);
        }
        self.insert(spec, definition, false);
        let sinks = self.sinks.lock();
        let sink = sinks
            .get(name)
            .ok_or_else(|| ServiceError::Internal("sink vanished while being created".into()))?;
        Ok((true, self.info_of(name, sink)))
    }

    /// The source must exist; a missing group is created at the stream's start.
    async fn check_source(&self, spec: &SinkSpec) -> Result<(), ServiceError> {
        match &spec.source {
            Source::Stream(stream) => {
                self.engine.get_stream(stream).await?;
            }
            Source::Group(stream, group) => match self.engine.get_group(stream, group).await {
                Ok(_) => {}
                Err(StreamEngineError::Stream(StreamError::GroupNotFound { .. })) => {
                    let config = GroupConfig {
                        start: StartPosition::Earliest,
                        mode: GroupMode::Partitioned,
                        session_timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
                    };
                    self.engine
                        .create_group(stream, group.clone(), config)
                        .await?;
                }
                Err(error) => return Err(error.into()),
            },
            Source::Queue(queue) => {
                self.engine.get_queue(queue).await?;
            }
            Source::Topic(topic, _) => {
                self.engine.get_topic(topic).await?;
            }
        }
        Ok(())
    }

    /// Writes `stored` to the sink's queue; with `expected`, only if the stored value is
    /// still that one.
    async fn store(
        &self,
        queue: &QueueName,
        stored: &proto::StoredSink,
        expected: Option<String>,
    ) -> Result<String, ServiceError> {
        let json = serde_json::to_string(stored)
            .map_err(|e| ServiceError::Internal(format!("sink definition not encodable: {e}")))?;
        let mut patch = MetaPatch {
            put_attributes: [(SINK_ATTRIBUTE.to_string(), json.clone())].into(),
            ..Default::default()
        };
        if let Some(expected) = expected {
            patch
                .expect_attributes
                .insert(SINK_ATTRIBUTE.to_string(), Some(expected));
        }
        self.engine.update_queue_meta(queue, patch).await?;
        Ok(json)
    }

    fn insert(&self, spec: SinkSpec, definition: proto::SinkDefinition, paused: bool) {
        let spec = Arc::new(spec);
        let state = if paused {
            State::Paused
        } else {
            State::Running
        };
        let mut sink = Sink {
            definition,
            spec,
            paused,
            progress: Arc::new(Progress::new(state)),
            task: None,
        };
        if !paused {
            sink.task = Some(self.spawn(&sink));
        } else if matches!(sink.spec.source, Source::Stream(_)) {
            let cancel = self.stop.child_token();
            let load = worker::load_positions(
                self.engine.clone(),
                sink.spec.clone(),
                sink.progress.clone(),
            );
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = load => {}
                }
            });
        }
        let old = self.sinks.lock().insert(sink.spec.name.clone(), sink);
        if let Some((cancel, _)) = old.and_then(|old| old.task) {
            cancel.cancel();
        }
    }

    fn spawn(&self, sink: &Sink) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let cancel = self.stop.child_token();
        let worker = Worker {
            engine: self.engine.clone(),
            spec: sink.spec.clone(),
            progress: sink.progress.clone(),
            retry_base_ms: self.settings.retry_base_ms,
            retry_max_ms: self.settings.retry_max_ms,
            cancel: cancel.clone(),
        };
        (cancel, tokio::spawn(worker.run()))
    }

    /// One sink with its figures.
    pub async fn show(&self, name: &str) -> Result<proto::SinkInfo, ServiceError> {
        let (info, spec, positions) = {
            let sinks = self.sinks.lock();
            let sink = sinks.get(name).ok_or_else(|| ServiceError::SinkNotFound {
                name: name.to_string(),
            })?;
            let positions = sink.progress.positions.lock().clone();
            (self.info_of(name, sink), sink.spec.clone(), positions)
        };
        Ok(self.with_lag(info, &spec, &positions).await)
    }

    /// Every sink, by name.
    pub async fn list(&self) -> proto::SinkList {
        let all: Vec<_> = {
            let sinks = self.sinks.lock();
            sinks
                .iter()
                .map(|(name, sink)| {
                    let positions = sink.progress.positions.lock().clone();
                    (self.info_of(name, sink), sink.spec.clone(), positions)
                })
                .collect()
        };
        let mut sinks = Vec::with_capacity(all.len());
        for (info, spec, positions) in all {
            sinks.push(self.with_lag(info, &spec, &positions).await);
        }
        proto::SinkList { sinks }
    }

    async fn with_lag(
        &self,
        mut info: proto::SinkInfo,
        spec: &SinkSpec,
        positions: &[Option<u64>],
    ) -> proto::SinkInfo {
        if let Ok(lag) = source::lag(self.engine.as_ref(), spec, positions).await {
            info.stats.lag = lag;
        }
        info
    }

    fn info_of(&self, name: &str, sink: &Sink) -> proto::SinkInfo {
        let mut definition = sink.definition.clone();
        definition.postgres.url = spec::masked_url(&definition.postgres.url);
        let status = sink.progress.status.lock().clone();
        let p = &sink.progress;
        proto::SinkInfo {
            name: name.to_string(),
            definition,
            state: status.state.as_str().to_string(),
            stats: proto::SinkStats {
                rows_written_total: p.rows_written.load(Ordering::Relaxed),
                duplicates_skipped_total: p.duplicates_skipped.load(Ordering::Relaxed),
                batches_total: p.batches.load(Ordering::Relaxed),
                errors_total: p.errors.load(Ordering::Relaxed),
                expired_skipped_total: p.expired_skipped.load(Ordering::Relaxed),
                lag: 0,
                last_error: status.last_error,
                last_error_at: status.last_error_at,
                retry_in_ms: status.retry_in_ms,
            },
        }
    }

    /// Pauses (`true`) or resumes a sink, durably; pausing an already paused sink (or
    /// resuming a running one) changes nothing.
    pub async fn set_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<proto::SinkInfo, ServiceError> {
        spec::check_name(name)?;
        let _changes = self.changes.lock().await;
        let (definition, was_paused) = {
            let sinks = self.sinks.lock();
            let sink = sinks.get(name).ok_or_else(|| ServiceError::SinkNotFound {
                name: name.to_string(),
            })?;
            (sink.definition.clone(), sink.paused)
        };
        if was_paused != paused {
            let queue = spec::internal_queue(name);
            let stored = proto::StoredSink { definition, paused };
            self.store(&queue, &stored, None).await?;
            let task = {
                let mut sinks = self.sinks.lock();
                let sink = sinks
                    .get_mut(name)
                    .ok_or_else(|| ServiceError::SinkNotFound {
                        name: name.to_string(),
                    })?;
                sink.paused = paused;
                if paused {
                    sink.progress.status.lock().state = State::Paused;
                    sink.task.take()
                } else {
                    *sink.progress.status.lock() =
                        Progress::new(State::Running).status.into_inner();
                    sink.task = Some(self.spawn(sink));
                    None
                }
            };
            if let Some((cancel, handle)) = task {
                cancel.cancel();
                let _ = tokio::time::timeout(STOP_GRACE, handle).await;
            }
        }
        self.show(name).await
    }

    /// Stops and removes a sink: its task, its topic subscription, its internal queue (and
    /// so its stored definition). The rows and the positions in PostgreSQL stay.
    pub async fn delete(&self, name: &str) -> Result<(), ServiceError> {
        spec::check_name(name)?;
        let _changes = self.changes.lock().await;
        let spec = {
            let sinks = self.sinks.lock();
            let sink = sinks.get(name).ok_or_else(|| ServiceError::SinkNotFound {
                name: name.to_string(),
            })?;
            sink.spec.clone()
        };
        if let Source::Topic(topic, _) = &spec.source {
            match self
                .engine
                .delete_subscription(topic, &subscription_name(name))
                .await
            {
                Ok(())
                | Err(
                    TopicEngineError::SubscriptionNotFound { .. }
                    | TopicEngineError::TopicNotFound { .. },
                ) => {}
                Err(error) => return Err(error.into()),
            }
        }
        match self.engine.delete_queue(&spec.internal_queue()).await {
            Ok(()) | Err(EngineError::QueueNotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let removed = self.sinks.lock().remove(name);
        if let Some((cancel, handle)) = removed.and_then(|s| s.task) {
            cancel.cancel();
            let _ = tokio::time::timeout(STOP_GRACE, handle).await;
        }
        Ok(())
    }

    /// Starts every stored sink once the engine has recovered; runs until then or shutdown.
    pub async fn resume(&self) {
        while !self.engine.is_ready() {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let queues = match self.engine.list_queues().await {
            Ok(queues) => queues,
            Err(error) => {
                tracing::error!(%error, "cannot list queues to resume sinks");
                return;
            }
        };
        let _changes = self.changes.lock().await;
        for view in queues {
            let Some(json) = view.meta.attributes.get(SINK_ATTRIBUTE) else {
                continue;
            };
            let Some(name) = view.name.as_str().strip_prefix(spec::INTERNAL_QUEUE_PREFIX) else {
                continue;
            };
            let parsed = serde_json::from_str::<proto::StoredSink>(json)
                .map_err(|e| ServiceError::invalid("sink", e.to_string()))
                .and_then(|stored| {
                    spec::check(name, stored.definition).map(|(s, d)| (s, d, stored.paused))
                });
            match parsed {
                Ok((spec, definition, paused)) => self.insert(spec, definition, paused),
                Err(error) => {
                    tracing::error!(sink = %name, %error, "stored sink is invalid; not resumed");
                }
            }
        }
    }

    /// Stops every task and waits (bounded) for them.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let tasks: Vec<_> = self
            .sinks
            .lock()
            .values_mut()
            .filter_map(|s| s.task.take())
            .collect();
        for (_, handle) in tasks {
            let _ = tokio::time::timeout(STOP_GRACE, handle).await;
        }
    }

    /// Appends the sink figures in the Prometheus text format.
    pub async fn write_metrics(&self, out: &mut String) {
        let list = self.list().await;
        let families: [MetricFamily; 4] = [
            (
                "baton_sink_rows_written_total",
                "counter",
                "Rows sinks committed to PostgreSQL.",
                |s| s.rows_written_total,
            ),
            (
                "baton_sink_errors_total",
                "counter",
                "Failed sink attempts (PostgreSQL or the source).",
                |s| s.errors_total,
            ),
            (
                "baton_sink_batches_total",
                "counter",
                "Batches sinks committed.",
                |s| s.batches_total,
            ),
            (
                "baton_sink_lag",
                "gauge",
                "Messages of a sink's source not yet in its table.",
                |s| s.lag,
            ),
        ];
        for (metric, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
            for sink in &list.sinks {
                let _ = writeln!(
                    out,
                    "{metric}{{sink=\"{}\"}} {}",
                    sink.name,
                    value(&sink.stats)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP baton_sink_state A sink's state: 1 for the state it is in.\n# TYPE baton_sink_state gauge"
        );
        for sink in &list.sinks {
            for state in State::ALL {
                let on = u8::from(sink.state == state.as_str());
                let _ = writeln!(
                    out,
                    "baton_sink_state{{sink=\"{}\",state=\"{}\"}} {on}",
                    sink.name,
                    state.as_str()
                );
            }
        }
    }
}
