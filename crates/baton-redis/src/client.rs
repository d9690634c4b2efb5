//! The connection to the Redis Cluster and the one way a script runs on it.
//!
//! # Running a script
//! `run_script` sends `EVALSHA` and, for writes, `WAIT <replicas> <timeout>` as one pipeline to
//! the master of the queue's slot. A pipeline travels on one connection to one node, so the
//! `WAIT` is answered by the master that ran the script (the cluster client's own `WAIT` goes
//! to every primary and takes the minimum, which says nothing about this write). Fewer
//! replicas than required is `EngineError::OutcomeUnknown` (503 `outcome_unknown`), never a
//! success.
//!
//! # Failures
//! The cluster client is built without retries of its own: a retry of a pipeline whose script
//! ran would run it twice. This module retries only what certainly did not run — redirects
//! (`MOVED`, `ASK`, after which the client refreshes its slot map), `TRYAGAIN`,
//! `CLUSTERDOWN`, `LOADING`, a missing connection — for at most `retry_budget`, and answers
//! `NOSCRIPT` by loading the script on that node and running it again. Anything else (a
//! connection refused, reset or silent past `response_timeout`) is
//! `EngineError::StorageUnavailable` at once, and the connection is rebuilt from the seed
//! nodes (at most every `RECONNECT_MIN_INTERVAL`), which also picks up a new topology after a
//! failover.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::EngineError;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};

use crate::scripts::Script;

/// How long after one rebuild of the connection the next may start.
const RECONNECT_MIN_INTERVAL: Duration = Duration::from_millis(300);

/// Called with each new connection.
pub(crate) type ConnectHook = Arc<dyn Fn(ClusterConnection) + Send + Sync>;

/// How the engine reaches Redis and what it waits for.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Seed nodes, `redis://host:port`; any reachable one yields the topology.
    pub urls: Vec<String>,
    /// Replicas that must confirm each write (`WAIT`) before it is answered; 0 waits for none.
    pub wait_replicas: u32,
    /// How long `WAIT` may take.
    pub wait_timeout_ms: u64,
    /// How long one request may go unanswered before Redis counts as unreachable.
    pub response_timeout_ms: u64,
    /// How long a connection attempt may take.
    pub connect_timeout_ms: u64,
    /// How long requests that certainly did not run (redirects, `TRYAGAIN`) are retried.
    pub retry_budget_ms: u64,
}

impl RedisSettings {
    pub fn new(urls: Vec<String>) -> Self {
        RedisSettings {
            urls,
            wait_replicas: 1,
            wait_timeout_ms: 1_000,
            response_timeout_ms: 2_000,
            connect_timeout_ms: 500,
            retry_budget_ms: 1_000,
        }
    }
}

/// Whether a call changes state (and so waits for replicas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

pub(crate) struct Redis {
    client: ClusterClient,
    settings: RedisSettings,
    conn: parking_lot::Mutex<Option<ClusterConnection>>,
    /// Serialises rebuilds; holds when the last one started.
    rebuild: tokio::sync::Mutex<Option<Instant>>,
    /// Called with each new connection (to subscribe again).
    on_connect: parking_lot::Mutex<Option<ConnectHook>>,
}

fn unavailable(reason: impl Into<String>) -> EngineError {
    EngineError::StorageUnavailable {
        reason: reason.into(),
    }
}

/// An error after which the request certainly did not run, so it may be sent again.
fn not_run(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Server(
            ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::BusyLoading
                | ServerErrorKind::ReadOnly
        ) | ErrorKind::ClusterConnectionNotFound
    ) || error.is_connection_refusal()
}

pub(crate) fn server_error_text(error: &redis::ServerError) -> String {
    format!("{} {}", error.code(), error.details().unwrap_or(""))
}

impl Redis {
    pub(crate) fn new(
        settings: RedisSettings,
        push: impl Fn(redis::PushInfo) -> Result<(), ()> + Send + Sync + 'static,
    ) -> Result<Self, EngineError> {
        let client = ClusterClient::builder(settings.urls.clone())
            .retries(0)
            .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .response_timeout(Duration::from_millis(settings.response_timeout_ms))
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push)
            .build()
            .map_err(|e| unavailable(format!("bad redis settings: {e}")))?;
        Ok(Redis {
            client,
            settings,
            conn: parking_lot::Mutex::new(None),
            rebuild: tokio::sync::Mutex::new(None),
            on_connect: parking_lot::Mutex::new(None),
        })
    }

    pub(crate) fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    pub(crate) fn set_on_connect(&self, hook: ConnectHook) {
        *self.on_connect.lock() = Some(hook);
    }

    /// The current connection, made (again) if there is none.
    pub(crate) async fn connection(&self) -> Result<ClusterConnection, EngineError> {
        if let Some(conn) = self.conn.lock().clone() {
            return Ok(conn);
        }
        let mut last = self.rebuild.lock().await;
        if let Some(conn) = self.conn.lock().clone() {
            return Ok(conn);
        }
        if let Some(at) = *last {
            if at.elapsed() < RECONNECT_MIN_INTERVAL {
                return Err(unavailable(
                    "redis is unreachable (reconnecting to the seed nodes)",
                ));
            }
        }
        *last = Some(Instant::now());
        let budget = Duration::from_millis(self.settings.connect_timeout_ms * 4);
        let conn = match tokio::time::timeout(budget, self.client.get_async_connection()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(unavailable(format!("cannot connect to redis: {e}"))),
            Err(_) => return Err(unavailable("cannot connect to redis: timed out")),
        };
        *self.conn.lock() = Some(conn.clone());
        let hook = self.on_connect.lock().clone();
        if let Some(hook) = hook {
            hook(conn.clone());
        }
        Ok(conn)
    }

    /// Drops the connection after a failure, so the next call builds a new one (and a new
    /// topology) from the seed nodes.
    fn connection_failed(&self, error: &dyn std::fmt::Display) -> EngineError {
        *self.conn.lock() = None;
        unavailable(format!("redis is unreachable: {error}"))
    }

    /// Runs `script` on the master of `keys[0]`'s slot; for writes, waits for the replicas.
    /// Returns the script's answer (a cjson string).
    pub(crate) async fn run_script(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
        access: Access,
    ) -> Result<String, EngineError> {
        let key = keys.first().map(String::as_str).unwrap_or_default();
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
        let started = Instant::now();
        let wait = access == Access::Write && self.settings.wait_replicas > 0;
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("EVALSHA")
                .arg(&script.sha)
                .arg(keys.len())
                .arg(keys)
                .arg(args);
            if wait {
                pipe.cmd("WAIT")
                    .arg(self.settings.wait_replicas)
                    .arg(self.settings.wait_timeout_ms);
            }
            let n = if wait { 2 } else { 1 };
            let mut conn = self.connection().await?;
            let values = match conn.route_pipeline(pipe, 0, n, route.clone()).await {
                Ok(values) => values,
                Err(error) if not_run(&error) && self.within_budget(started) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(error) if not_run(&error) => return Err(self.no_master(key, &error)),
                Err(error) => return Err(self.connection_failed(&error)),
            };
            let mut values = values.into_iter();
            let answer = values.next();
            if let Some(Value::ServerError(error)) = &answer {
                if error.kind() == Some(ServerErrorKind::NoScript) {
                    self.load(script, &route).await?;
                    continue;
                }
            }
            let text = script_answer(script, answer)?;
            if wait {
                self.check_wait(values.next())?;
            }
            return Ok(text);
        }
    }

    /// The slot's master stayed unreachable for the whole retry budget: the connection is
    /// rebuilt on the next call, which reads the topology afresh (a failover may have moved
    /// the slot to a promoted replica).
    fn no_master(&self, key: &str, error: &RedisError) -> EngineError {
        *self.conn.lock() = None;
        unavailable(format!(
            "the slot of {key} has no reachable master: {error}"
        ))
    }

    fn within_budget(&self, started: Instant) -> bool {
        started.elapsed() < Duration::from_millis(self.settings.retry_budget_ms)
    }

    fn check_wait(&self, reply: Option<Value>) -> Result<(), EngineError> {
        let want = self.settings.wait_replicas;
        match reply {
            Some(Value::Int(n)) if n >= i64::from(want) => Ok(()),
            Some(Value::Int(n)) => Err(EngineError::OutcomeUnknown {
                reason: format!(
                    "the write reached {n} of the {want} replicas it must reach within {} ms; it may or may not survive a failover, so retry it with the same message ids",
                    self.settings.wait_timeout_ms
                ),
            }),
            other => Err(EngineError::OutcomeUnknown {
                reason: format!("WAIT gave no replica count ({other:?})"),
            }),
        }
    }

    async fn load(
        &self,
        script: &Script,
        route: &SingleNodeRoutingInfo,
    ) -> Result<(), EngineError> {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(&script.source);
        let mut conn = self.connection().await?;
        match conn
            .route_command(cmd, RoutingInfo::SingleNode(route.clone()))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if not_run(&error) => Err(unavailable(format!(
                "cannot load script {}: {error}",
                script.name
            ))),
            Err(error) => Err(self.connection_failed(&error)),
        }
    }

    /// Runs plain commands on the master of `key`'s slot as one pipeline (and `WAIT` after them
    /// for writes); returns their replies.
    pub(crate) async fn run_commands(
        &self,
        key: &str,
        commands: Vec<redis::Cmd>,
        access: Access,
    ) -> Result<Vec<Value>, EngineError> {
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
        let wait = access == Access::Write && self.settings.wait_replicas > 0;
        let started = Instant::now();
        loop {
            let mut pipe = redis::pipe();
            for command in &commands {
                pipe.add_command(command.clone());
            }
            if wait {
                pipe.cmd("WAIT")
                    .arg(self.settings.wait_replicas)
                    .arg(self.settings.wait_timeout_ms);
            }
            let n = commands.len() + usize::from(wait);
            let mut conn = self.connection().await?;
            let mut values = match conn.route_pipeline(pipe, 0, n, route.clone()).await {
                Ok(values) => values,
                Err(error) if not_run(&error) && self.within_budget(started) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(error) if not_run(&error) => return Err(self.no_master(key, &error)),
                Err(error) => return Err(self.connection_failed(&error)),
            };
            if wait {
                let reply = values.pop();
                self.check_wait(reply)?;
            }
            if let Some(Value::ServerError(error)) =
                values.iter().find(|v| matches!(v, Value::ServerError(_)))
            {
                return Err(unavailable(format!(
                    "redis refused a command: {}",
                    server_error_text(error)
                )));
            }
            return Ok(values);
        }
    }
}

fn script_answer(script: &Script, answer: Option<Value>) -> Result<String, EngineError> {
    match answer {
        Some(Value::BulkString(bytes)) => String::from_utf8(bytes)
            .map_err(|e| unavailable(format!("script {} answered non-UTF-8: {e}", script.name))),
        Some(Value::SimpleString(text)) => Ok(text),
        Some(Value::ServerError(error)) if error.code() == "OOM" => Err(unavailable(format!(
            "memory_pressure: redis is out of memory and refused the write ({})",
            server_error_text(&error)
        ))),
        Some(Value::ServerError(error)) => Err(unavailable(format!(
            "script {} failed: {}",
            script.name,
            server_error_text(&error)
        ))),
        other => Err(unavailable(format!(
            "script {} gave an unexpected answer: {other:?}",
            script.name
        ))),
    }
}

/// Reads a bulk string reply as text (`None` for nil).
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// Reads an array (or set) reply as texts.
pub(crate) fn texts(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) | Value::Set(items) => items.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

/// Reads an array reply as texts, keeping nils in place.
pub(crate) fn texts_with_nils(value: &Value) -> Vec<Option<String>> {
    match value {
        Value::Array(items) => items.iter().map(text).collect(),
        _ => Vec::new(),
    }
}
