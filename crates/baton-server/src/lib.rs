//! # baton-server
//!
//! Baton's server as a library: the native JSON API over HTTP and the framed TCP protocol
//! (`wire`, docs/wire-protocol.md) over an [`Engine`], configuration,
//! background work and graceful shutdown. The `baton` binary calls [`run`]; tests call
//! [`serve`] with an engine and a clock of their choosing.
//!
//! Not here: queue semantics (`baton-core`), storage (`baton-engine` and the storage crate),
//! wire shapes (`baton-proto`).
//!
//! Shutdown order: stop the sinks (a batch not committed yet is read again at the next
//! start), stop accepting connections (HTTP and the wire protocol), end waiting long
//! polls (they answer with what they have), let in-flight requests finish for at most
//! `shutdown_grace_ms`, stop background tasks, return.

pub mod api;
pub mod auth;
pub mod callbacks;
pub mod caller_limits;
mod cluster;
pub mod config;
pub mod connections;
pub mod events;
mod http1_watch;
pub mod http_listener;
pub mod live;
mod metrics_text;
pub mod outbound;
pub mod push;
pub mod rate_limits;
pub mod schedules;
pub mod service;
pub mod sinks;
pub mod state;
pub mod tls;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::{Engine, EngineConfig, EngineError, LocalEngine, MemoryAlarm, SystemClock};
use baton_storage::RealFs;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigError, EngineKind, RedisDurability, ServerConfig};
pub use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("server I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(#[from] EngineError),
    /// Listening beyond loopback without keys (`auth::secure_default`).
    #[error("{0}")]
    Insecure(String),
    /// Cluster mode: the Redis deployment failed the start-up check (`cluster.rs`).
    #[error("{0}")]
    Deployment(String),
    /// The TLS files cannot be loaded.
    #[error("TLS: {0} (`{key}`)", key = .0.key())]
    Tls(#[from] tls::TlsError),
    /// The start-up key (`BATON_ADMIN_KEY`) or an offline key change failed.
    #[error("API keys: {0}")]
    Keys(#[from] service::ServiceError),
}

/// Where `--repair` moves log segments it cannot keep (inside `<data dir>/wal/`).
pub const LOG_DROPPED_DIR: &str = baton_storage::wal::DROPPED_DIR;

/// Reads `data_dir` as start-up would, changing nothing (`baton storage verify`).
pub fn verify_storage(
    data_dir: &std::path::Path,
    keys: Option<&baton_storage::Keyring>,
) -> Result<baton_engine::VerifyReport, baton_storage::RecoveryError> {
    baton_engine::verify(&RealFs, data_dir, baton_core::QueueLimits::default(), keys)
}

/// What the data dir's frames are sealed with, and which do not open with `keys`.
pub fn scan_storage_encryption(
    data_dir: &std::path::Path,
    keys: Option<&baton_storage::Keyring>,
) -> std::io::Result<baton_storage::SealScan> {
    baton_engine::scan_encryption(&RealFs, data_dir, keys)
}

/// Runs the broker with the engine the configuration selects until `shutdown` completes.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    wire: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let engine_config = EngineConfig {
        limits: config.queue_limits(),
        max_waiting_receives: config.max_waiting_receives,
    };
    let clock = Arc::new(SystemClock);
    let memory = || MemoryAlarm::new(config.memory_high_watermark());
    let engine: Arc<dyn Engine> = match config.engine {
        EngineKind::Memory => Arc::new(
            LocalEngine::in_memory(clock, engine_config)
                .with_lock_settings(config.lock_settings())
                .with_schedule_limits(config.schedule_limits())
                .with_memory_alarm(memory()),
        ),
        EngineKind::Embedded => Arc::new(
            LocalEngine::durable(
                clock,
                engine_config,
                Arc::new(RealFs),
                config.storage()?,
                true,
            )?
            .with_lock_settings(config.lock_settings())
            .with_schedule_limits(config.schedule_limits())
            .with_memory_alarm(memory()),
        ),
        EngineKind::Redis => cluster::connect(&config, engine_config).await?,
    };
    serve(config, engine, listener, wire, shutdown).await
}

/// Serves `engine` on `listener` (HTTP) and `wire` (the framed TCP protocol, if given) until
/// `shutdown` completes.
pub async fn serve(
    config: ServerConfig,
    engine: Arc<dyn Engine>,
    listener: TcpListener,
    wire: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let tls = match config.tls_files() {
        Some(files) => Some(Arc::new(tls::Tls::load(files)?)),
        None => None,
    };
    let config = Arc::new(config);
    let local_addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let wire_listen = match &wire {
        Some(wire) => Some(Arc::from(wire.local_addr()?.to_string())),
        None => None,
    };
    let state = app_state(
        config.clone(),
        engine.clone(),
        local_addr.to_string(),
        wire_listen,
        stop.clone(),
    )?;
    let mut listen_addresses = vec![local_addr];
    if let Some(wire) = &wire {
        listen_addresses.push(wire.local_addr()?);
    }
    // An engine with nothing to recover (memory) has its keys before the first request, so
    // it never answers `not_ready`; the others load them after recovery, meanwhile 503.
    let keys_now = engine.is_ready();
    if keys_now {
        start_keys(state.clone(), listen_addresses.clone()).await?;
    }
    let mut tasks = spawn_background(&state, &config, &engine, &stop);
    let (sinks, push, live) = (state.sinks.clone(), state.push.clone(), state.live.clone());

    if let Some(tls) = &tls {
        tasks.spawn(tls.clone().run_reloads(
            Duration::from_millis(config.tls_reload_interval_ms),
            stop.clone(),
        ));
    }
    let gate = http_listener::Gate {
        limits: state.connections.clone(),
        tls,
    };
    let wire_server = wire.map(|wire| {
        let listen = state.wire_listen.clone().unwrap_or_default();
        tracing::info!(listen = %listen, tls = gate.tls.is_some(), "wire protocol serving");
        tokio::spawn(wire::serve(wire, state.clone(), stop.clone(), gate.clone()))
    });
    let upgraded = state.wire_connections.clone();
    let state_for_keys = state.clone();
    let app = api::router(state.clone());
    let tls_on = gate.tls.is_some();
    let server = tokio::spawn(http_listener::serve(
        listener,
        app,
        state,
        gate,
        stop.clone(),
    ));
    tracing::info!(listen = %local_addr, engine = engine.kind(), tls = tls_on, "baton serving");

    let after_recovery = async move {
        if keys_now {
            return Ok(());
        }
        start_keys(state_for_keys, listen_addresses).await
    };
    let failed = recover_until(engine.clone(), after_recovery, shutdown).await;
    if let Some(error) = &failed {
        tracing::error!(%error, "start-up failed; stopping");
    }
    tracing::info!("shutting down: no new connections, ending long polls");
    // Sinks stop first: they would otherwise meet reads that answer at once from here on.
    sinks.shutdown().await;
    engine.begin_shutdown();
    // Live streams never end by themselves; ending them lets graceful shutdown finish.
    live.close_all();
    stop.cancel();
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let wire_done = async move {
        if let Some(wire_server) = wire_server {
            let _ = wire_server.await;
        }
        upgraded.close();
        upgraded.wait().await;
    };
    match tokio::time::timeout(grace, async { tokio::join!(server, wire_done).0 }).await {
        Ok(Ok(())) => {}
        Ok(Err(join_error)) => tracing::error!(%join_error, "server task failed"),
        Err(_) => tracing::warn!(
            grace_ms = config.shutdown_grace_ms,
            "requests still running after the grace period; closing"
        ),
    }
    push.shutdown().await;
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    match failed {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// After recovery: loads the keys, installs `BATON_ADMIN_KEY`'s, applies the secure default,
/// then lets requests in (until then they answer 503).
async fn start_keys(
    state: AppState,
    addresses: Vec<std::net::SocketAddr>,
) -> Result<(), ServerError> {
    state.keys.load().await?;
    if let Some(token) = &state.config.admin_key {
        state
            .keys
            .install(
                auth::ADMIN_KEY_NAME,
                token.expose(),
                auth::rules::admin_permissions(),
            )
            .await?;
        tracing::info!(
            key = auth::ADMIN_KEY_NAME,
            "installed the admin key of BATON_ADMIN_KEY"
        );
    }
    auth::secure_default(&addresses, state.keys.has_keys(), state.config.insecure)
        .map_err(ServerError::Insecure)?;
    state.keys.activate();
    let mode = if state.keys.has_keys() {
        "required"
    } else {
        "none exist: open"
    };
    tracing::info!(api_keys = mode, "serving requests");
    Ok(())
}

/// Re-reads the keys every `keys_refresh_ms` (0: never), for changes made on other nodes.
async fn refresh_keys(state: AppState, stop: CancellationToken) {
    let interval = state.config.keys_refresh_ms;
    if interval == 0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(interval));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if state.keys.mode() == auth::Mode::Loading {
            continue;
        }
        if let Err(error) = state.keys.load().await {
            tracing::warn!(%error, "cannot re-read the API keys; keeping the ones loaded");
        }
    }
}

/// Drops the rate-limit buckets of callers that stopped calling.
async fn sweep_rate_limits(state: AppState, stop: CancellationToken) {
    if state.rate_limits.is_off() {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => state.rate_limits.sweep(),
        }
    }
}

/// Starts the background loops: sinks, callbacks, event workers, schedules, push (then the
/// sweep of topic URL subscriptions, then, on an engine shared by nodes, the re-sync of push
/// subscriptions) and the engine's tick.
fn spawn_background(
    state: &AppState,
    config: &ServerConfig,
    engine: &Arc<dyn Engine>,
    stop: &CancellationToken,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let sinks = state.sinks.clone();
    tasks.spawn(async move { sinks.resume().await });
    tasks.spawn(state.callbacks.clone().run());
    tasks.spawn(state.events.clone().run_workers());
    tasks.spawn(schedules::run(state.clone()));
    let (push, swept) = (state.push.clone(), state.clone());
    tasks.spawn(async move {
        push.resume().await;
        service::topic_urls::sweep(&swept).await;
        // Cluster mode only: subscriptions other nodes set or removed.
        push.run_resync().await;
    });
    tasks.spawn(refresh_keys(state.clone(), stop.clone()));
    tasks.spawn(sweep_rate_limits(state.clone(), stop.clone()));
    tasks.spawn(tick_loop(
        engine.clone(),
        Duration::from_millis(config.tick_interval_ms),
        stop.clone(),
    ));
    tasks
}

/// Runs recovery while the server already answers (`/ready` says when it is done), then
/// waits for `shutdown`; a failed recovery ends the wait at once with its error.
async fn recover_until(
    engine: Arc<dyn Engine>,
    after: impl Future<Output = Result<(), ServerError>> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Option<ServerError> {
    let recovery = tokio::spawn(async move {
        engine.recover().await?;
        after.await
    });
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => None,
        recovered = recovery => match recovered {
            Ok(Ok(())) => {
                shutdown.await;
                None
            }
            Ok(Err(error)) => Some(error),
            Err(join_error) => Some(ServerError::Storage(EngineError::StorageUnavailable { reason: join_error.to_string() })),
        },
    }
}

/// Everything the handlers share, with the push, callback and event workers wired to `engine`
/// (their background loops are started by [`serve`]). `stop` ends them and live streams.
pub(crate) fn app_state(
    config: Arc<ServerConfig>,
    engine: Arc<dyn Engine>,
    listen: String,
    wire_listen: Option<Arc<str>>,
    stop: CancellationToken,
) -> Result<AppState, ServerError> {
    // Private targets are refused by default unless every listening address is loopback.
    let is_loopback = |address: &str| {
        address
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback())
    };
    let loopback_only = is_loopback(&listen) && wire_listen.as_deref().is_none_or(is_loopback);
    let outbound = config.outbound_rules(loopback_only)?;
    let push = Arc::new(push::PushManager::new(
        engine.clone(),
        outbound.clone(),
        push::breaker::BreakerConfig {
            failures: config.push_breaker_failures,
            window_ms: config.push_breaker_window_ms,
            cooldown_ms: config.push_breaker_cooldown_ms,
        },
        stop.child_token(),
    ));
    let callbacks = callbacks::Callbacks::new(
        engine.clone(),
        outbound.clone(),
        callbacks::CallbackSettings {
            max_retries: config.callback_max_retries,
            retry_delay_ms: config.callback_retry_delay_ms,
            timeout_ms: config.callback_timeout_ms,
            concurrency: config.callback_concurrency,
        },
        stop.child_token(),
    );
    engine.set_completion_hook(callbacks.hook());
    let events = Arc::new(events::Events::new(
        engine.clone(),
        events::EventSettings {
            workers: config.events_workers,
            notification_ms: config.events_notification_ms,
            data_processing_ms: config.events_data_processing_ms,
            heavy_task_ms: config.events_heavy_task_ms,
            performance_test_max: config.events_performance_test_max,
            performance_test_wait_ms: config.events_performance_test_wait_ms,
        },
        stop.child_token(),
    ));
    let sinks = Arc::new(sinks::SinkManager::new(
        engine.clone(),
        sinks::SinkSettings {
            sinks_max: config.sinks_max,
            retry_base_ms: config.sink_retry_base_ms,
            retry_max_ms: config.sink_retry_max_ms,
        },
        stop.child_token(),
    ));
    let live = Arc::new(live::LiveHub::new(
        config.live_buffer_messages,
        config.live_connections_max,
    ));
    let keys = Arc::new(auth::KeyStore::new(engine.clone(), config.keys_max));
    Ok(AppState::new(state::AppParts {
        engine,
        keys,
        config: config.clone(),
        node_id: Arc::from(config.node_id.clone().unwrap_or_else(host_name)),
        listen: Arc::from(listen),
        wire_listen,
        started: Instant::now(),
        sqs: Arc::default(),
        http_metrics: Arc::default(),
        push,
        callbacks,
        sinks,
        schedules: Arc::new(schedules::Scheduler::new(stop.child_token())),
        outbound: Arc::new(outbound),
        rate_limits: Arc::new(config.rate_limits()),
        audit: Arc::default(),
        caller_limits: Arc::new(config.caller_limits()),
        events,
        live,
        replies: Arc::new(service::replies::Replies::new(config.max_pending_requests)),
        live_streams: Arc::new(tokio::sync::Semaphore::new(
            config.live_streams_max as usize,
        )),
        shutdown: stop.clone(),
        wire_connections: tokio_util::task::TaskTracker::new(),
        connections: connections::ConnectionLimits::new(config.connection_settings()),
    }))
}

/// Applies expiries and dead-letter moves on idle queues; runs until `stop`.
async fn tick_loop(engine: Arc<dyn Engine>, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => engine.tick().await,
        }
    }
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "baton".to_string())
}
