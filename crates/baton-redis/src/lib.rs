//! # baton-redis
//!
//! The Redis Cluster engine: Baton's queue semantics (those of `baton_core::queue`, kept by
//! the same conformance suite as the embedded engine) run as Lua scripts inside a Redis
//! Cluster (Redis 7), so that several stateless Baton nodes can share one set of queues.
//!
//! - **One script per operation, one slot per queue.** Every key of a queue carries the hash
//!   tag `{<namespace>:q:<queue>}` (`keys.rs`), and every queue operation is one script
//!   (`scripts.rs`, `lua/`) run with `EVALSHA` on that slot's master: atomic, whatever the
//!   number of Baton nodes.
//! - **One clock.** Scripts read the time with Redis `TIME`, so delays, leases and retention
//!   follow the queue's master, never a Baton node's clock. An engine built with an injected
//!   clock (tests) passes that clock's time to every script instead.
//! - **Durability.** A write is answered after `WAIT` for the configured replicas on the
//!   master that ran it; falling short is an error (`client.rs`).
//! - **Moves between queues** (dead letters, redrive) go through an outbox in the source's
//!   slot, written by the same script as the source's change, then an idempotent hand-over
//!   to the destination (`moves.rs`).
//! - **Long polls** wait on the node, woken by sharded pub/sub from the scripts and by a
//!   periodic re-poll (`waits.rs`).
//! - **The deployment** is described by `RedisEngine::check_deployment` (`deployment.rs`):
//!   each master's persistence and eviction settings and online replicas, for the server to
//!   judge at start-up.
//!
//! - **Locks** (`locks.rs`): each lock in its own slot (`{<namespace>:l:<name>}`), every
//!   acquire, renew, release and get one script there on the engine's clock; fenced queue
//!   writes check the lock's slot, then the queue's own fence floor in the write's script.
//! - **Schedules** (`schedules.rs`): each schedule one record in its own slot
//!   (`{<namespace>:s:<name>}`), changed by compare-and-set after the decision is made with
//!   `baton_core::schedule` on the engine's clock; a firing to a queue is sent with a marker
//!   of the schedule's last tick in the queue's slot, so no tick is sent twice.
//!
//! - **Topics** (`topics.rs`): each topic one record in its own slot (`{<namespace>:t:<name>}`);
//!   a publish is routed in Rust, recorded in the topic's outbox by one script, and each copy
//!   handed over to its queue under a token the queue records with the send.
//!
//! Not in this crate yet (each call answers `NotOnEngine`, `unavailable.rs`): streams (and
//! topic subscriptions to them, fenced writes to streams and topics, schedule firings to streams), and the ownership of
//! background work by one node at a time.
//! The registry of queues is a set in one slot; creating and deleting queues, and the check
//! that a dead-letter queue is unused, read it without a lock across slots.

mod admin;
mod client;
mod codec;
mod deployment;
mod keys;
mod locks;
mod messages;
mod moves;
mod schedule_codec;
mod schedules;
mod scripts;
mod topic_codec;
mod topics;
mod unavailable;
mod waits;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use baton_core::schedule::ScheduleLimits;
use baton_core::{Clock, Queue, QueueConfig, QueueError, QueueName, Timestamp};
use baton_engine::{Completion, CompletionHook, Engine, EngineConfig, EngineError, LockSettings};
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

pub use client::RedisSettings;
use client::{Access, Redis};
pub use deployment::{DeploymentCheck, Shortfall, Unchecked};
use keys::QueueKeys;
use scripts::Script;

/// Where a dead-letter or redrive hand-over stops, to test that the next tick completes it
/// exactly once (as if the node had died there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOverFault {
    /// After the outbox write, before the destination accepted anything.
    BeforeAccept,
    /// After the destination accepted, before the outbox entry was removed.
    AfterAccept,
}

/// The Redis Cluster engine. Cheap to share behind an `Arc`; safe to call from many tasks.
pub struct RedisEngine {
    redis: Arc<Redis>,
    namespace: String,
    clock: Option<Arc<dyn Clock>>,
    config: EngineConfig,
    /// What the engine last read of each queue: epoch, config version and config.
    infos: RwLock<HashMap<QueueName, Arc<Info>>>,
    waits: Arc<waits::Wakers>,
    n_waiting: AtomicU32,
    shutdown: CancellationToken,
    completion_hook: RwLock<Option<CompletionHook>>,
    /// Why the last call to Redis failed, until one succeeds.
    failure: RwLock<Option<String>>,
    fault: RwLock<Option<HandOverFault>>,
    lock_settings: LockSettings,
    /// Acquires waiting now, bounded by `lock_settings.waiters_max`.
    n_lock_waiting: AtomicU32,
    schedule_limits: ScheduleLimits,
    /// Firings to a queue stop after their send, before their step (tests).
    cut_firings: std::sync::atomic::AtomicBool,
}

/// A queue as last read from Redis. Scripts are given `epoch` and `cver` and refuse to run
/// (`STALE_QUEUE`) when the queue changed, so checks made with `config` are never stale.
pub(crate) struct Info {
    pub(crate) epoch: u64,
    pub(crate) cver: String,
    pub(crate) config: QueueConfig,
    /// An empty queue with `config`, for the checks of a message that need no state.
    pub(crate) checker: Queue,
    pub(crate) keys: QueueKeys,
}

/// A script's refusal that the caller may answer by reading the queue again.
pub(crate) enum RunError {
    Stale,
    /// A fenced write's token is below the queue's fence floor for its lock (`fence.lua`).
    Fenced {
        floor: u64,
    },
    Engine(EngineError),
}

/// Why a write that may carry a fence did not run.
pub(crate) enum WriteError {
    Fenced { floor: u64 },
    Engine(EngineError),
}

impl From<EngineError> for WriteError {
    fn from(error: EngineError) -> Self {
        WriteError::Engine(error)
    }
}

impl WriteError {
    /// The error of a write that carried no fence, which no script refuses as fenced.
    pub(crate) fn unfenced(self) -> EngineError {
        match self {
            WriteError::Engine(error) => error,
            WriteError::Fenced { floor } => EngineError::StorageUnavailable {
                reason: format!(
                    "a queue script refused a write without a fence as fenced (floor {floor})"
                ),
            },
        }
    }
}

impl From<EngineError> for RunError {
    fn from(error: EngineError) -> Self {
        RunError::Engine(error)
    }
}

pub(crate) fn not_found(name: &QueueName) -> EngineError {
    EngineError::QueueNotFound {
        queue: name.to_string(),
    }
}

/// Times a queue operation is tried again after the queue changed under it.
const STALE_RETRIES: usize = 3;

impl RedisEngine {
    /// An engine on the cluster `settings` names, keeping its keys under `namespace` (so many
    /// engines share one cluster without seeing each other's queues). With `clock`, scripts
    /// use its time instead of Redis `TIME` (tests). Fails when no seed node answers.
    pub async fn connect(
        settings: RedisSettings,
        namespace: &str,
        config: EngineConfig,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self, EngineError> {
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            return Err(EngineError::StorageUnavailable {
                reason: format!("namespace {namespace:?} must be non-empty and without braces"),
            });
        }
        let waits = Arc::new(waits::Wakers::default());
        let pushed = waits.clone();
        let redis = Arc::new(Redis::new(settings, move |push| {
            pushed.on_push(push);
            Ok(())
        })?);
        waits::resubscribe_on_connect(&redis, &waits);
        redis.connection().await?;
        Ok(RedisEngine {
            redis,
            namespace: namespace.to_string(),
            clock,
            config,
            infos: RwLock::new(HashMap::new()),
            waits,
            n_waiting: AtomicU32::new(0),
            shutdown: CancellationToken::new(),
            completion_hook: RwLock::new(None),
            failure: RwLock::new(None),
            fault: RwLock::new(None),
            lock_settings: LockSettings::default(),
            n_lock_waiting: AtomicU32::new(0),
            schedule_limits: ScheduleLimits::default(),
            cut_firings: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// This engine with lock settings other than the defaults.
    pub fn with_lock_settings(mut self, settings: LockSettings) -> Self {
        self.lock_settings = settings;
        self
    }

    /// This engine with schedule limits other than the defaults.
    pub fn with_schedule_limits(mut self, limits: ScheduleLimits) -> Self {
        self.schedule_limits = limits;
        self
    }

    /// Makes every firing to a queue stop after its send, before the schedule's step, with an
    /// error, as if the node had died there (or no longer, with `false`); for tests.
    pub fn inject_firing_cut(&self, cut: bool) {
        self.cut_firings.store(cut, Ordering::SeqCst);
    }

    /// Makes hand-overs stop at `fault` (or no longer, with `None`); for tests.
    pub fn inject_hand_over_fault(&self, fault: Option<HandOverFault>) {
        *self.fault.write() = fault;
    }

    pub(crate) fn keys(&self, name: &QueueName) -> QueueKeys {
        QueueKeys::new(&self.namespace, name)
    }

    /// The first arguments of every script (see `lua/lib.lua`).
    pub(crate) fn common_args(&self, info: Option<&Info>, name: &QueueName) -> Vec<String> {
        let limits = self.config.limits;
        let in_flight_max = match info.map(|i| i.config.fifo) {
            Some(true) => limits.in_flight_max_fifo,
            _ => limits.in_flight_max_standard,
        };
        vec![
            self.clock
                .as_ref()
                .map(|c| c.now().as_millis().to_string())
                .unwrap_or_default(),
            info.map(|i| i.epoch.to_string()).unwrap_or_default(),
            info.map(|i| i.cver.clone()).unwrap_or_default(),
            limits.status_retention_ms.to_string(),
            limits.status_records_max.to_string(),
            in_flight_max.to_string(),
            name.to_string(),
        ]
    }

    /// The queue as last read, reading it when unknown.
    pub(crate) async fn info(&self, name: &QueueName) -> Result<Arc<Info>, EngineError> {
        if let Some(info) = self.infos.read().get(name) {
            return Ok(info.clone());
        }
        let keys = self.keys(name);
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(keys.head()).arg("cfg").arg("epoch").arg("cver");
        let replies = self
            .call(
                self.redis
                    .run_commands(&keys.head(), vec![hmget], Access::Read),
            )
            .await?;
        let fields = replies
            .first()
            .map(client::texts_with_nils)
            .unwrap_or_default();
        let (Some(Some(cfg)), Some(Some(epoch)), Some(Some(cver))) =
            (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err(not_found(name));
        };
        let config = codec::config_from_json(cfg)?;
        let epoch: u64 = epoch
            .parse()
            .map_err(|e| codec::corrupt("queue epoch", &e))?;
        let checker = Queue::new(name.clone(), config.clone(), self.config.limits, epoch)?;
        let info = Arc::new(Info {
            epoch,
            cver: cver.clone(),
            config,
            checker,
            keys,
        });
        self.infos.write().insert(name.clone(), info.clone());
        Ok(info)
    }

    pub(crate) fn forget(&self, name: &QueueName) {
        self.infos.write().remove(name);
    }

    /// Awaits a call to Redis, noting its failure (or its success) for `storage_failure`.
    pub(crate) async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let result = call.await;
        match &result {
            Err(
                EngineError::StorageUnavailable { reason } | EngineError::OutcomeUnknown { reason },
            ) => {
                *self.failure.write() = Some(reason.clone());
            }
            Ok(_) => {
                if self.failure.read().is_some() {
                    *self.failure.write() = None;
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Runs `script` on queue `info` with `args` after the common ones; refusals become
    /// errors, `STALE_QUEUE` and `NOT_FOUND` forget what the engine knew of the queue.
    pub(crate) async fn run_on(
        &self,
        name: &QueueName,
        info: &Info,
        script: &Script,
        access: Access,
        args: Vec<String>,
    ) -> Result<serde_json::Value, RunError> {
        self.run_fenced(name, info, script, access, args, None)
            .await
    }

    /// `run_on` for a write that may carry a fence: with one, `script` must be a fenced twin
    /// (`scripts::SEND_FENCED`...), which reads the lock's name and token after `args`.
    pub(crate) async fn run_fenced(
        &self,
        name: &QueueName,
        info: &Info,
        script: &Script,
        access: Access,
        args: Vec<String>,
        fence: Option<&locks::Fence>,
    ) -> Result<serde_json::Value, RunError> {
        let mut all = self.common_args(Some(info), name);
        all.extend(args);
        if let Some(fence) = fence {
            all.push(fence.lock.to_string());
            all.push(fence.token.get().to_string());
        }
        let text = self
            .call(
                self.redis
                    .run_script(script, &info.keys.all(), &all, access),
            )
            .await?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| codec::corrupt("script answer", &e))?;
        codec::normalize(&mut value);
        let Some(code) = value
            .get("err")
            .and_then(|c| c.as_str())
            .map(str::to_string)
        else {
            return Ok(value);
        };
        match code.as_str() {
            "STALE_QUEUE" => {
                self.forget(name);
                Err(RunError::Stale)
            }
            "NOT_FOUND" => {
                self.forget(name);
                Err(RunError::Engine(not_found(name)))
            }
            "FENCED" => Err(RunError::Fenced {
                floor: value.get("floor").and_then(|f| f.as_u64()).unwrap_or(0),
            }),
            _ => Err(RunError::Engine(refusal(name, &code, &value))),
        }
    }

    /// `run_on` with the queue read again (up to `STALE_RETRIES` times) while it changes.
    pub(crate) async fn on_queue(
        &self,
        name: &QueueName,
        script: &Script,
        access: Access,
        args: impl Fn(&Info) -> Result<Vec<String>, EngineError>,
    ) -> Result<(Arc<Info>, serde_json::Value), EngineError> {
        for _ in 0..STALE_RETRIES {
            let info = self.info(name).await?;
            match self.run_on(name, &info, script, access, args(&info)?).await {
                Ok(value) => return Ok((info, value)),
                Err(RunError::Stale) => continue,
                Err(RunError::Engine(error)) => return Err(error),
                Err(RunError::Fenced { floor }) => {
                    return Err(WriteError::Fenced { floor }.unfenced())
                }
            }
        }
        Err(changing(name))
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

pub(crate) fn changing(name: &QueueName) -> EngineError {
    EngineError::StorageUnavailable {
        reason: format!("queue {name} kept changing during the operation; try again"),
    }
}

/// The error a script's refusal `code` stands for.
fn refusal(name: &QueueName, code: &str, value: &serde_json::Value) -> EngineError {
    let number = |field: &str| value.get(field).and_then(|v| v.as_u64()).unwrap_or(0);
    let text = |field: &str| {
        value
            .get(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    match code {
        "QUEUE_FULL" => EngineError::Queue(QueueError::QueueFull {
            queue: name.clone(),
            depth: number("depth"),
            max_depth: number("max_depth"),
        }),
        "TOO_MANY_IN_FLIGHT" => EngineError::Queue(QueueError::TooManyInFlight {
            queue: name.clone(),
            in_flight: u32::try_from(number("in_flight")).unwrap_or(u32::MAX),
        }),
        "KIND" => EngineError::Queue(QueueError::InvalidParameter {
            field: "fifo".to_string(),
            reason: "a queue's kind (FIFO or standard) cannot change".to_string(),
        }),
        "META_CONFLICT" => EngineError::MetaConflict {
            queue: name.to_string(),
            attribute: text("attribute"),
        },
        "META_LIMIT" => EngineError::Queue(QueueError::InvalidParameter {
            field: text("field"),
            reason: format!(
                "at most {} tags and {} attributes of at most {} bytes each",
                baton_engine::QUEUE_TAGS_MAX,
                baton_engine::QUEUE_META_ATTRIBUTES_MAX,
                baton_engine::QUEUE_META_VALUE_BYTES_MAX
            ),
        }),
        other => EngineError::StorageUnavailable {
            reason: format!("a script refused with an unknown code {other}"),
        },
    }
}

#[async_trait]
impl Engine for RedisEngine {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn now(&self) -> Timestamp {
        match &self.clock {
            Some(clock) => clock.now(),
            None => baton_engine::SystemClock.now(),
        }
    }

    fn storage_failure(&self) -> Option<String> {
        self.failure.read().clone()
    }

    fn shared_by_nodes(&self) -> bool {
        true
    }

    async fn tick(&self) {
        self.tick_all().await
    }

    fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    fn set_completion_hook(&self, hook: CompletionHook) {
        *self.completion_hook.write() = Some(hook);
    }

    fn take_recovered_completions(&self) -> Vec<Completion> {
        Vec::new()
    }
}

impl RedisEngine {
    pub(crate) fn acquire_wait_permit(&self) -> Result<waits::WaitPermit<'_>, EngineError> {
        let limit = self.config.max_waiting_receives;
        if self.n_waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            self.n_waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::TooManyWaiters { limit });
        }
        Ok(waits::WaitPermit(&self.n_waiting))
    }
}
